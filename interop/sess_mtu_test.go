package interop

import (
	"net"
	"sync"
	"testing"
)

// TestSessionMTU1472 sets MTU 1472, the largest datagram kcp-go v5.7
// handles, on both ends, for every cipher × FEC {off, 10/3} × both
// directions, echoes 256 KiB, and checks on the client's socket that full
// datagrams of exactly 1472 bytes went each way and none larger.
func TestSessionMTU1472(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	mtu := func(s Session) {
		fast(s)
		if !s.SetMtu(MaxDatagram) {
			panic("SetMtu(1472) refused")
		}
	}
	for _, c := range Ciphers {
		for _, f := range fecModes {
			for _, d := range directions() {
				t.Run(c.Name+"/"+f.name+"/"+d.name, func(t *testing.T) {
					t.Parallel()
					srv := startServer(t, d.server, c, pass, f.ds, f.ps, mtu, echoHandler)
					tap := listenUDP(t)
					var mu sync.Mutex
					var sent, received int
					tap.OnWrite(func(p []byte, _ net.Addr) bool {
						mu.Lock()
						sent = max(sent, len(p))
						mu.Unlock()
						return true
					})
					tap.OnRead(func(p []byte, _ net.Addr) bool {
						mu.Lock()
						received = max(received, len(p))
						mu.Unlock()
						return true
					})
					cli := dialConn(t, d.client, 0x5c0, srv.l.Addr(), c, pass, f.ds, f.ps, tap, mtu)
					echo(t, cli, payload(1472, 256<<10), 32<<10)
					mu.Lock()
					defer mu.Unlock()
					if sent != MaxDatagram || received != MaxDatagram {
						t.Fatalf("largest datagram sent %d, received %d; want %d both ways", sent, received, MaxDatagram)
					}
				})
			}
		}
	}
}
