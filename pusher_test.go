package kcp

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pushNet connects pushConns by address, in memory.
type pushNet struct {
	mu    sync.Mutex
	conns map[string]*pushConn
}

// pushConn is a net.PacketConn that pushes what arrives to the receiver set
// with SetPacketReceiver, from one goroutine of its own, in order and never
// concurrently, as PacketPusher requires. It counts ReadFrom calls, which a
// session or listener on it must never make.
type pushConn struct {
	net   *pushNet
	addr  memAddr
	inbox chan memPacket
	done  chan struct{}
	once  sync.Once

	mu        sync.Mutex
	recv      func(b []byte, addr net.Addr, err error)
	installs  int // SetPacketReceiver calls with a non-nil fn
	removals  int // SetPacketReceiver(nil) calls
	readCalls int
}

func (n *pushNet) listen(addr string) *pushConn {
	c := &pushConn{net: n, addr: memAddr(addr), inbox: make(chan memPacket, 4096), done: make(chan struct{})}
	n.mu.Lock()
	if n.conns == nil {
		n.conns = map[string]*pushConn{}
	}
	n.conns[addr] = c
	n.mu.Unlock()
	go c.deliver()
	return c
}

// deliver hands each datagram to the receiver; without one it is dropped,
// as a socket nobody reads would drop it eventually.
func (c *pushConn) deliver() {
	for {
		select {
		case p := <-c.inbox:
			c.mu.Lock()
			fn := c.recv
			c.mu.Unlock()
			if fn != nil {
				fn(p.b, p.from, nil)
			}
		case <-c.done:
			c.mu.Lock()
			fn := c.recv
			c.mu.Unlock()
			if fn != nil {
				fn(nil, nil, net.ErrClosed)
			}
			return
		}
	}
}

func (c *pushConn) SetPacketReceiver(fn func(b []byte, addr net.Addr, err error)) {
	c.mu.Lock()
	c.recv = fn
	if fn == nil {
		c.removals++
	} else {
		c.installs++
	}
	c.mu.Unlock()
}

func (c *pushConn) counts() (installs, removals, reads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.installs, c.removals, c.readCalls
}

func (c *pushConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	c.readCalls++
	c.mu.Unlock()
	<-c.done
	return 0, nil, net.ErrClosed
}

func (c *pushConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.net.mu.Lock()
	peer := c.net.conns[addr.String()]
	c.net.mu.Unlock()
	if peer != nil {
		select {
		case peer.inbox <- memPacket{b: append([]byte(nil), b...), from: c.addr}:
		default: // full: dropped, as UDP would
		}
	}
	return len(b), nil
}

func (c *pushConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *pushConn) LocalAddr() net.Addr                { return c.addr }
func (c *pushConn) SetDeadline(t time.Time) error      { return nil }
func (c *pushConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *pushConn) SetWriteDeadline(t time.Time) error { return nil }

var _ PacketPusher = (*pushConn)(nil)

// TestPacketPusherSession: two dialled sessions over pushing conns exchange
// data with no ReadFrom call; Close removes each session's receiver.
func TestPacketPusherSession(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	var n pushNet
	ca, cb := n.listen("a"), n.listen("b")
	defer ca.Close()
	defer cb.Close()
	a, err := NewConn3(1, cb.LocalAddr(), nil, 10, 3, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewConn3(1, ca.LocalAddr(), nil, 10, 3, cb)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(14, 256<<10)
	sendRecv(t, a, b, data)
	sendRecv(t, b, a, data)
	a.Close()
	b.Close()
	for _, c := range []*pushConn{ca, cb} {
		waitFor(t, 10*time.Second, "the receiver removed", func() bool {
			_, removals, _ := c.counts()
			return removals > 0
		})
		installs, _, reads := c.counts()
		if installs != 1 || reads != 0 {
			t.Fatalf("%s: receiver installed %d times, ReadFrom called %d times; want 1 and 0", c.addr, installs, reads)
		}
	}
}

// TestPacketPusherListener: a listener over a pushing conn accepts and
// serves a client with no ReadFrom call, and removes its receiver on Close.
func TestPacketPusherListener(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	var n pushNet
	cs, cc := n.listen("srv"), n.listen("cli")
	defer cs.Close()
	defer cc.Close()
	block, _ := NewSalsa20BlockCrypt(testKey)
	l, err := ServeConn(block, 10, 3, cs)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewConn3(9, cs.LocalAddr(), block, 10, 3, cc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("accepted session read %q, %v", buf, err)
	}
	sendRecv(t, srv, cli, randBytes(15, 128<<10))
	cli.Close()
	srv.Close()
	l.Close()
	if _, err := l.AcceptKCP(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	waitFor(t, 10*time.Second, "the listener's receiver removed", func() bool {
		_, removals, _ := cs.counts()
		return removals > 0
	})
	if installs, _, reads := cs.counts(); installs != 1 || reads != 0 {
		t.Fatalf("listener conn: receiver installed %d times, ReadFrom called %d times; want 1 and 0", installs, reads)
	}
	if _, _, reads := cc.counts(); reads != 0 {
		t.Fatalf("client conn: ReadFrom called %d times", reads)
	}
}
