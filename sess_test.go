package kcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- helpers ----

var testKey = []byte("kcpx test key, 32 bytes exactly!")

type cipherCase struct {
	name string
	make func() (BlockCrypt, error)
}

// testCiphers is every cipher of the package, as the echo example names them.
var testCiphers = []cipherCase{
	{"none-header", func() (BlockCrypt, error) { return NewNoneBlockCrypt(testKey) }},
	{"aes", func() (BlockCrypt, error) { return NewAESBlockCrypt(testKey) }},
	{"aes-128", func() (BlockCrypt, error) { return NewAESBlockCrypt(testKey[:16]) }},
	{"aes-192", func() (BlockCrypt, error) { return NewAESBlockCrypt(testKey[:24]) }},
	{"salsa20", func() (BlockCrypt, error) { return NewSalsa20BlockCrypt(testKey) }},
	{"blowfish", func() (BlockCrypt, error) { return NewBlowfishBlockCrypt(testKey) }},
	{"twofish", func() (BlockCrypt, error) { return NewTwofishBlockCrypt(testKey) }},
	{"cast5", func() (BlockCrypt, error) { return NewCast5BlockCrypt(testKey[:16]) }},
	{"3des", func() (BlockCrypt, error) { return NewTripleDESBlockCrypt(testKey[:24]) }},
	{"tea", func() (BlockCrypt, error) { return NewTEABlockCrypt(testKey[:16]) }},
	{"xtea", func() (BlockCrypt, error) { return NewXTEABlockCrypt(testKey[:16]) }},
	{"xor", func() (BlockCrypt, error) { return NewSimpleXORBlockCrypt(testKey) }},
	{"sm4", func() (BlockCrypt, error) { return NewSM4BlockCrypt(testKey[:16]) }},
	{"aes-gcm", func() (BlockCrypt, error) { return NewAESGCMCrypt(testKey) }},
}

func mustCipher(t testing.TB, c cipherCase) BlockCrypt {
	t.Helper()
	b, err := c.make()
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return b
}

// warmScheduler starts SystemTimedSched's goroutines, so that a goroutine
// baseline taken afterwards does not count them.
func warmScheduler() {
	done := make(chan struct{})
	SystemTimedSched.Put(func() { close(done) }, time.Now())
	<-done
}

// leakCheck records the goroutine count and, when the test ends, waits (a
// bounded poll of the condition) for it to come back. Call it first, so its
// cleanup runs after every other.
func leakCheck(t testing.TB) { leakCheckSlack(t, 0, 15*time.Second) }

// leakCheckSlack is leakCheck allowing slack goroutines more than the
// baseline, waiting at most bound.
func leakCheckSlack(t testing.TB, slack int, bound time.Duration) {
	t.Helper()
	warmScheduler()
	count := runtime.NumGoroutine
	for name := t.Name(); ; {
		// A subtest's goroutines carry the label of its parallel ancestor.
		if label, ok := parallelLabels.Load(name); ok {
			count = func() int { return labelledGoroutines(label.(string)) }
			break
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			break
		}
		name = name[:i]
	}
	base := count()
	t.Cleanup(func() {
		if !eventually(bound, func() bool { return count() <= base+slack }) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("goroutines %d, baseline %d + %d\n%s", count(), base, slack, buf[:n])
		}
	})
}

// parallelLabels maps the name of a test that called parallelTest to the
// profiler label its goroutines carry.
var parallelLabels sync.Map

const leakLabelKey = "kcpx-test"

// parallelTest runs t in parallel with the other tests that call it (they
// start once every sequential test has finished), for tests that mostly
// wait on timers (RTOs, linger, quiet periods) and measure no rate. It
// labels t's goroutine; every goroutine it starts, and every goroutine
// those start, inherits the label (the runtime copies a goroutine's
// profiler labels to the goroutines it creates), so a leakCheck called
// after it counts the goroutines of this test alone, however many others
// run beside it. Call it before leakCheck.
func parallelTest(t *testing.T) {
	t.Helper()
	t.Parallel()
	warmScheduler() // the shared scheduler's workers must not carry a test's label
	label := fmt.Sprintf("%q:%q", leakLabelKey, t.Name())
	parallelLabels.Store(t.Name(), label)
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(leakLabelKey, t.Name())))
}

// labelledGoroutines counts the goroutines whose profiler labels include
// label (as parallelTest formats it), from the goroutine profile.
func labelledGoroutines(label string) int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	total, n := 0, 0
	for _, line := range strings.Split(b.String(), "\n") {
		// A record: "N @ pc pc...", then "# labels: {...}" when labelled.
		if strings.HasPrefix(line, "# labels: {") {
			if strings.Contains(line, label) {
				total += n
			}
			continue
		}
		if count, _, ok := strings.Cut(line, " @ "); ok {
			n, _ = strconv.Atoi(count)
		}
	}
	return total
}

// eventually polls cond (counters are published once per update tick)
// until it holds or bound passes, and reports the last result.
func eventually(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a bound
	}
	return true
}

// noLinger calls SetLinger(0) on sessions between which no data crosses:
// their Close has nothing to deliver and their FIN no token the peer could
// verify (kcp_proof.go), so lingering would only hold them, and leakCheck,
// for the 5 s bound.
func noLinger(ss ...*UDPSession) {
	for _, s := range ss {
		s.SetLinger(0)
	}
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(bound, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// acceptedPair dials l and returns the client session and the session the
// listener accepted for it. One byte crosses to make the listener see the
// client; it is consumed here.
func acceptedPair(t testing.TB, l *Listener, block BlockCrypt, ds, ps int) (*UDPSession, *UDPSession) {
	t.Helper()
	cli, err := DialWithOptions(l.Addr().String(), block, ds, ps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte{0x5a}); err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Time{})
	var one [1]byte
	if _, err := io.ReadFull(srv, one[:]); err != nil || one[0] != 0x5a {
		t.Fatalf("first byte: %v %x", err, one[0])
	}
	return cli, srv
}

// memPair returns two dialled sessions talking over a memNet with conv 1.
func memPair(t testing.TB, n *memNet, block func() BlockCrypt, ds, ps int) (*UDPSession, *UDPSession, *memConn, *memConn) {
	t.Helper()
	ca, cb := n.listen("a"), n.listen("b")
	a, err := NewConn4(1, cb.LocalAddr(), block(), ds, ps, true, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewConn4(1, ca.LocalAddr(), block(), ds, ps, true, cb)
	if err != nil {
		t.Fatal(err)
	}
	return a, b, ca, cb
}

// udpPair returns two dialled sessions on two loopback sockets with the
// same conv: a symmetric session pair.
func udpPair(t testing.TB, network, addr string, block func() BlockCrypt, ds, ps int) (*UDPSession, *UDPSession) {
	t.Helper()
	ca, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewConn4(7, cb.LocalAddr(), block(), ds, ps, true, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewConn4(7, ca.LocalAddr(), block(), ds, ps, true, cb)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// echo runs an echo server on srv until EOF or error.
func echoServer(srv net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := srv.Read(buf)
		if err != nil {
			return
		}
		if _, err := srv.Write(buf[:n]); err != nil {
			return
		}
	}
}

// echoRoundTrip writes data on c in chunks and reads the same number of bytes
// back, concurrently; it fails the test unless they are equal.
func echoRoundTrip(t testing.TB, c net.Conn, data []byte, chunk int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += chunk {
			if _, err := c.Write(data[off:min(off+chunk, len(data))]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, len(data))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echoed bytes differ")
	}
}

func fast(s *UDPSession) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(256, 256)
}

// ---- tests ----

func TestEchoLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			leakCheck(t)
			l, err := ListenWithOptions(addr, nil, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cli, srv := acceptedPair(t, l, nil, 0, 0)
			defer cli.Close()
			defer srv.Close()
			fast(cli)
			fast(srv)
			go echoServer(srv)
			echoRoundTrip(t, cli, randBytes(1, 256<<10), 4096)
			if got := cli.RemoteAddr().String(); got != l.Addr().String() {
				t.Errorf("RemoteAddr %s, want %s", got, l.Addr())
			}
		})
	}
}

func TestEchoCiphersFEC(t *testing.T) {
	parallelTest(t)
	l0 := leakCheckOnce(t)
	_ = l0
	for _, c := range testCiphers {
		for _, fec := range [][2]int{{0, 0}, {10, 3}} {
			t.Run(fmt.Sprintf("%s/fec%d.%d", c.name, fec[0], fec[1]), func(t *testing.T) {
				l, err := ListenWithOptions("127.0.0.1:0", mustCipher(t, c), fec[0], fec[1])
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				cli, srv := acceptedPair(t, l, mustCipher(t, c), fec[0], fec[1])
				defer cli.Close()
				defer srv.Close()
				fast(cli)
				fast(srv)
				go echoServer(srv)
				echoRoundTrip(t, cli, randBytes(2, 64<<10), 1000)
			})
		}
	}
}

// leakCheckOnce is leakCheck for a parent test whose subtests share it.
func leakCheckOnce(t *testing.T) bool { leakCheck(t); return true }

func TestMessageMode(t *testing.T) {
	leakCheck(t)
	n := newMemNet(3)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	fast(a)
	fast(b)
	mss := a.kcp.segmentSize()
	maxMsg := a.kcp.maxMessageSize()
	sizes := []int{1, 100, mss - 1, mss, mss + 1, 3*mss + 7, maxMsg}
	go func() {
		for i, sz := range sizes {
			a.Write(randBytes(uint64(i), sz))
		}
	}()
	buf := make([]byte, maxMsg+100)
	for i, sz := range sizes {
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got != sz || !bytes.Equal(buf[:got], randBytes(uint64(i), sz)) {
			t.Fatalf("message %d: read %d bytes, want one message of %d", i, got, sz)
		}
	}

	// A message longer than the reader's buffer arrives over several reads.
	msg := randBytes(99, 3*mss)
	if _, err := a.Write(msg); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, mss)
	var got []byte
	for len(got) < len(msg) {
		k, err := b.Read(small)
		if err != nil {
			t.Fatal(err)
		}
		if k != len(small) {
			t.Fatalf("partial read %d, want %d", k, len(small))
		}
		got = append(got, small[:k]...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("split message differs")
	}

	// A write above the largest message is split into messages of that size.
	// The limit follows the largest window b advertised (32 segments until b
	// had spoken): once b, with nothing queued, has acknowledged a message,
	// it reaches mss × min(255, b's receive window) and stays there.
	most := mss * min(255, b.kcp.recvWindow())
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if k, err := b.Read(buf); err != nil || k != 1 {
		t.Fatalf("read %d, %v", k, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		a.mu.Lock()
		maxMsg = a.kcp.maxMessageSize()
		a.mu.Unlock()
		if maxMsg == most {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("largest message %d, want %d once b advertised its empty window", maxMsg, most)
		}
		time.Sleep(time.Millisecond) // polling a condition with a bound
	}
	buf = make([]byte, maxMsg+100)
	big := randBytes(100, maxMsg+10)
	if _, err := a.Write(big); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{big[:maxMsg], big[maxMsg:]} {
		k, err := b.Read(buf)
		if err != nil || !bytes.Equal(buf[:k], want) {
			t.Fatalf("split write: read %d (%v), want %d", k, err, len(want))
		}
	}
}

func TestStreamMode(t *testing.T) {
	leakCheck(t)
	n := newMemNet(4)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	a.SetStreamMode(true)
	b.SetStreamMode(true)
	a.SetWriteDelay(true)
	for i := 0; i < 100; i++ {
		a.Write([]byte{byte(i)})
	}
	got := make([]byte, 0, 100)
	buf := make([]byte, 1000)
	for len(got) < 100 {
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:k]...)
	}
	for i, c := range got {
		if int(c) != i {
			t.Fatalf("byte %d = %d", i, c)
		}
	}
	if a.GetSnmp().OutPkts >= 100 {
		// Stream mode with write delay coalesces the 100 one-byte writes.
		t.Errorf("%d datagrams for 100 coalesced bytes", a.GetSnmp().OutPkts)
	}
}

func TestOOB(t *testing.T) {
	leakCheck(t)
	n := newMemNet(5)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { bc, _ := NewAESGCMCrypt(testKey); return bc }, 10, 3)
	noLinger(a, b) // OOB datagrams carry no KCP segment
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 4)
	if err := b.SetOOBHandler(func(p []byte) { got <- append([]byte(nil), p...) }); err != nil {
		t.Fatal(err)
	}
	max := a.GetOOBMaxSize()
	if want := 1400 - 12 - 16 - 8 - 4; max != want {
		t.Errorf("GetOOBMaxSize = %d, want %d", max, want)
	}
	if err := a.SendOOB(make([]byte, max+1)); err == nil {
		t.Error("SendOOB above the maximum succeeded")
	}
	for _, msg := range [][]byte{[]byte("urgent"), randBytes(6, max)} {
		if err := a.SendOOB(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			if !bytes.Equal(p, msg) {
				t.Fatalf("OOB payload differs (%d bytes)", len(p))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("OOB not delivered")
		}
	}
	// Without FEC, OOB reports its requirement.
	c, d, _, _ := memPair(t, newMemNet(6), func() BlockCrypt { return nil }, 0, 0)
	noLinger(c, d)
	defer c.Close()
	defer d.Close()
	if c.SetOOBHandler(func([]byte) {}) == nil || c.SendOOB([]byte("x")) == nil || c.GetOOBMaxSize() != 0 {
		t.Error("OOB without FEC did not fail")
	}
}

// TestCloseEOFUnderLoss: every byte written before Close arrives, then
// io.EOF, over a link that drops 10% of datagrams each way.
func TestCloseEOFUnderLoss(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	for _, fec := range [][2]int{{0, 0}, {10, 3}} {
		t.Run(fmt.Sprintf("fec%d.%d", fec[0], fec[1]), func(t *testing.T) {
			n := newMemNet(7)
			a, b, ca, cb := memPair(t, n, func() BlockCrypt { bc, _ := NewSalsa20BlockCrypt(testKey); return bc }, fec[0], fec[1])
			fast(a)
			fast(b)
			n.setLoss(0.10)
			data := randBytes(8, 300<<10)
			go func() {
				a.Write(data)
				a.Close()
			}()
			b.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(b)
			if err != nil {
				t.Fatalf("ReadAll: %v after %d bytes", err, len(got))
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, want %d, equal prefix %v", len(got), len(data), bytes.HasPrefix(data, got))
			}
			if _, err := b.Read(make([]byte, 10)); err != io.EOF {
				t.Errorf("Read after EOF: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("Close after EOF: %v", err)
			}
			// Both ends release their resources: the owned conns close.
			waitFor(t, 15*time.Second, "both conns closed", func() bool { return ca.isClosed() && cb.isClosed() })
			if n.lostCount() == 0 {
				t.Error("the link lost nothing")
			}
		})
	}
}

func TestIdleTimeoutReportsVanishedPeer(t *testing.T) {
	leakCheck(t)
	n := newMemNet(9)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	a.SetIdleTimeout(300 * time.Millisecond)
	roundTripPair(t, a, b, []byte("ping"))
	b.SetLinger(100 * time.Millisecond) // its FIN cannot cross the cut link
	n.setCut(true)
	start := time.Now()
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := a.Read(make([]byte, 10))
	if !errors.Is(err, errIdle) {
		t.Fatalf("Read: %v, want the idle timeout error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("reported after %v", d)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, errIdle) {
		t.Errorf("Write: %v, want the idle timeout error", err)
	}
}

// sendRecv writes data on a and reads all of it on b.
func sendRecv(t *testing.T, a, b *UDPSession, data []byte) {
	t.Helper()
	go a.Write(data)
	got := make([]byte, len(data))
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer b.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
}

// TestDeadPeerReported: a peer that stops answering makes Read and Write
// fail once a segment reaches the dead-link limit (shortened here from 20
// transmissions to 5), instead of blocking forever.
func TestDeadPeerReported(t *testing.T) {
	leakCheck(t)
	n := newMemNet(16)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	a.mu.Lock()
	a.kcp.deadLink = 5
	a.mu.Unlock()
	roundTripPair(t, a, b, []byte("ping"))
	b.SetLinger(100 * time.Millisecond) // its FIN cannot cross the cut link
	n.setCut(true)
	if _, err := a.Write([]byte("into the void")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := a.Read(make([]byte, 10))
	if !errors.Is(err, errDeadLink) {
		t.Fatalf("Read: %v, want the dead-link error", err)
	}
	t.Logf("dead link reported after %v", time.Since(start))
	if _, err := a.Write([]byte("x")); !errors.Is(err, errDeadLink) {
		t.Errorf("Write: %v, want the dead-link error", err)
	}
}

// roundTripPair sends msg from a to b and checks it arrives.
func roundTripPair(t *testing.T, a, b *UDPSession, msg []byte) {
	t.Helper()
	if _, err := a.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg)+10)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := b.Read(buf)
	b.SetReadDeadline(time.Time{})
	if err != nil || !bytes.Equal(buf[:k], msg) {
		t.Fatalf("read %q, %v", buf[:k], err)
	}
}

func TestErrors(t *testing.T) {
	leakCheck(t)
	n := newMemNet(10)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	noLinger(a, b)
	defer b.Close()

	// A deadline in the past fails at once, with a timeout net.Error.
	a.SetDeadline(time.Now().Add(-time.Second))
	for name, op := range map[string]func() error{
		"Read":  func() error { _, err := a.Read(make([]byte, 1)); return err },
		"Write": func() error { _, err := a.Write([]byte("x")); return err },
	} {
		err := op()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s with a past deadline: %v", name, err)
		}
	}
	a.SetDeadline(time.Time{})

	a.Close()
	for name, op := range map[string]func() error{
		"Read":    func() error { _, err := a.Read(make([]byte, 1)); return err },
		"Write":   func() error { _, err := a.Write([]byte("x")); return err },
		"Close":   a.Close,
		"SendOOB": func() error { return nil },
	} {
		if name == "SendOOB" {
			continue
		}
		err := op()
		if !errors.Is(err, net.ErrClosed) || !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

// TestDeadlineChangeWakes: a blocked Read, Write and Accept notice a
// deadline moved while they wait.
func TestDeadlineChangeWakes(t *testing.T) {
	leakCheck(t)
	n := newMemNet(11)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	l, err := ServeConn(nil, 0, 0, n.listen("srv"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	a.SetWindowSize(4, 4)
	b.SetWindowSize(4, 4)
	// Fill the window: b never reads, so a's Write ends up blocked.
	fill := make([]byte, 64<<10)
	blocked := func(f func() error) chan error {
		c := make(chan error, 1)
		go func() { c <- f() }()
		return c
	}
	rc := blocked(func() error { _, err := a.Read(make([]byte, 10)); return err })
	wc := blocked(func() error {
		for {
			if _, err := a.Write(fill); err != nil {
				return err
			}
		}
	})
	ac := blocked(func() error { _, err := l.Accept(); return err })
	// Far deadlines first, then one in the past: every call must wake.
	a.SetDeadline(time.Now().Add(time.Hour))
	l.SetDeadline(time.Now().Add(time.Hour))
	a.SetReadDeadline(time.Now().Add(-time.Second))
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	l.SetDeadline(time.Now())
	for name, c := range map[string]chan error{"Read": rc, "Write": wc, "Accept": ac} {
		select {
		case err := <-c:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not wake", name)
		}
	}
}

// TestCloseRaces runs Read, Write, deadline changes and Close concurrently,
// then checks that every goroutine of the pair ended.
func TestCloseRaces(t *testing.T) {
	parallelTest(t)
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			parallelTest(t) // a close may wait out the linger bound
			leakCheck(t)
			n := newMemNet(uint64(100 + i))
			if i%2 == 1 {
				n.setLoss(0.2)
			}
			a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
			go echoServer(b)
			var wg sync.WaitGroup
			wg.Add(5)
			go func() { defer wg.Done(); echoServer(a) }()
			go func() {
				defer wg.Done()
				for range 50 {
					if _, err := a.Write([]byte("racing")); err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for j := range 50 {
					a.SetDeadline(time.Now().Add(time.Duration(j) * time.Millisecond))
					a.SetReadDeadline(time.Time{})
				}
			}()
			go func() { defer wg.Done(); a.Close() }()
			go func() { defer wg.Done(); b.Close() }()
			wg.Wait()
			for _, s := range []*UDPSession{a, b} {
				if err := s.Close(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("second Close: %v", err)
				}
			}
		})
	}
}

func TestSessionSetMtu(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name   string
		block  func() BlockCrypt
		ds, ps int
		ok     []int // accepted user mtus
		bad    []int // refused
		oob    int   // GetOOBMaxSize at mtu 1400, -1 without FEC
	}{
		{"raw", func() BlockCrypt { return nil }, 0, 0, []int{100, 1400, 1500, 9000}, []int{24, 0, -1}, -1},
		{"cfb+fec", func() BlockCrypt { bc, _ := NewAESBlockCrypt(testKey); return bc }, 10, 3, []int{128, 1500}, []int{52, 28}, 1400 - 28 - 4},
		{"gcm+fec", func() BlockCrypt { bc, _ := NewAESGCMCrypt(testKey); return bc }, 10, 3, []int{136, 1500}, []int{60, 36}, 1400 - 36 - 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b, _, _ := memPair(t, newMemNet(12), c.block, c.ds, c.ps)
			defer a.Close()
			defer b.Close()
			if c.oob >= 0 && a.GetOOBMaxSize() != c.oob {
				t.Errorf("GetOOBMaxSize %d, want %d", a.GetOOBMaxSize(), c.oob)
			}
			for _, m := range c.bad {
				if a.SetMtu(m) {
					t.Errorf("SetMtu(%d) accepted", m)
				}
			}
			for _, m := range c.ok {
				if !a.SetMtu(m) {
					t.Errorf("SetMtu(%d) refused", m)
				}
				b.SetMtu(m)
				fast(a)
				fast(b)
				sendRecv(t, a, b, randBytes(uint64(m), 3000))
			}
		})
	}
}

func TestSocketOptions(t *testing.T) {
	leakCheck(t)
	n := newMemNet(13)
	a, b, ca, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	noLinger(a, b)
	defer a.Close()
	defer b.Close()
	if err := a.SetDSCP(46); err != nil {
		t.Fatal(err)
	}
	if ca.dscp != 46 {
		t.Errorf("duck-typed SetDSCP not used: %d", ca.dscp)
	}
	if a.SetReadBuffer(1<<20) == nil || a.SetWriteBuffer(1<<20) == nil {
		t.Error("buffer sizes on a conn without them succeeded")
	}
	var seen net.PacketConn
	a.Control(func(c net.PacketConn) error { seen = c; return nil })
	if seen != ca {
		t.Error("Control got another conn")
	}

	u, err := DialWithOptions("127.0.0.1:9", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetLinger(0)
	if err := u.SetReadBuffer(1 << 20); err != nil {
		t.Error(err)
	}
	if err := u.SetWriteBuffer(1 << 20); err != nil {
		t.Error(err)
	}
	if err := u.SetDSCP(46); err != nil {
		t.Error(err)
	}
}

// TestCallerConnSurvives: a conn handed to NewConn3 stays open after the
// session is done, and the session's read loop has left it.
func TestCallerConnSurvives(t *testing.T) {
	leakCheck(t)
	n := newMemNet(14)
	ca, cb := n.listen("a"), n.listen("b")
	defer ca.Close()
	defer cb.Close()
	a, _ := NewConn3(5, cb.LocalAddr(), nil, 0, 0, ca)
	b, _ := NewConn3(5, ca.LocalAddr(), nil, 0, 0, cb)
	roundTripPair(t, a, b, []byte("hello"))
	a.Close()
	b.Close()
	<-a.loopDone
	<-b.loopDone
	if ca.isClosed() || cb.isClosed() {
		t.Fatal("a caller's conn was closed")
	}
}

// TestClientIgnoresStrangers: a dialled session takes datagrams only from
// its peer.
func TestClientIgnoresStrangers(t *testing.T) {
	leakCheck(t)
	n := newMemNet(15)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	// A stranger with the right conv replays b's traffic shape.
	x := n.listen("x")
	defer x.Close()
	k := NewKCP(1, func(buf []byte, size int) { x.WriteTo(buf[:size], memAddr("a")) })
	k.Send([]byte("forged"))
	k.flush(k.clock(), IKCP_FLUSH_FULL)
	k.Update()
	roundTripPair(t, b, a, []byte("genuine"))
	waitFor(t, 5*time.Second, "counters published", func() bool { return a.GetSnmp().BytesReceived > 0 })
	if got := a.GetSnmp(); got.BytesReceived != uint64(len("genuine")) || got.InPkts == 0 {
		t.Errorf("received %d bytes, want only the peer's", got.BytesReceived)
	}
}

// TestRateLimit: with SetRateLimit (application bytes, kcp-go v5.7) and the
// core paced to match, a transfer larger than the one-second burst arrives
// whole; without the limit too. sess_v57_test.go tests the bucket itself.
func TestRateLimit(t *testing.T) {
	leakCheck(t)
	n := newMemNet(31)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	fast(a)
	fast(b)
	const rate = 256 << 10
	a.SetRateLimit(rate)
	data := randBytes(32, 384<<10)
	sendRecv(t, a, b, data)
	a.SetRateLimit(0)
	sendRecv(t, a, b, data)
}

// TestCallerUDPConnReusable: after a session on a caller's *net.UDPConn is
// done, the caller resets the read deadline and reads plain datagrams from
// the same socket again, one per read.
func TestCallerUDPConnReusable(t *testing.T) {
	leakCheck(t)
	ca, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	a, _ := NewConn3(9, cb.LocalAddr(), nil, 0, 0, ca)
	b, _ := NewConn3(9, ca.LocalAddr(), nil, 0, 0, cb)
	roundTripPair(t, a, b, []byte("over kcp"))
	a.Close()
	b.Close()
	<-a.loopDone
	<-b.loopDone
	ca.SetReadDeadline(time.Time{})
	for _, m := range []string{"plain one", "plain two"} {
		if _, err := cb.WriteTo([]byte(m), ca.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	ca.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{"plain one", "plain two"} {
		for {
			n, _, err := ca.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			// Skip the sessions' last datagrams, if any are late.
			if !strings.HasPrefix(string(buf[:n]), "plain") {
				continue
			}
			if string(buf[:n]) != want {
				t.Fatalf("read %q, want %q", buf[:n], want)
			}
			break
		}
	}
}
