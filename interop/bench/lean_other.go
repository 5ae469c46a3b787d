//go:build !linux

package main

import "net"

// leanSupported reports whether this build has the lean idle clients.
const leanSupported = false

// startLeanClients needs epoll: elsewhere the driver stops with a message.
func startLeanClients(addr string, n int, ip net.IP) idleFleet {
	fail("-idle-lean needs Linux")
	return idleFleet{}
}
