package kcp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// The send side of a socket.
//
// Sessions never write to the socket on their own account. Their output
// (KCP datagrams, FEC parity, OOB and close signals) is appended, unsealed,
// to the session's txq under the session lock; the first datagram of a txq
// puts the session on its socket's sendQueue and signals the queue's
// goroutine. Whoever drains the queue holds its drain token: it takes ready
// sessions in turn (at most sendTurn datagrams each per turn, so a bulk
// session cannot hold a ping back for more than one batch), seals their
// datagrams, and writes batches that may mix sessions and destinations: one
// sendmmsg (with GSO runs per destination) serves many sessions of a
// listener.
//
// The drain token is taken with TryLock and never waited for. The queue's
// goroutine takes it when signalled; a goroutine that has just written
// (Write, SendOOB) takes it too when it is free and drains at once, which
// saves a goroutine hand-off on the round trip and lets a full socket push
// back on the writer. The read goroutine, the timer goroutines, Read and
// Close never drain: they only signal. A holder looks at the ready list again after
// releasing the token, so nothing queued meanwhile is stranded. A full
// socket buffer blocks the holder only; receiving and timers go on, and a
// session whose txq is full drops further output, which ARQ retransmits.

const (
	// sendTurn is the most datagrams the sender takes from one session
	// before it serves the next ready one.
	sendTurn = 64

	// sendBatch is the most datagrams the sender gathers before it writes:
	// one sendmmsg call with GSO carries up to gsoIovs, but a batch that
	// large would keep a ping behind a bulk session for longer.
	sendBatch = 256
)

// outPacket is one datagram for a socket: its bytes and its destination.
type outPacket struct {
	b    []byte
	to   netip.AddrPort // UDP destination, unmapped; invalid for other conns
	addr net.Addr       // the destination when it is not a UDP address
}

// packetWriter sends datagrams on one conn: the batch path on Linux
// (sendmmsg, GSO), else one WriteTo per datagram. It is safe for concurrent
// use (the batch path holds mu around its message array), though in the
// session layer only the socket's sender goroutine calls it.
type packetWriter struct {
	conn      net.PacketConn
	udp       *net.UDPConn // nil for custom conns
	connected bool         // udp has a fixed peer: send without an address

	mu       sync.Mutex   // guards batch's message array during a call
	batch    *batchWriter // nil when batching is unavailable
	batchOff atomic.Bool  // the kernel refused batching; set once
	batchOn  atomic.Bool  // mirrors batch != nil, for readers on other goroutines

	lastAddr atomic.Pointer[addrCache] // custom conns: last AddrPort converted to net.Addr

	filter *filterState // a datagramFilter conn: seal through it (udp_filter.go); nil otherwise

	nfallback atomic.Uint64
	ndatagram atomic.Uint64 // datagrams handed to the kernel or the conn
	ncalls    atomic.Uint64 // plain-path write calls (the batch path counts in offload)
	offload   offloadStats
	gsoOn     atomic.Bool // mirrors batch.gso() after each call, for readers on other goroutines

	injectPlain syscall.Errno // tests: the next plain send fails with this errno
}

type addrCache struct {
	ap   netip.AddrPort
	addr net.Addr
}

// newPacketWriter returns a writer for conn. On Linux a *net.UDPConn is
// written with sendmmsg, with GSO when the socket answers the UDP_SEGMENT
// probe; so is the socket of a datagramFilter conn, whose datagrams are
// sealed through the filter first (udp_filter.go); any other conn one
// datagram per WriteTo.
func newPacketWriter(conn net.PacketConn) *packetWriter {
	w := &packetWriter{conn: conn}
	if f, ok := conn.(datagramFilter); ok {
		u := f.filterSocket()
		w.filter = &filterState{f: f}
		w.udp = u
		w.batch = newBatchWriter(u, false, &w.offload)
		w.batchOn.Store(w.batch != nil)
		w.gsoOn.Store(w.batch != nil && w.batch.gso())
	} else if u, ok := conn.(*net.UDPConn); ok {
		w.udp = u
		w.connected = u.RemoteAddr() != nil
		w.batch = newBatchWriter(u, w.connected, &w.offload)
		w.batchOn.Store(w.batch != nil)
		w.gsoOn.Store(w.batch != nil && w.batch.gso())
	}
	return w
}

// forceMode steps the writer down to mode m (it never steps up) and returns
// the mode in effect. For tests and benchmarks; call it before the first
// write.
func (w *packetWriter) forceMode(m ioMode) ioMode {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batch != nil && m < ioOffload {
		w.batch.disableGSO()
		w.gsoOn.Store(false)
	}
	if m < ioBatch {
		w.batch = nil
		w.batchOn.Store(false)
		w.gsoOn.Store(false)
	}
	switch {
	case w.batch == nil:
		return ioPlain
	case w.batch.gso():
		return ioOffload
	}
	return ioBatch
}

// write sends pkts in order to one peer (to, or toAddr when to is invalid;
// both are ignored on a connected socket) and returns how many were sent,
// stopping at the first error. It is send for callers with one destination
// (tests, tools); it allocates the batch it builds.
func (w *packetWriter) write(pkts [][]byte, to netip.AddrPort, toAddr net.Addr) (int, error) {
	if !to.IsValid() && toAddr != nil {
		if ua, ok := toAddr.(*net.UDPAddr); ok {
			to, toAddr = ua.AddrPort(), nil
		}
	}
	to = unmapAddrPort(to)
	out := make([]outPacket, len(pkts))
	for i, p := range pkts {
		out[i] = outPacket{b: p, to: to, addr: toAddr}
	}
	return w.send(out)
}

// send writes pkts in order and returns how many were sent. On an error it
// stops and returns the index of the datagram that failed with the error;
// the caller decides whether to drop that one and go on. The buffers stay
// the caller's and are not retained. A full socket buffer blocks until there
// is room or the write deadline passes.
//
// A batch call the kernel refuses as unsupported (ENOSYS, EOPNOTSUPP, EIO)
// switches the writer to the plain path for good. EPERM is ambiguous: a
// firewall rule or a full conntrack table refuses one datagram with it, a
// sandbox refuses the sendmmsg syscall itself. The datagram is then sent
// once more on the plain path: if that succeeds the batch call was what was
// refused (switch for good); if it fails the same way, the datagram was, and
// the mode stays.
func (w *packetWriter) send(pkts []outPacket) (int, error) {
	if w.filter != nil {
		return w.sendFiltered(pkts)
	}
	return w.sendRaw(pkts)
}

// sendRaw is send for datagrams ready for the socket.
func (w *packetWriter) sendRaw(pkts []outPacket) (int, error) {
	sent := 0
	for sent < len(pkts) {
		if w.batch == nil || w.batchOff.Load() {
			n, err := w.sendPlain(pkts[sent:])
			return sent + n, err
		}
		w.mu.Lock()
		n, ok, err := w.batch.send(pkts[sent:])
		w.gsoOn.Store(w.batch.gso())
		w.mu.Unlock()
		w.ndatagram.Add(uint64(n))
		sent += n
		switch {
		case !ok:
			// The destination cannot be encoded for sendmmsg (an IPv6 zone):
			// the plain path sends it.
			if _, err := w.sendPlain(pkts[sent : sent+1]); err != nil {
				return sent, err
			}
			sent++
		case err == nil:
		case batchRefused(err):
			w.refuseBatch()
		case errors.Is(err, syscall.EPERM):
			if _, perr := w.sendPlain(pkts[sent : sent+1]); perr != nil {
				return sent, err // this datagram was refused, not sendmmsg
			}
			w.refuseBatch()
			sent++
		default:
			return sent, err
		}
	}
	return sent, nil
}

// refuseBatch switches the writer to the plain path for good.
func (w *packetWriter) refuseBatch() {
	if !w.batchOff.Swap(true) {
		w.gsoOn.Store(false)
		w.nfallback.Add(1)
	}
}

// sendPlain writes pkts one call each and returns how many were sent.
func (w *packetWriter) sendPlain(pkts []outPacket) (int, error) {
	for i := range pkts {
		if err := w.sendOne(&pkts[i]); err != nil {
			return i, err
		}
		w.ncalls.Add(1)
		w.ndatagram.Add(1)
	}
	return len(pkts), nil
}

func (w *packetWriter) sendOne(p *outPacket) error {
	if e := w.injectPlain; e != 0 {
		w.injectPlain = 0
		return &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", e)}
	}
	var err error
	switch {
	case w.udp == nil:
		var addr net.Addr
		if addr, err = w.destAddr(p); err == nil {
			_, err = w.conn.WriteTo(p.b, addr)
		}
	case w.connected:
		_, err = w.udp.Write(p.b)
	case p.to.IsValid():
		_, err = w.udp.WriteToUDPAddrPort(p.b, p.to)
	case p.addr != nil:
		_, err = w.udp.WriteTo(p.b, p.addr)
	default:
		err = &net.OpError{Op: "write", Net: "udp", Source: w.udp.LocalAddr(),
			Err: errors.New("missing destination address")}
	}
	return err
}

// destAddr is p's destination as a net.Addr for a custom conn, converting
// (and caching) UDP destinations so that a run to one peer allocates once.
func (w *packetWriter) destAddr(p *outPacket) (net.Addr, error) {
	if p.addr != nil {
		return p.addr, nil
	}
	if !p.to.IsValid() {
		return nil, &net.OpError{Op: "write", Net: w.conn.LocalAddr().Network(), Source: w.conn.LocalAddr(),
			Err: errors.New("missing destination address")}
	}
	if c := w.lastAddr.Load(); c != nil && c.ap == p.to {
		return c.addr, nil
	}
	addr := net.UDPAddrFromAddrPort(p.to)
	w.lastAddr.Store(&addrCache{ap: p.to, addr: addr})
	return addr, nil
}

// batching reports whether the writer still uses the batch path.
func (w *packetWriter) batching() bool { return w.batchOn.Load() && !w.batchOff.Load() }

// fallbacks reports how many times a refused batch call made the writer
// switch to the plain path (0 or 1).
func (w *packetWriter) fallbacks() uint64 { return w.nfallback.Load() }

// gsoEnabled reports whether the writer sends runs of equal-sized datagrams
// as GSO super-datagrams (Linux 4.18 and later, batch path in use, not
// refused by the kernel).
func (w *packetWriter) gsoEnabled() bool { return w.gsoOn.Load() }

// gsoFallbacks reports how many GSO messages the kernel refused; each was
// sent again without GSO, and GSO stayed off afterwards (or, after EINVAL
// for a segment larger than GSO had carried, off for that size and above).
func (w *packetWriter) gsoFallbacks() uint64 { return w.offload.gsoFallbacks.Load() }

// gsoSegments reports how many datagrams went out inside GSO messages.
func (w *packetWriter) gsoSegments() uint64 { return w.offload.gsoSegments.Load() }

// sendQueue is the one place that writes to a socket: its goroutine (run)
// takes the datagrams of ready sessions and writes them. add and close are
// safe for concurrent use; everything else belongs to the goroutine.
type sendQueue struct {
	w *packetWriter

	mu      sync.Mutex
	ready   []*UDPSession // sessions with queued datagrams, in turn order
	closing bool
	after   func() // run by the sender once it drained after close

	wake chan struct{} // capacity 1: ready may be non-empty
	done chan struct{} // closed when run returns

	// busy is the drain token; it guards the fields below.
	busy   sync.Mutex
	turn   []*UDPSession // the ready list taken from mu
	batch  []outPacket
	bufs   []*[]byte   // the pooled buffer behind each batch entry (nil for duplicates)
	owners []txOwner   // runs of batch entries by session
	failed []bool      // per batch entry: the write of it failed
	dead   bool        // the socket failed for good: drop, do not write
	ctl    *ctlQueue   // a filter's control replies (udp_filter.go); nil for other conns
	ctlOut []outPacket // the replies being written

	queueDrops atomic.Uint64 // datagrams sessions dropped because their txq was full
	ampLimited atomic.Uint64 // output held back or dropped by the 3x budget toward unproven peers
	sendErrs   atomic.Uint64 // datagrams a transient send error dropped
}

// txOwner is a run of batch entries from one session's turn.
type txOwner struct {
	s          *UDPSession
	start, end int
}

// newSendQueue starts the sender of w's socket.
func newSendQueue(w *packetWriter) *sendQueue {
	q := &sendQueue{
		w:      w,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		batch:  make([]outPacket, 0, sendBatch+sendTurn*4),
		bufs:   make([]*[]byte, 0, sendBatch+sendTurn*4),
		failed: make([]bool, 0, sendBatch+sendTurn*4),
	}
	if w.filter != nil {
		q.ctl = w.filter.f.filterCtl()
		q.ctlOut = make([]outPacket, 0, q.ctl.slots())
	}
	go q.run()
	if q.ctl != nil {
		q.ctl.attach(q.wake)
	}
	return q
}

// add puts s on the ready list and, with signal, wakes the queue's
// goroutine; a caller that drains the queue itself right after (push) need
// not wake it. The caller holds s.mu and sets s.txReady to the result:
// false once the queue is closed.
func (q *sendQueue) add(s *UDPSession, signal bool) bool {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	q.ready = append(q.ready, s)
	q.mu.Unlock()
	if signal {
		notify(q.wake)
	}
	return true
}

// drain serves ready sessions until none is left, if it gets the token;
// otherwise the holder of the token (or the queue's goroutine, already
// signalled) sends what is queued. The queue's goroutine and writers
// (UDPSession.push) call it: never the reader, a timer, Read or Close.
func (q *sendQueue) drain() {
	for {
		if !q.busy.TryLock() {
			return
		}
		for q.serve() {
		}
		q.busy.Unlock()
		q.mu.Lock()
		more := len(q.ready) > 0
		q.mu.Unlock()
		if !more && (q.ctl == nil || q.ctl.queued.Load() == 0) {
			return
		}
	}
}

// close makes the sender write what is queued, then stop and call after
// (which may be nil). It returns at once; done is closed when the sender
// has finished.
func (q *sendQueue) close(after func()) {
	q.mu.Lock()
	if !q.closing {
		q.closing = true
		q.after = after
	}
	q.mu.Unlock()
	notify(q.wake)
}

// run is the queue's goroutine.
func (q *sendQueue) run() {
	defer close(q.done)
	for range q.wake {
		q.drain()
		q.mu.Lock()
		closing := q.closing
		q.mu.Unlock()
		if !closing {
			continue
		}
		// Nothing new is added once closing. Wait for a drainer still at
		// work (it may have taken the token from us just now), then write
		// whatever is left.
		q.busy.Lock()
		for q.serve() {
		}
		q.busy.Unlock()
		if q.after != nil {
			q.after()
		}
		return
	}
}

// serve writes the filter's control replies, then gives each ready session
// one turn, writing whenever the batch fills; sessions with datagrams left
// go back on the ready list. It reports whether there was anything to
// write. Caller holds busy.
func (q *sendQueue) serve() bool {
	did := q.serveCtl()
	q.mu.Lock()
	q.turn, q.ready = q.ready, q.turn[:0]
	q.mu.Unlock()
	if len(q.turn) == 0 {
		return did
	}
	for i, s := range q.turn {
		q.turn[i] = nil
		start := len(q.batch)
		more := s.takeTx(q, sendTurn)
		if len(q.batch) > start {
			q.owners = append(q.owners, txOwner{s, start, len(q.batch)})
		}
		if more {
			q.mu.Lock()
			q.ready = append(q.ready, s)
			q.mu.Unlock()
		}
		if len(q.batch) >= sendBatch {
			q.flush()
		}
	}
	q.turn = q.turn[:0]
	q.flush()
	return true
}

// serveCtl writes the control replies the filter has queued, already
// sealed, and reports whether there were any. Caller holds busy.
func (q *sendQueue) serveCtl() bool {
	if q.ctl == nil || q.ctl.queued.Load() == 0 {
		return false
	}
	out := q.ctl.take(q.ctlOut[:0])
	if len(out) == 0 {
		return false
	}
	sent := 0
	if !q.dead {
		q.w.followSocket()
		for i := 0; i < len(out); {
			n, err := q.w.sendRaw(out[i:])
			i += n
			sent += n
			if err == nil {
				break
			}
			if fatalWriteError(err) {
				break // the sessions' next write finds the socket gone
			}
			q.sendErrs.Add(1) // a transient error costs this reply only
			i++
		}
	}
	clear(out)
	q.ctl.release(len(out), sent)
	return true
}

// flush writes the batch, then counts and frees it.
func (q *sendQueue) flush() {
	if len(q.batch) == 0 {
		return
	}
	q.failed = q.failed[:len(q.batch)]
	clear(q.failed)
	if q.dead {
		for j := range q.failed {
			q.failed[j] = true
		}
	}
	for i := 0; i < len(q.batch) && !q.dead; {
		n, err := q.w.send(q.batch[i:])
		i += n
		if err == nil {
			break
		}
		if fatalWriteError(err) {
			q.dead = true
			for _, o := range q.owners {
				o.s.sendFailed(err)
			}
			for j := i; j < len(q.batch); j++ {
				q.failed[j] = true
			}
			break
		}
		q.failed[i] = true // a transient error costs this datagram only
		q.sendErrs.Add(1)
		i++
	}
	for _, o := range q.owners {
		var pkts, bytes uint64
		for j := o.start; j < o.end; j++ {
			if !q.failed[j] {
				pkts++
				bytes += uint64(len(q.batch[j].b))
			}
		}
		o.s.txPkts.Add(pkts)
		o.s.txBytes.Add(bytes)
	}
	for i, p := range q.bufs {
		if p != nil {
			putBuffer(p)
		}
		q.bufs[i] = nil
	}
	clear(q.batch)
	clear(q.owners)
	q.batch, q.bufs, q.owners = q.batch[:0], q.bufs[:0], q.owners[:0]
}

// fatalWriteError reports a send error that means the socket is gone.
func fatalWriteError(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EBADF)
}
