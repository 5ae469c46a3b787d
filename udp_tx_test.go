package kcp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// gateConn is a memConn whose WriteTo blocks while the gate is shut, as a
// socket whose send buffer stays full would.
type gateConn struct {
	*memConn
	mu     sync.Mutex
	open   chan struct{} // closed while writes may pass
	writes atomic.Int64  // WriteTo calls that completed
}

func newGateConn(c *memConn) *gateConn {
	g := &gateConn{memConn: c, open: make(chan struct{})}
	close(g.open)
	return g
}

// shut makes later writes block until reopen.
func (g *gateConn) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gateConn) reopen() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}

func (g *gateConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-g.memConn.done:
		return 0, &net.OpError{Op: "write", Net: "mem", Err: net.ErrClosed}
	}
	g.writes.Add(1)
	return g.memConn.WriteTo(b, addr)
}

// TestReaderNeverWrites: while the listener's socket cannot send at all
// (every WriteTo blocks), its read goroutine goes on reading, opening and
// feeding every session: three clients' messages all reach the server
// application, and the ACKs the clients send keep being processed. Before
// the send path had its own goroutine, the reader wrote the ACKs itself,
// blocked in the first WriteTo, and the server read at most one message.
func TestReaderNeverWrites(t *testing.T) {
	leakCheck(t)
	n := newMemNet(31)
	srvConn := newGateConn(n.listen("srv"))
	block, _ := NewAESBlockCrypt(bytes.Repeat([]byte{7}, 16))
	l, err := ServeConn(block, 0, 0, srvConn)
	if err != nil {
		t.Fatal(err)
	}
	defer srvConn.Close()
	defer l.Close()

	const clients, msgs = 3, 20
	var clis, srvs []*UDPSession
	for i := range clients {
		cc := n.listen(fmt.Sprintf("cli%d", i))
		c, err := NewConn4(uint32(100+i), srvConn.LocalAddr(), block, 0, 0, true, cc)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetNoDelay(1, 10, 2, 1)
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		l.SetDeadline(time.Now().Add(10 * time.Second))
		s, err := l.AcceptKCP()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetNoDelay(1, 10, 2, 1)
		s.SetACKNoDelay(true) // input itself flushes the ACKs: the old reader sent them
		buf := make([]byte, 64)
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Read(buf); err != nil {
			t.Fatal(err)
		}
		// The server has data in flight when the socket blocks: the clients'
		// ACKs for it must still be processed.
		if _, err := s.Write([]byte("welcome")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		clis, srvs = append(clis, c), append(srvs, s)
	}

	srvConn.shut()
	defer srvConn.reopen() // let the sender finish before Close
	for _, c := range clis {
		for k := range msgs {
			if _, err := c.Write([]byte(fmt.Sprintf("message %d", k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 64)
	for i, s := range srvs {
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		for k := range msgs {
			m, err := s.Read(buf)
			if err != nil {
				t.Fatalf("session %d, message %d: %v (the reader is stuck)", i, k, err)
			}
			if want := fmt.Sprintf("message %d", k); string(buf[:m]) != want {
				t.Fatalf("session %d: read %q, want %q", i, buf[:m], want)
			}
		}
	}
	for i, s := range srvs {
		waitFor(t, 5*time.Second, fmt.Sprintf("session %d to see its data acknowledged", i), func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.kcp.WaitSnd() == 0
		})
	}
}

// TestDialledReaderNeverWrites is TestReaderNeverWrites for a dialled
// session, whose socket has its own reader and sender.
func TestDialledReaderNeverWrites(t *testing.T) {
	leakCheck(t)
	n := newMemNet(32)
	ca := newGateConn(n.listen("a"))
	cb := n.listen("b")
	a, err := NewConn4(9, cb.LocalAddr(), nil, 0, 0, true, ca)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewConn4(9, ca.LocalAddr(), nil, 0, 0, true, cb)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetNoDelay(0, 10, 0, 1) // no cwnd: b sends its window without hearing ACKs
	a.SetACKNoDelay(true)     // input itself flushes the ACKs: the old reader sent them
	roundTripPair(t, a, b, []byte("ping"))
	ca.shut()
	defer ca.reopen()
	const msgs = 25 // within the default window of 32
	for k := range msgs {
		if _, err := b.Write([]byte{byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	for k := range msgs {
		if m, err := a.Read(buf); err != nil || m != 1 || buf[0] != byte(k) {
			t.Fatalf("message %d: %d bytes %v, %v", k, m, buf[:m], err)
		}
	}
}

// errConn is a memConn whose next WriteTo calls fail with a given error.
type errConn struct {
	*memConn
	fails atomic.Int64
	err   error
}

func (c *errConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.fails.Add(-1) >= 0 {
		return 0, &net.OpError{Op: "write", Net: "mem", Err: c.err}
	}
	return c.memConn.WriteTo(b, addr)
}

// TestSendTransientErrorCostsOneDatagram: EPERM from a send (a firewall
// drop, a full conntrack table) loses that datagram only: the session keeps
// going, ARQ resends, the bytes arrive intact, and the error is counted.
func TestSendTransientErrorCostsOneDatagram(t *testing.T) {
	leakCheck(t)
	n := newMemNet(33)
	ca := &errConn{memConn: n.listen("a"), err: syscall.EPERM}
	cb := n.listen("b")
	a, err := NewConn4(5, cb.LocalAddr(), nil, 0, 0, true, ca)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewConn4(5, ca.LocalAddr(), nil, 0, 0, true, cb)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fast(a)
	fast(b)
	roundTripPair(t, a, b, []byte("warm"))
	ca.fails.Store(1)
	data := randBytes(3, 64<<10)
	sendRecv(t, a, b, data)
	if got := a.IOStats().TxErrors; got != 1 {
		t.Fatalf("TxErrors = %d, want 1", got)
	}
}

// slowBlock is a BlockCrypt that costs about 600 µs per call, like a
// hardware token or a cipher on a slow core.
type slowBlock struct{ BlockCrypt }

const slowBlockCost = 600 * time.Microsecond

func (c slowBlock) Encrypt(dst, src []byte) {
	time.Sleep(slowBlockCost)
	c.BlockCrypt.Encrypt(dst, src)
}

func (c slowBlock) Decrypt(dst, src []byte) {
	time.Sleep(slowBlockCost)
	c.BlockCrypt.Decrypt(dst, src)
}

// TestSlowCipherTransfer: with a cipher costing ~600 µs per datagram, a
// 4 MiB transfer arrives byte-exact, 10 times of 10 (ten listener and
// client pairs at once: the cost is waiting, not CPU). When the read
// goroutine also sealed and sent, it spent its time in the cipher, stopped
// processing ACKs, every segment reached its RTO, and the link died.
func TestSlowCipherTransfer(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	inner, err := NewAESBlockCrypt(bytes.Repeat([]byte{9}, 16))
	if err != nil {
		t.Fatal(err)
	}
	block := slowBlock{inner}
	const transfers, size = 10, 4 << 20
	data := randBytes(11, size)
	var wg sync.WaitGroup
	errs := make(chan error, 2*transfers)
	for i := range transfers {
		l, err := ListenWithOptions("127.0.0.1:0", block, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- slowSink(l, data)
		}()
		go func() {
			defer wg.Done()
			errs <- slowTransfer(l.Addr().String(), block, data, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// slowSink accepts one session, reads len(data) bytes, compares them and
// answers one byte: 1 for byte-exact.
func slowSink(l *Listener, data []byte) error {
	l.SetDeadline(time.Now().Add(time.Minute))
	s, err := l.AcceptKCP()
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetWindowSize(128, 128)
	s.SetNoDelay(1, 10, 2, 1) // kcptun's fast3
	s.SetStreamMode(true)
	got := make([]byte, len(data))
	s.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.ReadFull(s, got); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	verdict := byte(0)
	if bytes.Equal(got, data) {
		verdict = 1
	}
	_, err = s.Write([]byte{verdict})
	return err
}

// slowTransfer writes data and waits for the server's verdict.
func slowTransfer(addr string, block BlockCrypt, data []byte, i int) error {
	c, err := DialWithOptions(addr, block, 0, 0)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWindowSize(128, 128)
	c.SetNoDelay(1, 10, 2, 1)
	c.SetStreamMode(true)
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := c.Write(data); err != nil {
		return fmt.Errorf("transfer %d: write: %w", i, err)
	}
	var verdict [1]byte
	if _, err := io.ReadFull(c, verdict[:]); err != nil {
		return fmt.Errorf("transfer %d: no verdict: %w", i, err)
	}
	if verdict[0] != 1 {
		return fmt.Errorf("transfer %d: the server received other bytes", i)
	}
	return nil
}
