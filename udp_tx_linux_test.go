//go:build linux

package kcp

import (
	"syscall"
	"testing"
)

// TestSendEPERMKeepsBatchMode: EPERM from sendmmsg for a datagram that a
// plain send refuses too (a firewall rule) costs that datagram and leaves
// the socket on sendmmsg with GSO; only a sendmmsg refused while the plain
// send of the same datagram passes (a sandbox forbidding the syscall)
// switches the writer to the plain path, once.
func TestSendEPERMKeepsBatchMode(t *testing.T) {
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(tx)
	gso := w.gsoEnabled()
	pkts := outPackets(sized(0, 1200, 1200, 1200), localAP(rx))

	w.batch.inject, w.injectPlain = syscall.EPERM, syscall.EPERM
	n, err := w.send(pkts)
	if n != 0 || err == nil {
		t.Fatalf("firewalled send: %d sent, %v; want 0 and EPERM", n, err)
	}
	if !w.batching() || w.gsoEnabled() != gso || w.fallbacks() != 0 {
		t.Fatalf("EPERM for one datagram changed the mode: batching %v, gso %v, fallbacks %d",
			w.batching(), w.gsoEnabled(), w.fallbacks())
	}
	if n, err := w.send(pkts[1:]); n != 2 || err != nil {
		t.Fatalf("next send: %d, %v", n, err)
	}
	collect(t, r, 2)

	w.batch.inject = syscall.EPERM // sendmmsg refused, sendto fine
	if n, err := w.send(pkts); n != 3 || err != nil {
		t.Fatalf("sandboxed send: %d, %v", n, err)
	}
	collect(t, r, 3)
	if w.batching() || w.fallbacks() != 1 {
		t.Fatalf("sendmmsg refused by a sandbox: batching %v, fallbacks %d", w.batching(), w.fallbacks())
	}
}
