package kcp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rebindConn is a client's PacketConn over a loopback UDP socket that the
// test can swap for a fresh one (a new source port, as after a NAT
// rebinding) while a session uses it. The old socket is closed.
type rebindConn struct {
	mu     sync.Mutex
	cur    *net.UDPConn
	rdl    time.Time
	closed bool
	// capture, when set, sees every datagram written (a copy).
	capture func([]byte)
}

func newRebindConn(t testing.TB) *rebindConn {
	c := &rebindConn{}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.cur = u
	return c
}

func (c *rebindConn) current() *net.UDPConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// rebind moves the conn to a fresh socket on a new port and closes the old.
func (c *rebindConn) rebind(t testing.TB) *net.UDPAddr {
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	old := c.cur
	c.cur = u
	u.SetReadDeadline(c.rdl)
	c.mu.Unlock()
	old.Close()
	return u.LocalAddr().(*net.UDPAddr)
}

func (c *rebindConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		u := c.current()
		n, a, err := u.ReadFrom(b)
		if c.swappedAway(u, err) {
			continue
		}
		return n, a, err
	}
}

// swappedAway reports whether err is u closed by rebind, not by Close: the
// call should be made again on the current socket.
func (c *rebindConn) swappedAway(u *net.UDPConn, err error) bool {
	if err == nil || !errors.Is(err, net.ErrClosed) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != u && !c.closed
}

func (c *rebindConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	f := c.capture
	c.mu.Unlock()
	if f != nil {
		f(append([]byte(nil), b...))
	}
	for {
		u := c.current()
		n, err := u.WriteTo(b, addr)
		// A write that took the socket rebind then closed goes out from
		// the new one, as through a NAT's new port (a loaded race run broke
		// the session on this error).
		if c.swappedAway(u, err) {
			continue
		}
		return n, err
	}
}

func (c *rebindConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.current().Close()
}

func (c *rebindConn) LocalAddr() net.Addr { return c.current().LocalAddr() }

func (c *rebindConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.current().SetWriteDeadline(t)
}

func (c *rebindConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	u := c.cur
	c.mu.Unlock()
	return u.SetReadDeadline(t)
}

func (c *rebindConn) SetWriteDeadline(t time.Time) error { return c.current().SetWriteDeadline(t) }

// rebindEchoServer accepts sessions on l and echoes what they send until
// they fail.
func rebindEchoServer(t testing.TB, l *Listener) {
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				io.Copy(s, s)
			}()
		}
	}()
}

// rebindTransfer streams total bytes through an echo server on cli and
// checks them back, calling mid once half of them came back. It returns the
// longest wait between two reads after mid ran, or an error.
func rebindTransfer(cli *UDPSession, total int, mid func()) (time.Duration, error) {
	want := make([]byte, total)
	r := rand.New(rand.NewPCG(13, 8))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < total; off += 4096 {
			if _, err := cli.Write(want[off:min(off+4096, total)]); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	got := make([]byte, 0, total)
	buf := make([]byte, 65536)
	var stall time.Duration
	var last time.Time
	switched := false
	for len(got) < total {
		cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := cli.Read(buf)
		if err != nil {
			return stall, err
		}
		now := time.Now()
		if switched {
			stall = max(stall, now.Sub(last))
		}
		last = now
		got = append(got, buf[:n]...)
		if !switched && len(got) >= total/2 {
			mid()
			switched, last = true, time.Now()
		}
	}
	if err := <-werr; err != nil {
		return stall, err
	}
	if !bytes.Equal(got, want) {
		return stall, errors.New("echo differs from what was sent")
	}
	return stall, nil
}

func rebindPair(t *testing.T, block func() BlockCrypt) (*Listener, *UDPSession, *rebindConn) {
	return rebindPairTuned(t, block, true, 0, 0)
}

// rebindPairTuned is rebindPair; with fast the client runs nodelay 1,
// interval 20 ms, resend 2, no congestion window, else kcp-go's defaults.
func rebindPairTuned(t *testing.T, block func() BlockCrypt, fast bool, ds, ps int) (*Listener, *UDPSession, *rebindConn) {
	t.Helper()
	l, err := ListenWithOptions("127.0.0.1:0", block(), ds, ps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rebindEchoServer(t, l)
	rc := newRebindConn(t)
	cli, err := NewConn4(rand.Uint32(), l.Addr(), block(), ds, ps, true, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if fast {
		cli.SetNoDelay(1, 20, 2, 1)
	}
	cli.SetWindowSize(128, 128)
	return l, cli, rc
}

func gcmBlock() BlockCrypt {
	b, err := NewAESGCMCrypt(bytes.Repeat([]byte{7}, 16))
	if err != nil {
		panic(err)
	}
	return b
}

// A GCM session whose client moves to a new source port mid-transfer
// follows it: the listener challenges the new address, the client answers,
// the session moves and the transfer completes byte-exact, within 1 s of
// the move. (Before rebinding existed, the client's datagrams from the new
// port were dropped and the transfer ended in a dead link.)
func TestRebindGCMSessionFollowsClient(t *testing.T) {
	t.Run("nodelay", func(t *testing.T) { testRebindFollows(t, true, 0, 0) })
	t.Run("defaults", func(t *testing.T) { testRebindFollows(t, false, 0, 0) })
	t.Run("nodelay-fec10.3", func(t *testing.T) { testRebindFollows(t, true, 10, 3) })
}

func testRebindFollows(t *testing.T, fast bool, ds, ps int) {
	l, cli, rc := rebindPairTuned(t, gcmBlock, fast, ds, ps)
	var switchAt time.Time
	var newAddr *net.UDPAddr
	stall, err := rebindTransfer(cli, 1<<20, func() {
		switchAt = time.Now()
		newAddr = rc.rebind(t)
	})
	if err != nil {
		t.Fatalf("transfer across the rebinding: %v (listener %+v)", err, l.Stats())
	}
	st := l.Stats()
	if st.Paths.Moves != 1 || st.Paths.Challenges == 0 {
		t.Fatalf("paths %+v, want one move after a challenge", st.Paths)
	}
	l.mu.Lock()
	var srv *UDPSession
	for _, s := range l.sessions {
		srv = s
	}
	l.mu.Unlock()
	if srv == nil || srv.RemoteAddr().String() != newAddr.String() {
		t.Fatalf("server session's RemoteAddr %v, want %v", srv.RemoteAddr(), newAddr)
	}
	t.Logf("longest read stall after the port change: %v (%v since the change); paths %+v",
		stall, time.Since(switchAt), st.Paths)
	if stall > time.Second {
		t.Errorf("the transfer stalled %v after the port change, want at most 1 s", stall)
	}
}

// With a cipher that is not an AEAD (AES-CFB) nothing is challenged and
// the session does not move (listener_rebind.go): the client's datagrams
// from its new port are dropped and counted, and its link dies.
func TestRebindCFBDoesNotMove(t *testing.T) {
	block := func() BlockCrypt {
		b, _ := NewAESBlockCrypt(bytes.Repeat([]byte{7}, 16))
		return b
	}
	l, cli, rc := rebindPair(t, block)
	cli.mu.Lock()
	cli.kcp.deadLink = 6 // fail within a few seconds
	cli.mu.Unlock()
	_, err := rebindTransfer(cli, 256<<10, func() { rc.rebind(t) })
	if err == nil {
		t.Fatal("transfer completed across a port change with AES-CFB, want a failed link")
	}
	// The client can give up before the listener's reader has taken the
	// datagrams from the new port out of its socket (a loaded race run saw
	// the counts still zero): wait for them to be read, then check.
	eventually(5*time.Second, func() bool { return l.Stats().Rejected.NotOpener > 0 })
	st := l.Stats()
	if st.Paths != (PathStats{}) {
		t.Fatalf("paths %+v under CFB, want none", st.Paths)
	}
	if st.Rejected.NotOpener == 0 {
		t.Fatalf("rejected %+v: the client's datagrams from its new port went uncounted", st.Rejected)
	}
}

// A datagram of a live GCM session replayed from another address draws at
// most pathMaxChallenges challenges there and moves nothing: the attacker
// cannot read the challenge, and the real client keeps its session.
func TestRebindReplayDoesNotMove(t *testing.T) {
	l, cli, rc := rebindPair(t, gcmBlock)
	captured := rc.record(64)
	relEchoRounds(t, cli, 8)

	atk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer atk.Close()
	var challenges, challengeBytes atomic.Int64
	go func() {
		b := make([]byte, 2048)
		for {
			n, _, err := atk.ReadFrom(b)
			if err != nil {
				return
			}
			challengeBytes.Add(int64(n))
			challenges.Add(1)
		}
	}()
	replays := captured()
	if len(replays) == 0 {
		t.Fatal("captured nothing")
	}
	// Replay everything captured, several times, from the attacker's port,
	// with the real client working in between.
	var replayBytes int64
	for range 5 {
		for _, b := range replays {
			if _, err := atk.WriteTo(b, l.Addr()); err != nil {
				t.Fatal(err)
			}
			replayBytes += int64(len(b))
		}
		relEchoRounds(t, cli, 2)
	}
	// Wait until the listener has sent every challenge it will (the ones it
	// counted), then check the attacker got no more than the bound.
	deadline := time.Now().Add(5 * time.Second)
	for int64(l.Stats().Paths.Challenges) != challenges.Load() && time.Now().Before(deadline) {
		relEchoRounds(t, cli, 1)
	}
	// A response the attacker makes up (here sealed under the key, which
	// the attacker would not have) fails: it echoes no challenge.
	forged := make([]byte, pathSignalLen)
	putPathSignal(forged, cli.conv, pathSigResponse, []byte("guessing"))
	failures := l.Stats().Paths.Failures
	if _, err := atk.WriteTo(relSeal(gcmBlock(), forged), l.Addr()); err != nil {
		t.Fatal(err)
	}
	for l.Stats().Paths.Failures == failures && time.Now().Before(deadline) {
		relEchoRounds(t, cli, 1)
	}
	st := l.Stats()
	if st.Paths.Moves != 0 || st.Paths.Failures == failures {
		t.Fatalf("a replay or a forged response moved the session or went uncounted: %+v", st.Paths)
	}
	if n := challenges.Load(); n > pathMaxChallenges || n != int64(st.Paths.Challenges) {
		t.Fatalf("attacker address received %d datagrams, listener counted %d challenges; want equal and at most %d",
			n, st.Paths.Challenges, pathMaxChallenges)
	}
	if st.Sessions != 1 {
		t.Fatalf("listener holds %d sessions, want 1", st.Sessions)
	}
	if out := challengeBytes.Load(); out > 3*replayBytes {
		t.Fatalf("%d B sent to the unproven address for %d B received from it: over 3x", out, replayBytes)
	}
	t.Logf("%d datagrams replayed %d times (%d B): %d challenges (%d B) to the attacker, paths %+v",
		len(replays), 5, replayBytes, challenges.Load(), challengeBytes.Load(), st.Paths)
}

// relEchoRounds sends n small messages through the echo server and checks
// each comes back.
func relEchoRounds(t testing.TB, cli *UDPSession, n int) {
	t.Helper()
	buf := make([]byte, 256)
	for i := range n {
		msg := []byte{byte(i), 1, 2, 3, 4, 5, 6, 7}
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := 0
		for got < len(msg) {
			m, err := cli.Read(buf[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += m
		}
		if !bytes.Equal(buf[:got], msg) {
			t.Fatalf("echo %x, want %x", buf[:got], msg)
		}
	}
}

// The core's refusals of forged acknowledgements reach the session's Stats
// (ForgedAcks: an ACK for a sequence number never sent; BadTsAcks: an ACK
// echoing a ts we never sent) and, since kcp-go's Snmp has no column for
// them, DefaultSnmp.KCPInErrors.
func TestForgedAckCountersSurface(t *testing.T) {
	_, cli, _ := rebindPair(t, gcmBlock)
	relEchoRounds(t, cli, 2)
	cli.mu.Lock()
	cli.publishLocked()
	sent := cli.kcp.sndNxt
	cli.mu.Unlock()
	before := DefaultSnmp.Copy()
	conv := cli.conv
	forged := relSegment(conv, IKCP_CMD_ACK, 0, 128, 0, sent+1000, 0, 0, nil) // sn never sent
	badTs := relSegment(conv, IKCP_CMD_ACK, 0, 128, 1, 0, 0, 0, nil)          // ts without the offset
	cli.input(forged, len(forged))
	cli.input(badTs, len(badTs))
	cli.input(badTs, len(badTs))
	st := cli.Stats()
	if st.ForgedAcks != 1 || st.BadTsAcks != 2 {
		t.Fatalf("Stats: ForgedAcks %d, BadTsAcks %d; want 1, 2", st.ForgedAcks, st.BadTsAcks)
	}
	cli.mu.Lock()
	cli.publishLocked()
	cli.mu.Unlock()
	after := DefaultSnmp.Copy()
	if d := after.KCPInErrors - before.KCPInErrors; d < 3 {
		t.Errorf("DefaultSnmp.KCPInErrors grew by %d, want at least 3", d)
	}
	if d := cli.GetSnmp(); d.KCPInErrors < 3 {
		t.Errorf("the session's KCPInErrors %d, want at least 3", d.KCPInErrors)
	}
	if st := cli.Stats(); st.ForgedAcks != 1 || st.BadTsAcks != 2 {
		t.Fatalf("after publishing: ForgedAcks %d, BadTsAcks %d; want 1, 2", st.ForgedAcks, st.BadTsAcks)
	}
}

// FuzzListenerRebind feeds sealed datagrams of any content from three
// addresses to a GCM listener holding one session: nothing may panic, and
// without the bytes of a challenge (random, never seen by the fuzzer) the
// session never moves.
func FuzzListenerRebind(f *testing.F) {
	const conv = 0x1234
	home := netip.MustParseAddrPort("127.0.0.1:7000")
	srcs := []netip.AddrPort{home, netip.MustParseAddrPort("127.0.0.1:7001"), netip.MustParseAddrPort("127.0.0.2:7000")}
	push := relSegment(conv, IKCP_CMD_PUSH, 0, 32, 1, 1, 1, 3, []byte("abc"))
	resp := make([]byte, pathSignalLen)
	putPathSignal(resp, conv, pathSigResponse, make([]byte, 8))
	f.Add(byte(1), push)
	f.Add(byte(1), resp)
	f.Add(byte(2), resp[:pathSignalLen-1])
	f.Add(byte(0), relSegment(conv, IKCP_CMD_ACK, 0, 32, 1, 0, 0, 0, nil))
	n := newMemNet(43)
	l, _ := ServeConn(gcmBlock(), 0, 0, n.listen("srv"))
	f.Cleanup(func() { l.Close() })
	opener := relSegment(conv, IKCP_CMD_PUSH, 0, 32, 1, 0, 0, 1, []byte{1})
	l.handle(relSeal(gcmBlock(), opener), home, nil)
	l.mu.Lock()
	s := l.sessions[home]
	l.mu.Unlock()
	if s == nil {
		f.Fatal("no session for the opener")
	}
	if acc, err := l.AcceptKCP(); err != nil || acc != s { // else it expires after 5 s
		f.Fatal("opener's session not accepted", err)
	}
	block := gcmBlock()
	f.Fuzz(func(t *testing.T, which byte, payload []byte) {
		if len(payload) > 1400 {
			return
		}
		l.handle(relSeal(block, payload), srcs[int(which)%len(srcs)], nil)
		l.mu.Lock()
		key, held := s.lkey, l.sessions[home]
		l.mu.Unlock()
		if key != home || held != s {
			t.Fatalf("session moved to %v (map holds %p at home, want %p) without answering a challenge", key, held, s)
		}
	})
}

// A conv held by two live sessions (fixed convs, NewConn3/4) is ambiguous:
// a datagram of it from a new address could be either client's, so nothing
// is challenged and nothing moves.
func TestRebindSharedConvNotChallenged(t *testing.T) {
	l, err := ListenWithOptions("127.0.0.1:0", gcmBlock(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rebindEchoServer(t, l)
	var clis [2]*UDPSession
	var rcs [2]*rebindConn
	for i := range clis {
		rcs[i] = newRebindConn(t)
		c, err := NewConn4(0x5a5a5a5a, l.Addr(), gcmBlock(), 0, 0, true, rcs[i])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetNoDelay(1, 20, 2, 1)
		clis[i] = c
		relEchoRounds(t, c, 1)
	}
	before := l.Stats()
	rcs[0].rebind(t)
	if _, err := clis[0].Write([]byte("from a new port")); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, l, func(st ListenerStats) bool { return st.Rejected.NotOpener > before.Rejected.NotOpener })
	if st.Paths != (PathStats{}) {
		t.Fatalf("paths %+v for a conv two sessions hold, want none", st.Paths)
	}
	relEchoRounds(t, clis[1], 2) // the other client is unaffected
}

// waitStats polls the listener's counters until ok says yes or 10 s pass.
func waitStats(t testing.TB, l *Listener, ok func(ListenerStats) bool) ListenerStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := l.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener counters never got there: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An on-path attacker that relays a challenge to the real client and
// replays the client's response from its own address moves the session to
// itself; the client's next datagrams, from its real address, draw a
// challenge only it can answer, and the session moves back.
func TestRebindRelayedResponseMovesBack(t *testing.T) {
	l, cli, rc := rebindPair(t, gcmBlock)
	relEchoRounds(t, cli, 2)
	atk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer atk.Close()
	// The attacker replays one of the client's datagrams and reads the
	// challenge it draws.
	var last []byte
	var mu sync.Mutex
	rc.mu.Lock()
	rc.capture = func(b []byte) { mu.Lock(); last = b; mu.Unlock() }
	rc.mu.Unlock()
	relEchoRounds(t, cli, 1)
	mu.Lock()
	replay := last
	mu.Unlock()
	if _, err := atk.WriteTo(replay, l.Addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	atk.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := atk.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no challenge: %v", err)
	}
	challenge := append([]byte(nil), buf[:n]...)
	// Relay it to the client as if from the server; capture the response.
	responses := make(chan []byte, 4)
	rc.mu.Lock()
	rc.capture = func(b []byte) {
		if len(b) == len(challenge) {
			responses <- b
		}
	}
	rc.mu.Unlock()
	cli.rxDatagram(challenge, addrPortOf(l.Addr()), nil)
	var resp []byte
	select {
	case resp = <-responses:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not answer the relayed challenge")
	}
	rc.mu.Lock()
	rc.capture = nil
	rc.mu.Unlock()
	if _, err := atk.WriteTo(resp, l.Addr()); err != nil {
		t.Fatal(err)
	}
	// The move back may already have happened by the time the counters
	// are read: the client's own retransmissions draw the next challenge.
	waitStats(t, l, func(st ListenerStats) bool { return st.Paths.Moves >= 1 })
	// The real client goes on from its own address: challenged, answers,
	// the session comes back.
	relEchoRounds(t, cli, 3)
	st := waitStats(t, l, func(st ListenerStats) bool { return st.Paths.Moves >= 2 })
	l.mu.Lock()
	_, home := l.sessions[addrPortOf(rc.LocalAddr())]
	l.mu.Unlock()
	if !home {
		t.Fatalf("session not back at the client's address: %+v", st.Paths)
	}
	t.Logf("paths %+v", st.Paths)
}

// addrPortOf is a UDP address as the listener keys it (IPv4 unmapped).
func addrPortOf(a net.Addr) netip.AddrPort {
	ap := a.(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// record starts keeping copies of the first max datagrams c writes; the
// returned function gives those kept so far.
func (c *rebindConn) record(max int) func() [][]byte {
	var mu sync.Mutex
	var kept [][]byte
	c.mu.Lock()
	c.capture = func(b []byte) {
		mu.Lock()
		if len(kept) < max {
			kept = append(kept, b)
		}
		mu.Unlock()
	}
	c.mu.Unlock()
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return kept
	}
}
