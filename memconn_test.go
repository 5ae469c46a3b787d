package kcp

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// memNet is an in-memory datagram network: memConns attached to it deliver
// to each other by address. It drops datagrams on demand, with a seeded
// math/rand/v2 source, so a lossy run is reproducible in its decisions.
type memNet struct {
	mu    sync.Mutex
	rng   *rand.Rand
	loss  float64 // probability that a datagram is dropped
	cut   bool    // drop everything
	conns map[string]*memConn
	sent  int
	lost  int
}

func newMemNet(seed uint64) *memNet {
	return &memNet{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), conns: make(map[string]*memConn)}
}

// setLoss sets the drop probability (0..1).
func (n *memNet) setLoss(p float64) {
	n.mu.Lock()
	n.loss = p
	n.mu.Unlock()
}

// setCut makes the network drop every datagram (or stop doing so).
func (n *memNet) setCut(cut bool) {
	n.mu.Lock()
	n.cut = cut
	n.mu.Unlock()
}

func (n *memNet) lostCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lost
}

// memAddr is a memNet address; it is deliberately not a *net.UDPAddr, so the
// session and listener take their path for custom PacketConns.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

type memPacket struct {
	b    []byte
	from memAddr
}

// memConn is one endpoint of a memNet: a net.PacketConn with deadlines.
type memConn struct {
	net    *memNet
	addr   memAddr
	in     chan memPacket
	rd     deadline
	done   chan struct{}
	once   sync.Once
	closed bool // guarded by net.mu
	dscp   int  // last SetDSCP value, guarded by net.mu
}

func (n *memNet) listen(addr string) *memConn {
	c := &memConn{net: n, addr: memAddr(addr), in: make(chan memPacket, 4096), rd: newDeadline(), done: make(chan struct{})}
	n.mu.Lock()
	n.conns[addr] = c
	n.mu.Unlock()
	return c
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-c.done:
		return 0, nil, &net.OpError{Op: "read", Net: "mem", Err: net.ErrClosed}
	case <-c.rd.wait():
		return 0, nil, &net.OpError{Op: "read", Net: "mem", Err: errTimeout}
	case p := <-c.in:
		return copy(b, p.b), p.from, nil
	}
}

func (c *memConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n := c.net
	n.mu.Lock()
	if c.closed {
		n.mu.Unlock()
		return 0, &net.OpError{Op: "write", Net: "mem", Err: net.ErrClosed}
	}
	n.sent++
	drop := n.cut || (n.loss > 0 && n.rng.Float64() < n.loss)
	if drop {
		n.lost++
	}
	dst := n.conns[addr.String()]
	n.mu.Unlock()
	if drop || dst == nil {
		return len(b), nil
	}
	p := memPacket{b: append([]byte(nil), b...), from: c.addr}
	select {
	case dst.in <- p:
	default: // queue full: dropped, like a socket buffer
	}
	return len(b), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() {
		c.net.mu.Lock()
		c.closed = true
		delete(c.net.conns, string(c.addr))
		c.net.mu.Unlock()
		close(c.done)
		c.rd.stop()
	})
	return nil
}

func (c *memConn) isClosed() bool {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return c.closed
}

func (c *memConn) LocalAddr() net.Addr                { return c.addr }
func (c *memConn) SetDeadline(t time.Time) error      { c.rd.set(t); return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// SetDSCP makes memConn one of the duck-typed conns tcpraw-style users bring.
func (c *memConn) SetDSCP(dscp int) error {
	c.net.mu.Lock()
	c.dscp = dscp
	c.net.mu.Unlock()
	return nil
}
