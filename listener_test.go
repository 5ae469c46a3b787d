package kcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawSegment encodes one KCP segment header plus payload.
func rawSegment(conv uint32, cmd byte, sn uint32, payload []byte) []byte {
	b := make([]byte, IKCP_OVERHEAD+len(payload))
	binary.LittleEndian.PutUint32(b, conv)
	b[4] = cmd
	binary.LittleEndian.PutUint16(b[6:], 32)
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(payload)))
	copy(b[24:], payload)
	return b
}

func (l *Listener) sessionCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions) + len(l.others)
}

func (l *Listener) pendingCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// TestListenerCreatesSessionsOnlyForSegments: garbage, datagrams that fail
// to open, parity alone, OOB and close signals never create a session.
func TestListenerCreatesSessionsOnlyForSegments(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	for _, withCipher := range []bool{false, true} {
		t.Run(fmt.Sprintf("cipher=%v", withCipher), func(t *testing.T) {
			n := newMemNet(20)
			var block BlockCrypt
			if withCipher {
				block, _ = NewAESBlockCrypt(testKey)
			}
			l, _ := ServeConn(block, 10, 3, n.listen("srv"))
			defer l.Close()
			src := n.listen("src")
			defer src.Close()
			seal := func(p []byte) []byte {
				c := newPacketCrypter(block)
				buf := make([]byte, c.headerSize()+len(p), c.headerSize()+len(p)+16)
				copy(buf[c.headerSize():], p)
				return c.seal(buf)
			}
			parity := make([]byte, 40)
			binary.LittleEndian.PutUint32(parity, 10)
			binary.LittleEndian.PutUint16(parity[4:], typeParity)
			oob := make([]byte, 20)
			putOOBHeader(oob, 1, 8)
			closeSig := make([]byte, closeSignalLen)
			binary.LittleEndian.PutUint32(closeSig, 0xFFFFFFFF)
			binary.LittleEndian.PutUint16(closeSig[4:], typeClose)
			binary.LittleEndian.PutUint16(closeSig[6:], closeSignalLen)
			garbage := randBytes(21, 200)
			badCmd := rawSegment(9, 80, 0, nil)
			short := rawSegment(9, IKCP_CMD_PUSH, 0, nil)[:23]
			for _, p := range [][]byte{garbage, garbage[:24], garbage[:3], {}, seal(parity), seal(oob), seal(closeSig), seal(badCmd), seal(short)} {
				src.WriteTo(p, memAddr("srv"))
			}
			if withCipher {
				// A real segment sealed with another key.
				other, _ := NewAESBlockCrypt([]byte("another key, also 32 bytes long!"))
				c := newPacketCrypter(other)
				seg := rawSegment(9, IKCP_CMD_PUSH, 0, []byte("x"))
				buf := make([]byte, 20+len(seg))
				copy(buf[20:], seg)
				src.WriteTo(c.seal(buf), memAddr("srv"))
			}
			// A marker from a second source proves the earlier datagrams
			// were all handled (one reader, in order).
			marker := n.listen("marker")
			defer marker.Close()
			marker.WriteTo(seal(rawSegment(77, IKCP_CMD_PUSH, 0, []byte("m"))), memAddr("srv"))
			l.SetDeadline(time.Now().Add(10 * time.Second))
			s, err := l.AcceptKCP()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.GetConv() != 77 || s.RemoteAddr().String() != "marker" {
				t.Fatalf("accepted conv %d from %s", s.GetConv(), s.RemoteAddr())
			}
			if c := l.sessionCount(); c != 1 {
				t.Fatalf("%d sessions, want only the marker's", c)
			}
		})
	}
}

// rawOpeners opens count sources src0, src1, ... on n, each sending one
// opener (a PUSH of its own conv) to "srv"; open(i) sends source i's opener
// again. The sources close when the test ends.
func rawOpeners(t *testing.T, n *memNet, count int) (open func(i int)) {
	srcs := make([]*memConn, count)
	open = func(i int) {
		srcs[i].WriteTo(rawSegment(uint32(i+1), IKCP_CMD_PUSH, 0, []byte("hi")), memAddr("srv"))
	}
	for i := range srcs {
		srcs[i] = n.listen(fmt.Sprintf("src%d", i))
		t.Cleanup(func() { srcs[i].Close() })
		open(i)
	}
	return open
}

// TestListenerSetAcceptBacklog: SetAcceptBacklog moves the cap on sessions
// waiting for Accept both ways; refused openers are counted and create
// nothing, and a retransmitted opener gets in once there is room.
func TestListenerSetAcceptBacklog(t *testing.T) {
	leakCheck(t)
	n := newMemNet(23)
	lc := n.listen("srv")
	l, _ := ServeConn(nil, 0, 0, lc)
	defer l.Close()
	l.SetAcceptBacklog(8)
	const sources = 20
	open := rawOpeners(t, n, sources)
	waitFor(t, 10*time.Second, "every opener to be read", func() bool {
		return l.Stats().Rejected.OverCap == sources-8
	})
	if p, c := l.pendingCount(), l.sessionCount(); p != 8 || c != 8 {
		t.Fatalf("%d pending, %d sessions; want the backlog of 8", p, c)
	}
	// A larger backlog admits the refused openers when they retransmit.
	l.SetAcceptBacklog(sources)
	for i := 8; i < sources; i++ {
		open(i)
	}
	waitFor(t, 10*time.Second, "the retransmitted openers to be admitted", func() bool { return l.pendingCount() == sources })
	// n <= 0 restores the default: above the sessions now waiting.
	l.SetAcceptBacklog(0)
	if got := l.guard.backlog.Load(); got != acceptBacklog {
		t.Fatalf("backlog %d after SetAcceptBacklog(0), want the default %d", got, acceptBacklog)
	}
	for range sources {
		s, err := l.AcceptKCP()
		if err != nil {
			t.Fatal(err)
		}
		s.SetLinger(50 * time.Millisecond) // the raw source never answers a FIN
		s.Close()
	}
}

// TestListenerBacklogAndExpiry: at most acceptBacklog sessions wait for
// Accept; one nobody accepts is closed and forgotten after the pending TTL.
func TestListenerBacklogAndExpiry(t *testing.T) {
	leakCheck(t)
	n := newMemNet(22)
	lc := n.listen("srv")
	l, _ := ServeConn(nil, 0, 0, lc)
	defer l.Close()
	l.pendingTTL = 300 * time.Millisecond
	rawOpeners(t, n, acceptBacklog+20)
	waitFor(t, 10*time.Second, "the backlog to fill", func() bool { return l.pendingCount() == acceptBacklog })
	if c := l.sessionCount(); c != acceptBacklog {
		t.Fatalf("%d sessions, want the backlog cap %d", c, acceptBacklog)
	}
	// Accept one, let the rest expire.
	s, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetLinger(50 * time.Millisecond) // the raw source never answers a FIN
	waitFor(t, 10*time.Second, "pending sessions to expire", func() bool { return l.sessionCount() == 1 && l.pendingCount() == 0 })
	l.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := l.AcceptKCP(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Accept after expiry: %v", err)
	}
	if _, err := s.Read(make([]byte, 10)); err != nil {
		t.Fatalf("the accepted session did not survive: %v", err)
	}
}

// TestListenerConvReplacement: a PUSH with sn 0 and a new conv from a
// known source neither creates a session nor touches the live one (it may
// be a replay: nothing recorded may close a session). A restarted client
// that keeps retransmitting its first segment gets its session once the
// old one is gone, here closed by SetIdleClose.
func TestListenerConvReplacement(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	n := newMemNet(23)
	l, _ := ServeConn(nil, 0, 0, n.listen("srv"))
	defer l.Close()
	c := n.listen("cli")
	defer c.Close()
	c.WriteTo(rawSegment(1, IKCP_CMD_PUSH, 0, []byte("one")), memAddr("srv"))
	old, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// Same conv, sn 0 again: a retransmission, not a new session.
	c.WriteTo(rawSegment(1, IKCP_CMD_PUSH, 0, []byte("one")), memAddr("srv"))
	// A new conv with sn 0: the live session is not torn down by it.
	c.WriteTo(rawSegment(2, IKCP_CMD_PUSH, 0, []byte("two")), memAddr("srv"))
	l.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if s, err := l.AcceptKCP(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a new conv replaced a live session: %v, %v", s, err)
	}
	if st := l.Stats(); st.Rejected.NotOpener == 0 || st.Sessions != 1 {
		t.Fatalf("stats %+v: want the new conv rejected and 1 session", st)
	}
	// The client restarted: it keeps retransmitting its first segment;
	// once the old session is idle-closed, the new conv gets a session.
	l.SetIdleClose(300 * time.Millisecond)
	var s *UDPSession
	for deadline := time.Now().Add(10 * time.Second); s == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the restarted client's conv never got a session after the old one was idle-closed")
		}
		c.WriteTo(rawSegment(2, IKCP_CMD_PUSH, 0, []byte("two")), memAddr("srv"))
		l.SetDeadline(time.Now().Add(200 * time.Millisecond))
		var err error
		if s, err = l.AcceptKCP(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	defer s.Close()
	if s.GetConv() != 2 {
		t.Fatalf("conv %d, want 2", s.GetConv())
	}
	if _, err := old.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) && !errors.Is(err, errIdle) {
		t.Fatalf("old session after the idle close: %v", err)
	}
	if l.sessionCount() != 1 {
		t.Fatalf("%d sessions", l.sessionCount())
	}
}

// TestListenerCloseLiveSessions: Close ends every session (blocked reads
// return the closed error), stops the read loop, and the clients learn of it.
func TestListenerCloseLiveSessions(t *testing.T) {
	leakCheck(t)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var clis, srvs []*UDPSession
	for range 5 {
		c, s := acceptedPair(t, l, nil, 0, 0)
		clis = append(clis, c)
		srvs = append(srvs, s)
	}
	errs := make(chan error, len(srvs))
	for _, s := range srvs {
		go func() { _, err := s.Read(make([]byte, 10)); errs <- err }()
	}
	cliErrs := make(chan error, len(clis))
	for _, c := range clis {
		go func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := c.Read(make([]byte, 10))
			errs := err
			cliErrs <- errs
		}()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for range srvs {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("server session Read: %v", err)
		}
	}
	for range clis {
		if err := <-cliErrs; err != io.EOF {
			t.Errorf("client Read after the listener closed: %v, want io.EOF", err)
		}
	}
	for _, c := range clis {
		c.Close()
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) || !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if l.sessionCount() != 0 {
		t.Errorf("%d sessions left", l.sessionCount())
	}
}

// TestListenerAcceptCloseRace: Accepts blocked in several goroutines all
// return the closed error when Close runs, while clients keep arriving.
func TestListenerAcceptCloseRace(t *testing.T) {
	leakCheck(t)
	n := newMemNet(26)
	l, _ := ServeConn(nil, 0, 0, n.listen("srv"))
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				s, err := l.AcceptKCP()
				if err != nil {
					errs <- err
					return
				}
				s.Close()
			}
		}()
	}
	var srcs []*memConn
	for i := range 50 {
		c := n.listen(fmt.Sprintf("c%d", i))
		srcs = append(srcs, c)
		c.WriteTo(rawSegment(uint32(i+1), IKCP_CMD_PUSH, 0, []byte("x")), memAddr("srv"))
		if i == 25 {
			l.Close()
		}
	}
	for range 8 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept: %v", err)
		}
	}
	for _, c := range srcs {
		c.Close()
	}
	if l.sessionCount() != 0 {
		t.Errorf("%d sessions after Close", l.sessionCount())
	}
}

// TestServeConnLeavesConnOpen: Listener.Close on a caller's conn stops the
// read loop without closing the conn.
func TestServeConnLeavesConnOpen(t *testing.T) {
	leakCheck(t)
	n := newMemNet(24)
	lc := n.listen("srv")
	defer lc.Close()
	l, _ := ServeConn(nil, 0, 0, lc)
	cc := n.listen("cli")
	cli, _ := NewConn3(3, lc.LocalAddr(), nil, 0, 0, cc)
	defer cc.Close()
	cli.Write([]byte("x"))
	s, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	<-l.loopDone
	if lc.isClosed() {
		t.Fatal("ServeConn's conn was closed")
	}
	if _, err := s.Write([]byte("y")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("session Write after Listener.Close: %v", err)
	}
	cli.Close()
}

// TestListenerOneSessionPerSource: many datagrams from one source, sent
// concurrently with Accept, make one session (kcp-go #340).
func TestListenerOneSessionPerSource(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	n := newMemNet(25)
	l, _ := ServeConn(nil, 0, 0, n.listen("srv"))
	defer l.Close()
	c := n.listen("cli")
	defer c.Close()
	var wg sync.WaitGroup
	var accepted atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			l.SetDeadline(time.Now().Add(300 * time.Millisecond))
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer s.Close()
		}
	}()
	for i := range 200 {
		c.WriteTo(rawSegment(5, IKCP_CMD_PUSH, uint32(i), []byte{byte(i)}), memAddr("srv"))
	}
	wg.Wait()
	if accepted.Load() != 1 || l.sessionCount() != 1 {
		t.Fatalf("accepted %d, sessions %d, want 1", accepted.Load(), l.sessionCount())
	}
}

// TestParallel1024Clients: 1024 clients, 64 messages of 64 bytes each,
// echoed by one listener (kcp-go's TestParallel1024CLIENT_64BMSG_64CNT).
func TestParallel1024Clients(t *testing.T) {
	leakCheck(t)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetReadBuffer(4 << 20)
	l.SetWriteBuffer(4 << 20)
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			s.SetNoDelay(1, 20, 2, 1)
			go func() {
				defer s.Close()
				echoServer(s)
			}()
		}
	}()
	clients, msgs, size := 1024, 64, 64
	if raceEnabled {
		clients = 256 // the race detector slows every packet ~10x
	}
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := DialWithOptions(l.Addr().String(), nil, 0, 0)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			c.SetNoDelay(1, 20, 2, 1)
			c.SetDeadline(time.Now().Add(25 * time.Second))
			msg := randBytes(uint64(i), size)
			buf := make([]byte, size)
			for range msgs {
				if _, err := c.Write(msg); err != nil {
					errc <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errc <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if string(buf) != string(msg) {
					errc <- fmt.Errorf("client %d: echo differs", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// TestAcceptedWindowGrowthAdvertised: a window enlarged after Accept reaches
// the client at once, so a bulk transfer does not stall until a window probe
// (kcp-go's accepted sessions stalled for seconds).
func TestAcceptedWindowGrowthAdvertised(t *testing.T) {
	leakCheck(t)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := acceptedPair(t, l, nil, 0, 0)
	defer cli.Close()
	defer srv.Close()
	cli.SetNoDelay(1, 10, 2, 1)
	cli.SetWindowSize(1024, 1024)
	srv.SetNoDelay(1, 10, 2, 1)
	srv.SetWindowSize(1024, 1024)
	data := randBytes(27, 2<<20)
	go cli.Write(data)
	got := make([]byte, len(data))
	// A stall until the first window probe would take several seconds.
	srv.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(srv, got); err != nil {
		t.Fatalf("transfer stalled: %v", err)
	}
	if string(got) != string(data) {
		t.Fatal("data differs")
	}
}

// BenchmarkListenerGarbage is the listener's cost for one garbage datagram
// (random bytes, 0..1500 long) from a stranger: open fails, it is counted,
// nothing else happens.
func BenchmarkListenerGarbage(b *testing.B) {
	for _, c := range []relCipher{relCFB, relAEAD} {
		b.Run(c.name, func(b *testing.B) {
			n := newImpNet(16)
			ep := n.listen(b)
			l, err := ServeConn(c.block(b), 0, 0, ep)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := rand.New(rand.NewPCG(1, 2))
			pool := make([][]byte, 1024)
			for i := range pool {
				pool[i] = relGarbage(i, r)
			}
			work := make([]byte, mtuLimit)
			ap := netip.MustParseAddrPort("127.99.0.1:1024")
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				g := pool[i%len(pool)]
				copy(work, g)
				bytes += int64(len(g))
				l.handle(work[:len(g)], ap, nil)
			}
			b.SetBytes(bytes / int64(b.N))
		})
	}
}
