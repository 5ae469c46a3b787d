//go:build linux

package kcp

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenLanes opens laddr with one socket per core (GOMAXPROCS, at most
// maxListenLanes), all bound with SO_REUSEPORT to one address and port, so
// the kernel spreads flows over them by 4-tuple (listener_lanes.go). With
// one core, or when the sockets cannot be opened so, it opens one socket
// as net.ListenUDP does.
//
// The port is first taken by a plain socket, which fails as any listen
// does when the port is in use (and picks it when laddr's port is 0); the
// group then binds that port. A socket of the same user that joined the
// port with SO_REUSEPORT in the instant between would share its flows, as
// with any SO_REUSEPORT server.
func listenLanes(laddr *net.UDPAddr) ([]*net.UDPConn, error) {
	probe, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	n := min(runtime.GOMAXPROCS(0), maxListenLanes)
	if n <= 1 {
		return []*net.UDPConn{probe}, nil
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	addr := net.JoinHostPort(laddrHost(laddr), strconv.Itoa(port))
	probe.Close()
	conns, err := listenReusePort(addr, n)
	if err == nil {
		return conns, nil
	}
	// Fall back to one socket on the same port.
	one := *laddr
	one.Port = port
	conn, err := net.ListenUDP("udp", &one)
	if err != nil {
		return nil, err
	}
	return []*net.UDPConn{conn}, nil
}

// laddrHost is laddr's host for a "host:port" string ("" for any address).
func laddrHost(laddr *net.UDPAddr) string {
	if laddr == nil || laddr.IP == nil {
		return ""
	}
	h := laddr.IP.String()
	if laddr.Zone != "" {
		h += "%" + laddr.Zone
	}
	return h
}

// listenReusePort opens n sockets on addr with SO_REUSEPORT; on any error
// it closes those it opened.
func listenReusePort(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	conns := make([]*net.UDPConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	return conns, nil
}
