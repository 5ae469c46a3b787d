//go:build linux

package kcp

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
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

// TestDialRefusedFailsFast (Linux: how other systems report ICMP errors on
// a connected UDP socket differs): Dial to a port nobody listens on fails as soon
// as the ICMP port unreachable for the first datagram comes back, with an
// error matching syscall.ECONNREFUSED, instead of a dead link 20 or more
// seconds later (the read deadline of 5 s would end the old wait first).
func TestDialRefusedFailsFast(t *testing.T) {
	leakCheck(t)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close() // nobody listens there now
	s, err := DialWithOptions(addr, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Read: %v, want ECONNREFUSED", err)
	}
	if _, err := s.Write([]byte("again")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Write after the refusal: %v, want ECONNREFUSED", err)
	}
}
