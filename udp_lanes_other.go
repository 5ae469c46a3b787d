//go:build !linux

package kcp

import "net"

// listenLanes opens laddr with one socket: only Linux spreads a port over
// several (udp_lanes_linux.go).
func listenLanes(laddr *net.UDPAddr) ([]*net.UDPConn, error) {
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	return []*net.UDPConn{conn}, nil
}
