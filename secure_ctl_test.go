package kcp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestSecureReaderNeverWrites: while a secure listener's sender is stuck
// (it holds the drain token, as it does in a write to a full socket), the
// listener's reader goes on: initiations from a new source are answered into
// the control queue, which holds ctlSlotsListener replies and drops and
// counts the rest, with no handshake state made; and an established
// client's data keeps reaching its session. Nothing reaches the spoofed
// source until the sender is free; then the queued replies go out. Before
// the control queue, the reader wrote every reply itself, one datagram at a
// time, and would have blocked in the first write to a full socket.
func TestSecureReaderNeverWrites(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv, Cookie: CookieAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sc := l.conn.(*secureServerConn)
	cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, 0, 0)
	defer cli.Close()
	defer srv.Close()
	fast(cli)
	fast(srv)
	spoof, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	ini := newSecureInitiator(mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false))
	cookies0 := sc.stats.cookies.Load()

	l.sq.busy.Lock() // the sender is stuck in a write
	stuck := true
	defer func() {
		if stuck {
			l.sq.busy.Unlock()
		}
	}()

	const extra = 40
	n := ctlSlotsListener + extra
	for i := range n {
		init, err := ini.initiation(uint32(i+1), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := spoof.WriteTo(init, l.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "every initiation handled by the reader", func() bool {
		return sc.stats.cookies.Load()-cookies0+sc.ctl.drops.Load() >= uint64(n)
	})
	// The ring is full (a reply to the real client, a keepalive answer,
	// may hold a slot) and the rest were dropped.
	if got, queued := sc.stats.cookies.Load()-cookies0, sc.ctl.queued.Load(); queued != ctlSlotsListener || got < ctlSlotsListener-4 {
		t.Errorf("%d cookie replies queued, %d slots used; want the %d slots full", got, queued, ctlSlotsListener)
	}
	sc.mu.RLock()
	pending, peers := len(sc.pending), len(sc.peers)
	sc.mu.RUnlock()
	if pending != 0 || peers != 1 {
		t.Errorf("%d pending handshakes, %d peers; want 0 and the one real client", pending, peers)
	}

	// The reader handled the initiations before this datagram: it still
	// reads and opens for the established session.
	msg := []byte("still reading")
	if _, err := cli.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("data while the sender is stuck: %q, %v (the reader is blocked)", got, err)
	}
	// A reply written by the reader would have been on its way before the
	// reader took the message above: none may have arrived.
	buf := make([]byte, 2048)
	spoof.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if m, _, err := spoof.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the spoofed source received %d bytes while the sender was stuck (%v): the reader wrote", m, err)
	}

	stuck = false
	l.sq.busy.Unlock()
	l.sq.drain() // what the holder does after it lets the token go
	waitFor(t, 10*time.Second, "the sender to write the queued replies", func() bool {
		return sc.ctl.sent.Load() >= ctlSlotsListener
	})
	// They arrive (as many as the spoofed socket's buffer holds: they went
	// out in one batch).
	spoof.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, _, err := spoof.ReadFrom(buf)
	if err != nil || m != secCookieReplyLen || buf[0] != secCookie {
		t.Fatalf("after the sender is free: %d bytes of type %d (%v), want a cookie reply", m, buf[0], err)
	}
	echoCheck(t, cli, srv, 8<<10)
}

// TestCtlQueue: the control ring holds its number of slots, drops and
// counts beyond, keeps the order across the wrap, and allocates nothing.
func TestCtlQueue(t *testing.T) {
	q := newCtlQueue(4)
	to := netip.MustParseAddrPort("127.0.0.1:9")
	var out []outPacket
	next := byte(0)
	for round := range 3 {
		for i := range 5 {
			if ok := q.put([]byte{next + byte(i)}, to); ok != (i < 4) {
				t.Fatalf("round %d: put %d = %v", round, i, ok)
			}
		}
		out = q.take(out[:0])
		if len(out) != 4 {
			t.Fatalf("round %d: took %d, want 4", round, len(out))
		}
		for i, p := range out {
			if len(p.b) != 1 || p.b[0] != next+byte(i) || p.to != to {
				t.Fatalf("round %d: slot %d = %v %v", round, i, p.b, p.to)
			}
		}
		q.release(3, 3) // the last stays queued: the next round starts after it
		out = q.take(out[:0])
		if len(out) != 1 || out[0].b[0] != next+3 {
			t.Fatalf("round %d: after release, %d queued", round, len(out))
		}
		q.release(1, 1)
		next += 4
	}
	if d, s := q.drops.Load(), q.sent.Load(); d != 3 || s != 12 {
		t.Errorf("%d drops, %d sent; want 3, 12", d, s)
	}
	if q.put(make([]byte, ctlSlotLen+1), to) {
		t.Error("a reply larger than a slot was queued")
	}
	// Every reply a filter queues fits a slot.
	for _, pat := range []byte{patternIK, patternXX, patternNN} {
		for _, psk := range []bool{false, true} {
			if n := max(responseLen(pat, psk), finishLen(psk), secCookieReplyLen, ctlPathLen+SecureOverhead); n > ctlSlotLen {
				t.Errorf("pattern %d psk %v: a %d-byte reply does not fit a %d-byte slot", pat, psk, n, ctlSlotLen)
			}
		}
	}
	pkt := []byte("reply")
	out = out[:0]
	if n := testing.AllocsPerRun(100, func() {
		q.put(pkt, to)
		out = q.take(out[:0])
		q.release(len(out), len(out))
	}); n != 0 {
		t.Errorf("%.1f allocations per reply", n)
	}
}

// TestSecureDialledReaderNeverWrites: a secure client's reader answers a
// path challenge from the server into the client's control queue, not on
// the socket: while the client's sender is stuck, the listener receives
// nothing from the client (not the response, not an ACK) even though the
// client's reader has taken the challenge and the data after it; once the
// sender is free, the response goes out.
func TestSecureDialledReaderNeverWrites(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sc := l.conn.(*secureServerConn)
	cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, 0, 0)
	defer cli.Close()
	defer srv.Close()
	fast(cli)
	fast(srv)
	cc := cli.conn.(*secureClientConn)
	echoCheck(t, cli, srv, 4<<10) // settle: everything acknowledged
	sc.mu.RLock()
	var peer *securePeer
	for _, p := range sc.peers {
		peer = p
	}
	sc.mu.RUnlock()
	if peer == nil {
		t.Fatal("no peer at the listener")
	}

	cli.sq.busy.Lock() // the client's sender is stuck in a write
	stuck := true
	defer func() {
		if stuck {
			cli.sq.busy.Unlock()
		}
	}()
	// What the client sent before its sender stopped may still be on its
	// way through the listener's socket: count from when that has arrived
	// (no new datagram for 100 ms; nothing can come after it but a write
	// from the client's reader, which is what the test looks for).
	rx0 := l.IOStats().RxDatagrams
	for i := 0; i < 50 && eventually(100*time.Millisecond, func() bool { return l.IOStats().RxDatagrams != rx0 }); i++ {
		rx0 = l.IOStats().RxDatagrams
	}
	var ch [ctlPathLen]byte
	ch[0] = ctlPathChallenge
	copy(ch[1:], "8 bytes!")
	pkt, err := peer.kp.seal(make([]byte, 0, 128), secControl, ch[:], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.sock.WriteToUDPAddrPort(pkt, addrPortOf(cc.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	msg := []byte("after the challenge")
	if _, err := srv.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(cli, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("data after the challenge: %q, %v", got, err)
	}
	if eventually(300*time.Millisecond, func() bool { return l.IOStats().RxDatagrams != rx0 }) {
		t.Fatalf("the listener received %d datagrams from the client while its sender was stuck: the reader wrote", l.IOStats().RxDatagrams-rx0)
	}
	if q := cc.ctl.queued.Load(); q != 1 {
		t.Fatalf("%d replies queued at the client, want the path response", q)
	}

	stuck = false
	cli.sq.busy.Unlock()
	cli.sq.drain()
	waitFor(t, 10*time.Second, "the path response to go out", func() bool { return cc.ctl.sent.Load() >= 1 })
	waitFor(t, 10*time.Second, "the listener to hear the client again", func() bool { return l.IOStats().RxDatagrams > rx0 })
	echoCheck(t, cli, srv, 4<<10)
}

// TestSecurePeerIdleSweep: a listener forgets a peer securePeerIdle after
// its last authenticated packet, keeps one heard since, and a forgotten
// peer leaves the lock-free lookup caches invalid.
func TestSecurePeerIdleSweep(t *testing.T) {
	k := secureTestKeys()
	srvP := mustParams(t, &SecureConfig{PrivateKey: k.srvPriv}, true)
	sc := newSecureServerConn(nil, srvP)
	t0 := sc.born
	a := netip.MustParseAddrPort("192.0.2.1:1000")
	b := netip.MustParseAddrPort("192.0.2.2:1000")
	kpA := &secureKeypair{localIndex: 1}
	kpB := &secureKeypair{localIndex: 2}
	sc.promote(1, kpA, a, t0)
	pb := sc.promote(2, kpB, b, t0)
	later := t0.Add(securePeerIdle - time.Second)
	pb.heard.Store(int64(later.Sub(sc.born))) // b was heard since
	gen := sc.gen.Load()
	sc.mu.Lock()
	sc.sweepLocked(t0.Add(securePeerIdle + time.Second))
	_, okA := sc.peers[1]
	_, okB := sc.peers[2]
	sc.mu.Unlock()
	if okA || !okB {
		t.Errorf("after the idle bound: peer a kept %v (want false), peer b kept %v (want true)", okA, okB)
	}
	if sc.gen.Load() == gen {
		t.Error("forgetting a peer left the lookup caches valid")
	}
}
