package kcp

// Test networks for the reliability suite.
//
// impNet is an in-memory datagram network: impEndpoints (net.PacketConn)
// attached to it deliver to each other by address through buffered channels,
// with deadlines, and a Close that wakes blocked readers. A full receive
// queue drops, as a socket buffer does.
//
// impairConn wraps any net.PacketConn (an impEndpoint or a real UDP socket)
// and impairs what is written through it: seeded loss (i.i.d. or
// Gilbert-Elliott bursts), blackouts, an MTU cap, corruption (bit flips,
// truncation), duplication, a rate-limited link with a tail-drop queue of
// bounded bytes, delay, jitter and reordering. Every random decision comes
// from one math/rand/v2 PCG source seeded per conn, so a seed replays the
// same fates for the same sequence of writes. Delayed datagrams wait in one
// heap served by one goroutine per conn, which Close stops and waits for.
// The seed is logged when the test fails.

import (
	"bytes"
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var impSeedFlag = flag.Uint64("kcpx.seed", 0,
	"seed for the impairing PacketConns (0: KCPX_SEED, else derived from the test name)")

// impSeed is the base seed of a test: -kcpx.seed, else $KCPX_SEED, else a
// hash of the test's name, so CI runs are reproducible and a failure names
// the seed that replays it.
func impSeed(t testing.TB) uint64 {
	if *impSeedFlag != 0 {
		return *impSeedFlag
	}
	if s := os.Getenv("KCPX_SEED"); s != "" {
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			return v
		}
		t.Fatalf("KCPX_SEED=%q is not a number", s)
	}
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return h.Sum64()
}

// ---- in-memory network ----

// impNet is an in-memory datagram network. Endpoints get addresses
// 127.77.x.y:port; they are labels only, nothing reaches a socket.
type impNet struct {
	qlen int // receive queue of each endpoint, in datagrams

	mu   sync.Mutex
	eps  map[netip.AddrPort]*impEndpoint
	next uint32

	unroutable atomic.Uint64 // datagrams written to an address nobody holds
}

// newImpNet returns a network whose endpoints queue up to qlen datagrams
// (default 1024 when qlen <= 0).
func newImpNet(qlen int) *impNet {
	if qlen <= 0 {
		qlen = 1024
	}
	return &impNet{qlen: qlen, eps: make(map[netip.AddrPort]*impEndpoint)}
}

// addr returns a fresh address on this network.
func (n *impNet) addr() *net.UDPAddr {
	n.mu.Lock()
	n.next++
	i := n.next
	n.mu.Unlock()
	ip := netip.AddrFrom4([4]byte{127, 77, byte(i >> 8), byte(i)})
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(10000+i%50000)))
}

// listen attaches an endpoint at a fresh address. It is closed when the test
// ends.
func (n *impNet) listen(t testing.TB) *impEndpoint {
	e := &impEndpoint{
		net:  n,
		addr: n.addr(),
		in:   make(chan impPacket, n.qlen),
		die:  make(chan struct{}),
		rd:   newImpDeadline(),
		wd:   newImpDeadline(),
	}
	n.mu.Lock()
	n.eps[e.addr.AddrPort()] = e
	n.mu.Unlock()
	t.Cleanup(func() { e.Close() })
	return e
}

// pair returns two endpoints of a new network.
func impPair(t testing.TB, qlen int) (*impEndpoint, *impEndpoint) {
	n := newImpNet(qlen)
	return n.listen(t), n.listen(t)
}

func (n *impNet) lookup(addr net.Addr) *impEndpoint {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil
	}
	ap := ua.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.eps[ap]
}

type impPacket struct {
	b    []byte
	from net.Addr
}

// impEndpoint is a net.PacketConn on an impNet. Writes never block: a full
// receive queue drops the datagram (counted in qdrops).
type impEndpoint struct {
	net       *impNet
	addr      *net.UDPAddr
	in        chan impPacket
	die       chan struct{}
	closeOnce sync.Once
	rd, wd    *impDeadline

	qdrops atomic.Uint64 // datagrams dropped because the queue was full
}

func (e *impEndpoint) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: e.addr, Addr: addr, Err: err}
}

// ReadFrom returns the next datagram (cut to len(b), as UDP does).
func (e *impEndpoint) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-e.die:
		return 0, nil, e.opErr("read", nil, net.ErrClosed)
	case <-e.rd.wait():
		return 0, nil, e.opErr("read", nil, os.ErrDeadlineExceeded)
	default:
	}
	select {
	case p := <-e.in:
		return copy(b, p.b), p.from, nil
	case <-e.die:
		return 0, nil, e.opErr("read", nil, net.ErrClosed)
	case <-e.rd.wait():
		return 0, nil, e.opErr("read", nil, os.ErrDeadlineExceeded)
	}
}

// WriteTo sends a copy of b to addr. A datagram to an unknown address
// vanishes, as UDP's would.
func (e *impEndpoint) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-e.die:
		return 0, e.opErr("write", addr, net.ErrClosed)
	case <-e.wd.wait():
		return 0, e.opErr("write", addr, os.ErrDeadlineExceeded)
	default:
	}
	if addr == nil {
		return 0, e.opErr("write", nil, errors.New("missing address"))
	}
	dst := e.net.lookup(addr)
	if dst == nil {
		e.net.unroutable.Add(1)
		return len(b), nil
	}
	dst.inject(e.addr, b)
	return len(b), nil
}

// inject queues a copy of b as if from sent it: the hostile tests use it to
// forge sources.
func (e *impEndpoint) inject(from net.Addr, b []byte) {
	p := impPacket{b: append([]byte(nil), b...), from: from}
	select {
	case e.in <- p:
	default:
		e.qdrops.Add(1)
	}
}

// Close detaches the endpoint and wakes its blocked readers. A second Close
// returns an error matching net.ErrClosed.
func (e *impEndpoint) Close() error {
	first := false
	e.closeOnce.Do(func() {
		first = true
		close(e.die)
		e.net.mu.Lock()
		if e.net.eps[e.addr.AddrPort()] == e {
			delete(e.net.eps, e.addr.AddrPort())
		}
		e.net.mu.Unlock()
		e.rd.stop()
		e.wd.stop()
	})
	if !first {
		return e.opErr("close", nil, net.ErrClosed)
	}
	return nil
}

func (e *impEndpoint) LocalAddr() net.Addr { return e.addr }

func (e *impEndpoint) SetDeadline(t time.Time) error {
	e.rd.set(t)
	e.wd.set(t)
	return nil
}

func (e *impEndpoint) SetReadDeadline(t time.Time) error  { e.rd.set(t); return nil }
func (e *impEndpoint) SetWriteDeadline(t time.Time) error { e.wd.set(t); return nil }

// impDeadline is a resettable deadline: wait returns a channel that is
// closed once the deadline passes; setting a new deadline affects waiters
// that fetch the channel again (the endpoint's calls fetch it per select).
type impDeadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func newImpDeadline() *impDeadline { return &impDeadline{cancel: make(chan struct{})} }

func (d *impDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *impDeadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func (d *impDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// ---- the impairing wrapper ----

// impairConfig says what an impairConn does to the datagrams written
// through it. Zero values disable each impairment.
type impairConfig struct {
	Label string // names the conn in failure logs and salts its seed

	Loss float64 // i.i.d. drop probability, 0..1

	// Gilbert-Elliott bursty loss, used instead of Loss when GoodToBad > 0:
	// per datagram the state moves good→bad with GoodToBad and bad→good
	// with BadToGood; a datagram is lost with LossBad in the bad state and
	// LossGood in the good one.
	GoodToBad, BadToGood, LossBad, LossGood float64

	MTU int // datagrams longer than this are dropped (0: no cap)

	Corrupt  float64 // probability of 1..3 flipped bits
	Truncate float64 // probability of a cut to a random shorter length

	Duplicate float64 // probability of one extra copy (1: every datagram twice)

	Rate       int // link rate in bytes per second (0: unlimited)
	QueueBytes int // tail-drop queue in front of the link (default 64 KiB)

	Delay        time.Duration // one-way delay
	Jitter       time.Duration // extra delay uniform in [0, Jitter)
	Reorder      float64       // probability a datagram is held back by ReorderDelay
	ReorderDelay time.Duration // default max(2*Jitter, 5 ms)

	// Drop, when set, is asked first about every datagram (n counts writes
	// from 0); true drops it, counted as Lost. Scripted losses use it.
	Drop func(n uint64, b []byte) bool
}

func (c impairConfig) String() string {
	return fmt.Sprintf("%s loss=%g ge=(%g,%g,%g,%g) mtu=%d corrupt=%g trunc=%g dup=%g rate=%d q=%d delay=%v jitter=%v reorder=%g/%v scripted=%t",
		c.Label, c.Loss, c.GoodToBad, c.BadToGood, c.LossBad, c.LossGood, c.MTU, c.Corrupt,
		c.Truncate, c.Duplicate, c.Rate, c.QueueBytes, c.Delay, c.Jitter, c.Reorder, c.ReorderDelay, c.Drop != nil)
}

// impairStats counts what an impairConn did.
type impairStats struct {
	Written    uint64 // WriteTo calls
	Delivered  uint64 // datagrams handed to the inner conn (duplicates included)
	Lost       uint64 // dropped by Loss, the Gilbert-Elliott model or Drop
	Blackout   uint64 // dropped during a blackout
	OverMTU    uint64 // dropped by the MTU cap
	QueueDrops uint64 // tail-dropped by the rate-limited link
	Duplicated uint64 // extra copies made
	Corrupted  uint64 // datagrams with flipped bits
	Truncated  uint64 // datagrams cut short
	Damaged    uint64 // datagrams corrupted, truncated or both
	// HeadOnly counts corrupted datagrams, not truncated, whose flipped
	// bits all lie in the first impHead bytes or cancel out: damage a
	// checksum that leaves the nonce uncovered cannot see.
	HeadOnly  uint64
	Reordered uint64 // datagrams delivered after a later-written one
}

// impHead is the head HeadOnly looks at: the 16-byte nonce in front of the
// checksum of the kcp-go cipher layouts.
const impHead = 16

// Dropped is every datagram that was written and never delivered.
func (s impairStats) Dropped() uint64 { return s.Lost + s.Blackout + s.OverMTU + s.QueueDrops }

type impairCounters struct {
	written, delivered, lost, blackout, overMTU, queueDrops,
	duplicated, corrupted, truncated, damaged, headOnly, reordered atomic.Uint64
}

// impairConn is a net.PacketConn that impairs its writes (see impairConfig)
// and passes reads through. Safe for concurrent use.
type impairConn struct {
	net.PacketConn
	cfg  impairConfig
	seed uint64

	mu        sync.Mutex // guards the fields below
	rng       *rand.Rand
	geBad     bool
	n         uint64    // writes so far
	linkFree  time.Time // when the link finishes the datagrams admitted so far
	pending   impHeap
	blackout  time.Time // drop everything written before this time
	maxSeq    uint64    // highest write index delivered (+1)
	loopStart bool

	cnt       impairCounters
	wake      chan struct{}
	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// newImpairConn wraps inner. Its seed is the test's base seed (impSeed)
// salted with cfg.Label; it is logged, with the config and counters, when
// the test fails. The conn (and inner) are closed when the test ends.
func newImpairConn(t testing.TB, inner net.PacketConn, cfg impairConfig) *impairConn {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(cfg.Label))
	base := impSeed(t)
	c := newImpairConnSeed(inner, cfg, base^h.Sum64())
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("impairConn %q: base seed %d (rerun with -kcpx.seed=%d), conn seed %d; %s; %+v",
				cfg.Label, base, base, c.seed, cfg, c.stats())
		}
	})
	return c
}

// newImpairConnSeed wraps inner with an explicit seed and no test hooks.
func newImpairConnSeed(inner net.PacketConn, cfg impairConfig, seed uint64) *impairConn {
	if cfg.Rate > 0 && cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 64 << 10
	}
	if cfg.Reorder > 0 && cfg.ReorderDelay <= 0 {
		cfg.ReorderDelay = max(2*cfg.Jitter, 5*time.Millisecond)
	}
	return &impairConn{
		PacketConn: inner,
		cfg:        cfg,
		seed:       seed,
		rng:        rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc909)),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
}

func (c *impairConn) stats() impairStats {
	return impairStats{
		Written:    c.cnt.written.Load(),
		Delivered:  c.cnt.delivered.Load(),
		Lost:       c.cnt.lost.Load(),
		Blackout:   c.cnt.blackout.Load(),
		OverMTU:    c.cnt.overMTU.Load(),
		QueueDrops: c.cnt.queueDrops.Load(),
		Duplicated: c.cnt.duplicated.Load(),
		Corrupted:  c.cnt.corrupted.Load(),
		Truncated:  c.cnt.truncated.Load(),
		Damaged:    c.cnt.damaged.Load(),
		HeadOnly:   c.cnt.headOnly.Load(),
		Reordered:  c.cnt.reordered.Load(),
	}
}

// expected is how many datagrams the inner conn will have been handed once
// everything delayed is out: the fates are decided at write time.
func (c *impairConn) expected() int {
	st := c.stats()
	return int(st.Written - st.Dropped() + st.Duplicated)
}

// blackoutFor drops every datagram written during the next d.
func (c *impairConn) blackoutFor(d time.Duration) {
	c.mu.Lock()
	c.blackout = time.Now().Add(d)
	c.mu.Unlock()
}

// setLoss changes the i.i.d. loss probability from now on.
func (c *impairConn) setLoss(p float64) {
	c.mu.Lock()
	c.cfg.Loss = p
	c.mu.Unlock()
}

type impItem struct {
	at   time.Time
	seq  uint64 // write index; copies share it
	copy bool   // a duplicate
	b    []byte
	addr net.Addr
}

type impHeap []impItem

func (h impHeap) Len() int { return len(h) }
func (h impHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	if h[i].seq != h[j].seq {
		return h[i].seq < h[j].seq
	}
	return !h[i].copy && h[j].copy
}
func (h impHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *impHeap) Push(x any)   { *h = append(*h, x.(impItem)) }
func (h *impHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = impItem{}
	*h = old[:len(old)-1]
	return it
}

// WriteTo decides the datagram's fate and delivers it now or later. It
// reports success for dropped datagrams, as a lossy network would.
func (c *impairConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.stop:
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.ErrClosed}
	default:
	}
	c.cnt.written.Add(1)
	now := time.Now()

	c.mu.Lock()
	seq := c.n
	c.n++
	cfg := &c.cfg
	if cfg.Drop != nil && cfg.Drop(seq, b) {
		c.mu.Unlock()
		c.cnt.lost.Add(1)
		return len(b), nil
	}
	if now.Before(c.blackout) {
		c.mu.Unlock()
		c.cnt.blackout.Add(1)
		return len(b), nil
	}
	if cfg.MTU > 0 && len(b) > cfg.MTU {
		c.mu.Unlock()
		c.cnt.overMTU.Add(1)
		return len(b), nil
	}
	if c.lose() {
		c.mu.Unlock()
		c.cnt.lost.Add(1)
		return len(b), nil
	}
	pkt, owned, head := b, false, false
	if cfg.Corrupt > 0 && c.rng.Float64() < cfg.Corrupt && len(b) > 0 {
		pkt, owned, head = append([]byte(nil), b...), true, true
		for range 1 + c.rng.IntN(3) {
			bit := c.rng.IntN(len(pkt) * 8)
			pkt[bit/8] ^= 1 << (bit % 8)
		}
		if len(pkt) > impHead && !bytes.Equal(pkt[impHead:], b[impHead:]) {
			head = false
		}
		c.cnt.corrupted.Add(1)
	}
	if cfg.Truncate > 0 && c.rng.Float64() < cfg.Truncate && len(pkt) > 0 {
		pkt, owned, head = append([]byte(nil), pkt[:c.rng.IntN(len(pkt))]...), true, false
		c.cnt.truncated.Add(1)
	}
	if head {
		c.cnt.headOnly.Add(1)
	}
	if owned {
		c.cnt.damaged.Add(1)
	}
	copies := 1
	if cfg.Duplicate > 0 && c.rng.Float64() < cfg.Duplicate {
		copies = 2
	}

	immediate := cfg.Rate == 0 && cfg.Delay == 0 && cfg.Jitter == 0 && cfg.Reorder == 0
	if copies == 2 && immediate {
		c.cnt.duplicated.Add(1)
	}
	if immediate {
		c.mu.Unlock()
		for i := range copies {
			c.deliver(impItem{seq: seq, copy: i > 0, b: pkt, addr: addr})
		}
		return len(b), nil
	}

	// The link serialises datagrams at Rate behind a queue of QueueBytes;
	// the queue is what has been admitted but not yet sent (fluid model).
	depart := now
	if cfg.Rate > 0 {
		if c.linkFree.Before(now) {
			c.linkFree = now
		}
		backlog := int(c.linkFree.Sub(now).Seconds() * float64(cfg.Rate))
		if backlog > 0 && backlog+len(pkt)*copies > cfg.QueueBytes {
			c.mu.Unlock()
			c.cnt.queueDrops.Add(1)
			return len(b), nil
		}
		c.linkFree = c.linkFree.Add(time.Duration(float64(len(pkt)*copies) / float64(cfg.Rate) * float64(time.Second)))
		depart = c.linkFree
	}
	if copies == 2 {
		c.cnt.duplicated.Add(1) // counted once admitted, so expected() is exact
	}
	if !owned {
		pkt = append([]byte(nil), b...) // the caller reuses b once we return
	}
	for i := range copies {
		at := depart.Add(cfg.Delay)
		if cfg.Jitter > 0 {
			at = at.Add(time.Duration(c.rng.Int64N(int64(cfg.Jitter))))
		}
		if cfg.Reorder > 0 && c.rng.Float64() < cfg.Reorder {
			at = at.Add(cfg.ReorderDelay)
		}
		heap.Push(&c.pending, impItem{at: at, seq: seq, copy: i > 0, b: pkt, addr: addr})
	}
	if !c.loopStart {
		c.loopStart = true
		go c.loop()
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// lose draws the loss decision. Caller holds mu.
func (c *impairConn) lose() bool {
	cfg := &c.cfg
	if cfg.GoodToBad > 0 {
		if c.geBad {
			if c.rng.Float64() < cfg.BadToGood {
				c.geBad = false
			}
		} else if c.rng.Float64() < cfg.GoodToBad {
			c.geBad = true
		}
		p := cfg.LossGood
		if c.geBad {
			p = cfg.LossBad
		}
		return p > 0 && c.rng.Float64() < p
	}
	return cfg.Loss > 0 && c.rng.Float64() < cfg.Loss
}

// deliver hands one datagram to the inner conn and notes reordering.
func (c *impairConn) deliver(it impItem) {
	c.mu.Lock()
	if !it.copy {
		if it.seq+1 < c.maxSeq {
			c.cnt.reordered.Add(1)
		}
		c.maxSeq = max(c.maxSeq, it.seq+1)
	}
	c.mu.Unlock()
	if _, err := c.PacketConn.WriteTo(it.b, it.addr); err == nil {
		c.cnt.delivered.Add(1)
	}
}

// loop delivers delayed datagrams when they are due, until Close.
func (c *impairConn) loop() {
	defer close(c.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []impItem
	for {
		c.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(c.pending) > 0 && !c.pending[0].at.After(now) {
			due = append(due, heap.Pop(&c.pending).(impItem))
		}
		wait := time.Hour
		if len(c.pending) > 0 {
			wait = c.pending[0].at.Sub(now)
		}
		c.mu.Unlock()
		for _, it := range due {
			c.deliver(it)
		}
		clear(due)
		timer.Reset(wait)
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// Close drops what is still delayed, stops the delivery goroutine (waiting
// for it), and closes the inner conn.
func (c *impairConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.mu.Lock()
		started := c.loopStart
		c.loopStart = true // no loop starts after this
		c.pending = nil
		c.mu.Unlock()
		if started {
			<-c.loopDone
		}
		c.closeErr = c.PacketConn.Close()
	})
	return c.closeErr
}

// ---- helpers shared by the reliability tests ----

// impMeanBurst is the mean length of runs of consecutive true values.
func impMeanBurst(lost []bool) float64 {
	runs, total := 0, 0
	for i, l := range lost {
		if l {
			total++
			if i == 0 || !lost[i-1] {
				runs++
			}
		}
	}
	if runs == 0 {
		return 0
	}
	return float64(total) / float64(runs)
}

// impBinomialTol is a tolerance of k standard deviations (at least one
// event) for a rate p measured over n trials.
func impBinomialTol(p float64, n, k int) float64 {
	return max(float64(k)*math.Sqrt(p*(1-p)/float64(n)), 1/float64(n))
}

// ---- tests of the test networks themselves ----

// impDrain reads from c until it has want datagrams or nothing arrives for
// quiet; it returns the payloads in arrival order.
func impDrain(t testing.TB, c net.PacketConn, want int, quiet time.Duration) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 2048)
	for len(got) < want {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			t.Fatalf("read: %v", err)
		}
		got = append(got, append([]byte(nil), buf[:n]...))
	}
	c.SetReadDeadline(time.Time{})
	return got
}

// impNumbered is datagram i of size bytes: the index, then a pattern.
func impNumbered(i, size int) []byte {
	b := make([]byte, max(size, 8))
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	b[0], b[1], b[2], b[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return b
}

func impIndex(b []byte) int { return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]) }

func TestImpEndpoint(t *testing.T) {
	t.Run("roundtrip and source", func(t *testing.T) {
		a, b := impPair(t, 8)
		if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, from, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "hello" || from.String() != a.LocalAddr().String() {
			t.Fatalf("got %q from %v, %v", buf[:n], from, err)
		}
	})
	t.Run("full queue drops", func(t *testing.T) {
		a, b := impPair(t, 4)
		for range 10 {
			a.WriteTo([]byte{1}, b.LocalAddr())
		}
		if got := len(impDrain(t, b, 10, 20*time.Millisecond)); got != 4 || b.qdrops.Load() != 6 {
			t.Fatalf("delivered %d, dropped %d; want 4 and 6", got, b.qdrops.Load())
		}
	})
	t.Run("unknown destination vanishes", func(t *testing.T) {
		n := newImpNet(4)
		a := n.listen(t)
		if _, err := a.WriteTo([]byte{1}, n.addr()); err != nil || n.unroutable.Load() != 1 {
			t.Fatalf("err %v, unroutable %d", err, n.unroutable.Load())
		}
	})
	t.Run("deadline in the past", func(t *testing.T) {
		a, b := impPair(t, 4)
		a.WriteTo([]byte{1}, b.LocalAddr())
		b.SetReadDeadline(time.Unix(1, 0))
		_, _, err := b.ReadFrom(make([]byte, 4))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err %v; want a timeout", err)
		}
		b.SetReadDeadline(time.Time{})
		if _, _, err := b.ReadFrom(make([]byte, 4)); err != nil {
			t.Fatalf("after clearing the deadline: %v", err)
		}
	})
	t.Run("deadline set while blocked", func(t *testing.T) {
		_, b := impPair(t, 4)
		errc := make(chan error, 1)
		go func() { _, _, err := b.ReadFrom(make([]byte, 4)); errc <- err }()
		b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked reader ignored a new deadline")
		}
	})
	t.Run("close wakes reader", func(t *testing.T) {
		_, b := impPair(t, 4)
		errc := make(chan error, 1)
		go func() { _, _, err := b.ReadFrom(make([]byte, 4)); errc <- err }()
		b.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Close did not wake the reader within 1 s")
		}
		if _, err := b.WriteTo([]byte{1}, b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		if err := b.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second close: %v", err)
		}
	})
}

// impRun writes n numbered datagrams of size bytes through an impairConn
// with cfg and seed over a fresh in-memory pair, and returns what arrived
// (in order) and the counters. Without delay or rate the run is fully
// deterministic for the seed.
func impRun(t *testing.T, cfg impairConfig, seed uint64, n, size int) ([][]byte, impairStats) {
	t.Helper()
	a, b := impPair(t, 2*n+16)
	c := newImpairConnSeed(a, cfg, seed)
	defer c.Close()
	for i := range n {
		if _, err := c.WriteTo(impNumbered(i, size), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	want := c.expected()
	got := impDrain(t, b, want, time.Second)
	if extra := impDrain(t, b, 1, 20*time.Millisecond); len(extra) != 0 {
		t.Fatalf("more than the %d expected datagrams arrived", want)
	}
	// Delivered is counted once the inner WriteTo returned, which may be
	// just after the reader saw the datagram.
	for deadline := time.Now().Add(2 * time.Second); int(c.stats().Delivered) < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // polling a counter with a bound
	}
	st := c.stats()
	if len(got) != want || int(st.Delivered) != want {
		t.Fatalf("received %d datagrams, conn delivered %d, expected %d", len(got), st.Delivered, want)
	}
	return got, st
}

func TestImpairLossRates(t *testing.T) {
	const n = 20000
	seed := impSeed(t)
	cases := []struct {
		name     string
		cfg      impairConfig
		want     float64 // mean loss
		minBurst float64 // mean run of consecutive losses, at least
	}{
		{"iid 1%", impairConfig{Loss: 0.01}, 0.01, 1},
		{"iid 10%", impairConfig{Loss: 0.10}, 0.10, 1},
		{"iid 30%", impairConfig{Loss: 0.30}, 0.30, 1},
		{"iid 50%", impairConfig{Loss: 0.50}, 0.50, 1},
		{"iid 100%", impairConfig{Loss: 1}, 1, 1},
		// p=0.02, r=0.2, lossBad 1: stationary loss p/(p+r) = 9.1%, bursts of 1/r = 5.
		{"gilbert-elliott", impairConfig{GoodToBad: 0.02, BadToGood: 0.2, LossBad: 1}, 0.02 / 0.22, 3.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, st := impRun(t, tc.cfg, seed, n, 16)
			lost := make([]bool, n)
			for i := range lost {
				lost[i] = true
			}
			for _, b := range got {
				lost[impIndex(b)] = false
			}
			rate := float64(st.Lost) / n
			// The GE process is correlated: allow more than the i.i.d. spread.
			tol := impBinomialTol(tc.want, n, 4)
			if tc.cfg.GoodToBad > 0 {
				tol *= 4
			}
			if math.Abs(rate-tc.want) > tol {
				t.Errorf("loss %.4f, want %.4f ± %.4f (seed %d)", rate, tc.want, tol, seed)
			}
			if st.Lost+st.Delivered != n || st.Written != n {
				t.Errorf("counters do not add up: %+v", st)
			}
			if tc.want < 1 {
				if mb := impMeanBurst(lost); mb < tc.minBurst || (tc.minBurst == 1 && mb > 1/(1-tc.want)+0.2) {
					t.Errorf("mean loss burst %.2f, want >= %.2f (and near 1/(1-p) for i.i.d.)", mb, tc.minBurst)
				}
			}
			t.Logf("loss %.4f (want %.4f), mean burst %.2f", rate, tc.want, impMeanBurst(lost))
		})
	}
}

func TestImpairDeterministic(t *testing.T) {
	cfg := impairConfig{Loss: 0.1, MTU: 900, Corrupt: 0.1, Truncate: 0.05, Duplicate: 0.2}
	seed := impSeed(t)
	run := func(seed uint64) [][]byte {
		// Sizes vary so the MTU cap bites on some.
		a, b := impPair(t, 4096)
		c := newImpairConnSeed(a, cfg, seed)
		defer c.Close()
		for i := range 1000 {
			c.WriteTo(impNumbered(i, 100+(i*37)%1000), b.LocalAddr())
		}
		return impDrain(t, b, 4096, 50*time.Millisecond)
	}
	x, y, z := run(seed), run(seed), run(seed+1)
	same := func(p, q [][]byte) bool {
		if len(p) != len(q) {
			return false
		}
		for i := range p {
			if string(p[i]) != string(q[i]) {
				return false
			}
		}
		return true
	}
	if !same(x, y) {
		t.Fatalf("seed %d gave two different runs (%d vs %d datagrams)", seed, len(x), len(y))
	}
	if same(x, z) {
		t.Fatalf("seeds %d and %d gave the same run", seed, seed+1)
	}
}

func TestImpairFaults(t *testing.T) {
	seed := impSeed(t)
	t.Run("duplicate 100%", func(t *testing.T) {
		got, st := impRun(t, impairConfig{Duplicate: 1}, seed, 500, 64)
		if len(got) != 1000 || st.Duplicated != 500 {
			t.Fatalf("received %d, duplicated %d; want 1000 and 500", len(got), st.Duplicated)
		}
		count := map[int]int{}
		for _, b := range got {
			count[impIndex(b)]++
		}
		for i := range 500 {
			if count[i] != 2 {
				t.Fatalf("datagram %d arrived %d times", i, count[i])
			}
		}
	})
	t.Run("corrupt every datagram", func(t *testing.T) {
		got, st := impRun(t, impairConfig{Corrupt: 1}, seed, 500, 64)
		if len(got) != 500 || st.Corrupted != 500 {
			t.Fatalf("received %d, corrupted %d", len(got), st.Corrupted)
		}
		changed := 0
		for i, b := range got {
			if string(b) != string(impNumbered(i, 64)) {
				changed++
			}
		}
		if changed != 500 {
			t.Fatalf("%d of 500 datagrams differ from what was written", changed)
		}
	})
	t.Run("truncate every datagram", func(t *testing.T) {
		got, st := impRun(t, impairConfig{Truncate: 1}, seed, 500, 64)
		if len(got) != 500 || st.Truncated != 500 {
			t.Fatalf("received %d, truncated %d", len(got), st.Truncated)
		}
		for _, b := range got {
			if len(b) >= 64 {
				t.Fatalf("a datagram of %d bytes was not cut", len(b))
			}
		}
	})
	t.Run("mtu cap", func(t *testing.T) {
		a, b := impPair(t, 16)
		c := newImpairConnSeed(a, impairConfig{MTU: 100}, seed)
		defer c.Close()
		c.WriteTo(make([]byte, 100), b.LocalAddr())
		c.WriteTo(make([]byte, 101), b.LocalAddr())
		got := impDrain(t, b, 2, 50*time.Millisecond)
		if len(got) != 1 || len(got[0]) != 100 || c.stats().OverMTU != 1 {
			t.Fatalf("got %d datagrams, over-MTU %d", len(got), c.stats().OverMTU)
		}
	})
	t.Run("scripted drop", func(t *testing.T) {
		got, st := impRun(t, impairConfig{Drop: func(n uint64, _ []byte) bool { return n%10 == 3 }}, seed, 100, 16)
		if len(got) != 90 || st.Lost != 10 {
			t.Fatalf("received %d, lost %d", len(got), st.Lost)
		}
		for _, b := range got {
			if impIndex(b)%10 == 3 {
				t.Fatalf("datagram %d should have been dropped", impIndex(b))
			}
		}
	})
	t.Run("blackout", func(t *testing.T) {
		a, b := impPair(t, 16)
		c := newImpairConnSeed(a, impairConfig{}, seed)
		defer c.Close()
		c.blackoutFor(time.Hour)
		c.WriteTo([]byte{1}, b.LocalAddr())
		c.blackoutFor(0)
		c.WriteTo([]byte{2}, b.LocalAddr())
		got := impDrain(t, b, 2, 50*time.Millisecond)
		if len(got) != 1 || got[0][0] != 2 || c.stats().Blackout != 1 {
			t.Fatalf("got %v, blackout drops %d", got, c.stats().Blackout)
		}
	})
}

func TestImpairDelayReorder(t *testing.T) {
	const n = 2000
	cfg := impairConfig{Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Reorder: 0.05, ReorderDelay: 10 * time.Millisecond}
	a, b := impPair(t, n+16)
	c := newImpairConnSeed(a, cfg, impSeed(t))
	defer c.Close()
	start := time.Now()
	for i := range n {
		c.WriteTo(impNumbered(i, 32), b.LocalAddr())
	}
	first := impDrain(t, b, 1, 5*time.Second)
	if len(first) != 1 {
		t.Fatal("nothing arrived")
	}
	if el := time.Since(start); el < cfg.Delay {
		t.Fatalf("first datagram after %v, before the %v delay", el, cfg.Delay)
	}
	got := append(first, impDrain(t, b, c.expected()-1, 2*time.Second)...)
	seen := map[int]bool{}
	inversions := 0
	for i, d := range got {
		seen[impIndex(d)] = true
		if i > 0 && impIndex(d) < impIndex(got[i-1]) {
			inversions++
		}
	}
	st := c.stats()
	if len(got) != n || len(seen) != n {
		t.Fatalf("received %d datagrams, %d distinct; want %d", len(got), len(seen), n)
	}
	if st.Reordered < 20 || inversions == 0 {
		t.Fatalf("reordered %d (want >= 20), inversions seen by the reader %d", st.Reordered, inversions)
	}
	t.Logf("reordered %d of %d", st.Reordered, n)
}

// TestImpairLinkModel checks the rate-limited link on its own schedule:
// offered twice its rate, it passes its rate and tail-drops the rest.
func TestImpairLinkModel(t *testing.T) {
	const (
		rate = 1 << 20 // bytes/s
		size = 1000
		dur  = 300 * time.Millisecond
	)
	a, b := impPair(t, 4096)
	c := newImpairConnSeed(a, impairConfig{Rate: rate, QueueBytes: 32 << 10}, impSeed(t))
	defer c.Close()
	// Offer 2x the rate, paced by the clock, for dur.
	start := time.Now()
	sent := 0
	for time.Since(start) < dur {
		for sent*size < int(2*rate*time.Since(start).Seconds()) {
			c.WriteTo(impNumbered(sent, size), b.LocalAddr())
			sent++
		}
		time.Sleep(time.Millisecond) // pacing the offered load, not synchronising
	}
	got := impDrain(t, b, c.expected(), 2*time.Second)
	st := c.stats()
	if len(got) != c.expected() || st.QueueDrops == 0 {
		t.Fatalf("received %d, expected %d, queue drops %d", len(got), c.expected(), st.QueueDrops)
	}
	// What passed is the rate over the offer period plus at most the queue
	// and one datagram.
	passed := len(got) * size
	budget := int(rate*dur.Seconds()) + 32<<10 + size
	lower := int(0.7 * rate * dur.Seconds())
	if passed > budget+rate/20 || passed < lower {
		t.Fatalf("link passed %d bytes in %v; want %d..%d", passed, dur, lower, budget)
	}
	t.Logf("offered %d B, passed %d B (%.0f%% of rate x time), tail-dropped %d", sent*size, passed,
		100*float64(passed)/(rate*dur.Seconds()), st.QueueDrops)
}

func TestImpairCloseStopsDelivery(t *testing.T) {
	a, b := impPair(t, 16)
	c := newImpairConnSeed(a, impairConfig{Delay: time.Hour}, 1)
	c.WriteTo([]byte{1}, b.LocalAddr())
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Close with a datagram pending did not return within 1 s")
	}
	select {
	case <-c.loopDone:
	default:
		t.Fatal("the delivery goroutine outlived Close")
	}
	if _, err := c.WriteTo([]byte{1}, b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if len(impDrain(t, b, 1, 20*time.Millisecond)) != 0 {
		t.Fatal("a pending datagram was delivered after Close")
	}
}

// TestImpairOverUDP wraps real loopback sockets.
func TestImpairOverUDP(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "udp6" {
				addr = "[::1]:0"
			}
			ua, err := net.ListenPacket(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			ub, err := net.ListenPacket(network, addr)
			if err != nil {
				ua.Close()
				t.Fatal(err)
			}
			t.Cleanup(func() { ub.Close() })
			ub.(*net.UDPConn).SetReadBuffer(4 << 20)
			c := newImpairConn(t, ua, impairConfig{Label: "udp", Loss: 0.2, Duplicate: 0.1, Delay: time.Millisecond})
			const n = 2000
			for i := range n {
				c.WriteTo(impNumbered(i, 200), ub.LocalAddr())
			}
			want := c.expected()
			got := impDrain(t, ub, want, 2*time.Second)
			st := c.stats()
			if len(got) != want || st.Lost == 0 || st.Duplicated == 0 {
				t.Fatalf("received %d, %+v", len(got), st)
			}
			if rate := float64(st.Lost) / n; math.Abs(rate-0.2) > impBinomialTol(0.2, n, 4) {
				t.Fatalf("loss %.3f, want 0.2", rate)
			}
		})
	}
}
