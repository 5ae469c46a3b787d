package kcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// kcpInErrors is the session's KCPInErrors, published or not.
func (s *UDPSession) kcpInErrors() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snmp.Copy().KCPInErrors + s.pend.KCPInErrors
}

// TestHostileSpoofedSources: 5,000 spoofed sources each send one 25-byte
// opener (no cipher: anyone can forge one) to a listener whose application
// accepts and echoes everything. Before, every source got a session that
// stayed (2,000 of 2,000 alive 12 s later, 41.8 KiB each). Now the listener
// ends at its default session cap, and the heap stays under 64 MiB.
func TestHostileSpoofedSources(t *testing.T) {
	const sources, limit = 5000, DefaultMaxSessions
	n := newImpNet(8192)
	sEP := n.listen(t)
	l, err := ServeConn(nil, 0, 0, sEP)
	if err != nil {
		t.Fatal(err)
	}
	relEchoServer(t, l, relFast)
	heap0 := relHeap()
	addrs := make([]net.Addr, sources)
	for i := range addrs {
		addrs[i] = n.addr()
	}
	for i, a := range addrs {
		// Keep the backlog from refusing: the attacker waits for Accept as
		// a patient one would, so the cap, not the backlog, is what stops it.
		if i%64 == 0 {
			eventually(10*time.Second, func() bool { return len(sEP.in) == 0 && l.Stats().Pending < acceptBacklog/2 })
		}
		sEP.inject(a, guardOpener(uint32(0x1000+i)))
	}
	st := guardSettled(t, l, sEP, sources-limit)
	heap1 := relHeap()
	t.Logf("%d spoofed sources: %+v; heap %+.1f MiB (%.1f KiB per session)", sources, st,
		(float64(heap1)-float64(heap0))/(1<<20), (float64(heap1)-float64(heap0))/1024/float64(max(st.Sessions, 1)))
	if st.Sessions > limit || st.Rejected.OverCap < sources-limit {
		t.Fatalf("the listener holds %d sessions with a cap of %d (%d refused)", st.Sessions, limit, st.Rejected.OverCap)
	}
	if st.Sessions < limit*9/10 {
		t.Fatalf("only %d sessions: the flood did not reach the cap of %d", st.Sessions, limit)
	}
	if heap1 > heap0+64<<20 {
		t.Fatalf("heap grew by %.1f MiB", float64(heap1-heap0)/(1<<20))
	}
}

// finFrom returns the first FIN among captured datagrams, opened with
// block to find it and returned as captured (sealed).
func finFrom(t *testing.T, c *relCapture, block BlockCrypt) []byte {
	t.Helper()
	crypt := newPacketCrypter(block)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.ring {
		p, err := crypt.open(append([]byte(nil), d...))
		if err == nil && len(p) >= 13 && binary.LittleEndian.Uint16(p[4:]) == typeClose && p[12]&^closeTokenEcho == closeFIN {
			return d
		}
	}
	t.Fatal("no FIN captured")
	return nil
}

// TestHostileStaleFINIgnored: a FIN recorded at the end of one conversation
// with a fixed conv (NewConn3), replayed into the next conversation with
// the same conv, must not cut it. Before, the server read 3 of 10 messages,
// then io.EOF. The FIN now carries a token of its conversation's random ts
// offsets and must name a final sn within the window.
func TestHostileStaleFINIgnored(t *testing.T) {
	parallelTest(t)
	const conv = 0xC0FFEE
	for _, c := range []relCipher{relCFB, relAEAD} {
		t.Run(c.name, func(t *testing.T) {
			n := newImpNet(1024)
			sEP := n.listen(t)
			l, err := ServeConn(c.block(t), 0, 0, sEP)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			accept := func() *UDPSession {
				l.SetDeadline(time.Now().Add(10 * time.Second))
				s, err := l.AcceptKCP()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				s.SetReadDeadline(time.Now().Add(20 * time.Second))
				return s
			}
			read := func(s *UDPSession, want string) {
				t.Helper()
				buf := make([]byte, 64)
				n, err := s.Read(buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
				}
			}

			// Conversation 1: three messages, then Close; the FIN is recorded.
			var capt relCapture
			c1 := newImpairConnSeed(n.listen(t), impairConfig{Drop: capt.hook}, 1)
			t.Cleanup(func() { c1.Close() })
			cli1, err := NewConn3(conv, sEP.LocalAddr(), c.block(t), 0, 0, c1)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := cli1.Write(fmt.Appendf(nil, "old %d", i)); err != nil {
					t.Fatal(err)
				}
			}
			srv1 := accept()
			for i := range 3 {
				read(srv1, fmt.Sprintf("old %d", i))
			}
			cli1.Close()
			if _, err := srv1.Read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("conversation 1 did not end with EOF: %v", err)
			}
			fin := finFrom(t, &capt, c.block(t))

			// Conversation 2, same conv, from a new address.
			c2 := n.listen(t)
			cli2, err := NewConn3(conv, sEP.LocalAddr(), c.block(t), 0, 0, c2)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cli2.Close() })
			if _, err := cli2.Write([]byte("new 0")); err != nil {
				t.Fatal(err)
			}
			srv2 := accept()
			read(srv2, "new 0")
			bad0 := srv2.kcpInErrors()
			sEP.inject(c2.LocalAddr(), fin)
			for i := 1; i < 10; i++ {
				if _, err := cli2.Write(fmt.Appendf(nil, "new %d", i)); err != nil {
					t.Fatal(err)
				}
				read(srv2, fmt.Sprintf("new %d", i))
			}
			if bad := srv2.kcpInErrors(); bad == bad0 {
				t.Fatal("the stale FIN was not counted")
			}
			// The real close still works.
			cli2.Close()
			if _, err := srv2.Read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("conversation 2 did not end with EOF: %v", err)
			}
		})
	}
}

// kcpHeld is the payload bytes (buffer capacity) the core holds in its
// queues and free lists.
func (kcp *KCP) kcpHeld() int {
	n := 0
	for _, r := range []*segRing{&kcp.sndQueue, &kcp.sndBuf, &kcp.rcvQueue} {
		for i := range r.len() {
			n += cap(r.at(i).data)
		}
	}
	for i, have := range kcp.rcvBuf.have {
		if have {
			n += cap(kcp.rcvBuf.seg[i].data)
		}
	}
	for _, b := range kcp.free {
		n += cap(b)
	}
	for _, b := range kcp.freeSmall {
		n += cap(b)
	}
	return n
}

// TestHostileIncompleteMessageBounded: a peer with the key sends segments
// that never complete a message (frg 1 on every one), full-size and tiny.
// Before, the receive queue held 288 segments against a window of 32, each
// in a full buffer (452 KiB per session at window 32, 2.9 MiB at 1024).
// Now the receive side holds at most 2 x window x mss.
func TestHostileIncompleteMessageBounded(t *testing.T) {
	parallelTest(t)
	for _, wnd := range []int{32, 1024} {
		for _, size := range []int{0, 8} { // 0: a full segment
			t.Run(fmt.Sprintf("wnd%d/len%d", wnd, size), func(t *testing.T) {
				p := newRelPair(t, relOpts{cipher: relCFB, hello: true, srvTune: func(s *UDPSession) { s.SetWindowSize(wnd, wnd) }})
				sEP := relEndpoint(p.down)
				blk := relCFB.block(t)
				p.srv.mu.Lock()
				base, mss, mtu := p.srv.kcp.rcvNxt, p.srv.kcp.segmentSize(), int(p.srv.kcp.mtu)
				p.srv.mu.Unlock()
				n := size
				if n == 0 {
					n = mss
				}
				payload := make([]byte, n)
				for i := range uint32(max(4*wnd, 512)) {
					seg := relSegment(p.cli.GetConv(), IKCP_CMD_PUSH, 1, 128, 0, base+i, 0, uint32(n), payload)
					for len(sEP.in) > cap(sEP.in)/2 {
						time.Sleep(100 * time.Microsecond) // backpressure on the injector
					}
					sEP.inject(p.cli.LocalAddr(), relSeal(blk, seg))
				}
				eventually(10*time.Second, func() bool { return len(sEP.in) == 0 })
				p.srv.mu.Lock()
				held, q, slots := p.srv.kcp.kcpHeld(), p.srv.kcp.recvQueued(), p.srv.kcp.rcvBuf.count
				p.srv.mu.Unlock()
				t.Logf("window %d, %d-byte fragments: receive queue %d, reorder slots %d, %d B held (bound 2 x window x mtu = %d B)",
					wnd, n, q, slots, held, 2*wnd*mtu)
				if q > wnd || held > 2*wnd*mtu {
					t.Fatalf("the session holds %d segments in its receive queue and %d B, window %d", q, held, wnd)
				}
			})
		}
	}
}

// TestHostileBlindAcks: a spoofed opener from a victim's address starts a
// download; blind ACKs follow, with una = 2^30 and with guesses of the
// (predictable) sequence numbers, none echoing a ts the server sent. Before,
// each moved the server's una and released the next window toward the
// victim (2.4 KB of ACKs drew 8.5 MB). Now none moves it: the server only
// retransmits its first window until the link is declared dead.
func TestHostileBlindAcks(t *testing.T) {
	n := newImpNet(4096)
	sEP := n.listen(t)
	l, err := ServeConn(nil, 0, 0, sEP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	victim := n.addr()
	const conv = 0xB11D
	sEP.inject(victim, guardOpener(conv))
	l.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.SetLinger(0) // the victim never acknowledges: no use waiting
		srv.Close()
	})
	go srv.Write(make([]byte, 1<<20)) // the download; ends when the session does
	sent := func() (sndUna, sndNxt uint32) {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.kcp.sndUna, srv.kcp.sndNxt
	}
	if !eventually(10*time.Second, func() bool { _, nxt := sent(); return nxt > 0 }) {
		t.Fatal("the server sent nothing")
	}
	_, nxt0 := sent()
	for i := range uint32(100) {
		una := uint32(1 << 30)
		if i%2 == 1 {
			una = i/2 + 1 // within what was sent, or just beyond
		}
		sEP.inject(victim, relSegment(conv, IKCP_CMD_ACK, 0, 1024, i, i/2, una, 0, nil))
	}
	eventually(10*time.Second, func() bool { return len(sEP.in) == 0 })
	una, nxt := sent()
	out := srv.GetSnmp().OutBytes
	t.Logf("100 blind ACKs (2.4 KB): server una %d, snd_nxt %d (was %d), %d B sent to the victim so far", una, nxt, nxt0, out)
	if una != 0 || nxt != nxt0 {
		t.Fatalf("blind ACKs moved the server: una %d, snd_nxt %d -> %d", una, nxt0, nxt)
	}
	srv.mu.Lock()
	v := srv.peerValidated()
	srv.mu.Unlock()
	if v {
		t.Fatal("blind ACKs validated the spoofed peer")
	}
}

// TestPeerValidatedByRealExchange: between two real ends, each session sees
// its peer validated once its first data is acknowledged.
func TestPeerValidatedByRealExchange(t *testing.T) {
	p := newRelPair(t, relOpts{cipher: relAEAD, hello: true})
	for _, s := range []*UDPSession{p.cli, p.srv} {
		ok := eventually(10*time.Second, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.peerValidated()
		})
		if !ok {
			t.Fatal("a genuine peer was never validated")
		}
	}
}

// TestHostileZeroWindowGivesUp: a peer that never reads keeps its window
// at zero; before, the writer's session and its buffers stayed forever.
// With a zero-window limit the link is declared dead once it passes.
func TestHostileZeroWindowGivesUp(t *testing.T) {
	parallelTest(t)
	p := newRelPair(t, relOpts{cipher: relCFB, hello: true})
	p.cli.SetZeroWindowLimit(300 * time.Millisecond)
	p.cli.SetWriteDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	var err error
	for err == nil {
		_, err = p.cli.Write(buf)
	}
	if !errors.Is(err, errDeadLink) {
		t.Fatalf("Write to a peer that never reads ended with %v; want the dead-link error", err)
	}
}

// TestHostileReplayAfterQuietKeepsSession: another client's first datagram,
// replayed with the victim's source address once the victim's session has
// been quiet for a while, replaced the session (kcp-go: at once; kcpx: after
// 2 s of quiet) and the victim's Read returned io.EOF. Now no datagram
// closes or replaces a live session.
func TestHostileReplayAfterQuietKeepsSession(t *testing.T) {
	var capt relCapture
	victim := newRelPair(t, relOpts{cipher: relAEAD, hello: true})
	n := relEndpoint(victim.down).net
	other := newImpairConnSeed(n.listen(t), impairConfig{Drop: capt.hook}, 1)
	t.Cleanup(func() { other.Close() })
	oc, err := NewConn2(victim.down.LocalAddr(), relAEAD.block(t), 0, 0, other)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oc.Close() })
	if _, err := oc.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	victim.l.SetDeadline(time.Now().Add(10 * time.Second))
	oSrv, err := victim.l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oSrv.Close() })
	// The victim's session has heard nothing for 3 s (set, not waited for).
	victim.srv.mu.Lock()
	victim.srv.lastRecv = victim.srv.kcp.clock() - 3000
	victim.srv.mu.Unlock()
	relEndpoint(victim.down).inject(victim.cli.LocalAddr(), capt.firstOne())
	relRoundTrip(t, victim.cli, victim.srv)
	if s, pend := relListenerLoad(victim.l); s != 2 || pend != 0 {
		t.Fatalf("listener holds %d sessions and %d pending; want the 2 live ones", s, pend)
	}
}
