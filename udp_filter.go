package kcp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Datagram filters: a PacketConn layer that transforms every datagram of a
// UDP socket (secure mode: secureClientConn, secureServerConn) without
// taking the socket away from the engine's batch I/O.
//
// A conn that implements datagramFilter is read and written by the engine
// through its socket, with recvmmsg/GRO and sendmmsg/GSO as for a plain
// *net.UDPConn; the reader passes each datagram through filterIn before the
// handler sees it (the filter opens it, or consumes it: handshakes, control
// packets, keepalives), and the writer seals each batch through filterOut
// into buffers of its own before the batch goes out. The filter's own
// ReadFrom and WriteTo are the same two functions around one plain call.
//
// A filter never writes from the reader goroutine: the replies it makes
// (handshake responses, cookie replies, path challenges, keepalive answers)
// go into its ctlQueue, which the socket's sender writes (below).

// datagramFilter is implemented by PacketConns that protect the datagrams of
// an underlying UDP socket. filterIn is called by the socket's reader
// goroutine only; filterOut by its sender (one drain token holder at a
// time); both are called without any session lock held.
type datagramFilter interface {
	net.PacketConn

	// filterSocket returns the socket the filter uses now. It changes only
	// when the filter moves to a new socket (a test's rebinding); the
	// reader and writer follow it.
	filterSocket() *net.UDPConn

	// filterIn takes a datagram read from src at now (read once per read
	// call, after it returned). pkt belongs to the reader and may be
	// overwritten. It returns the datagram to deliver and its source as the
	// sessions know it, or ok false when there is none.
	filterIn(pkt []byte, src netip.AddrPort, now time.Time) (data []byte, from netip.AddrPort, ok bool)

	// filterOut seals p, a datagram for the peer the sessions know as to,
	// into buf (cap(buf) >= len(p)+filterOverhead) and returns the packet
	// and the address it goes to; now is read once per batch. ok false
	// with a nil error drops p silently (a peer the filter forgot); an
	// error drops it and is reported as a send error of that datagram.
	filterOut(buf, p []byte, to netip.AddrPort, now time.Time) (pkt []byte, dst netip.AddrPort, ok bool, err error)

	// filterErr returns the error to report when reading the socket failed
	// with err: the filter's own failure (the peer closed, the handshake
	// was never confirmed) when it has one, else err.
	filterErr(err error) error

	// filterCtl returns the filter's control replies, which the socket's
	// sendQueue writes.
	filterCtl() *ctlQueue
}

const (
	// filterOverhead is the most bytes a filter adds to a datagram.
	filterOverhead = SecureOverhead
	// filterBufLen is the size of the writer's sealed-datagram slots and
	// of the reader's slots for a filter's socket.
	filterBufLen = maxDatagram + filterOverhead
	// filterChunk is the most datagrams a writer seals before it writes
	// them: 128 slots of filterBufLen, about 190 KiB per filtered socket.
	filterChunk = 128
)

// filterState is a packetWriter's sealing area for a filter conn. It
// belongs to the writer's caller (the socket's drain token holder).
type filterState struct {
	f    datagramFilter
	slab []byte      // filterChunk slots of filterBufLen
	out  []outPacket // sealed datagrams of the current chunk
	idx  []int       // out[i] is pkts[idx[i]]
}

// sendFiltered seals pkts through the filter, in chunks, and writes them. It
// returns as send does: the number of datagrams of pkts dealt with and the
// error of the one that failed. A datagram the filter drops counts as sent.
func (w *packetWriter) sendFiltered(pkts []outPacket) (int, error) {
	fs := w.filter
	if fs.slab == nil {
		fs.slab = make([]byte, filterChunk*filterBufLen)
		fs.out = make([]outPacket, 0, filterChunk)
		fs.idx = make([]int, 0, filterChunk)
	}
	done := 0
	for done < len(pkts) {
		w.followSocket()
		fs.out, fs.idx = fs.out[:0], fs.idx[:0]
		end := done
		now := time.Now()
		var sealErr error
		for ; end < len(pkts) && len(fs.out) < filterChunk; end++ {
			slot := len(fs.out) * filterBufLen
			buf := fs.slab[slot : slot : slot+filterBufLen]
			p := &pkts[end]
			if len(p.b)+filterOverhead > filterBufLen {
				sealErr = errSecureTooLarge
				break
			}
			pkt, dst, ok, err := fs.f.filterOut(buf, p.b, p.to, now)
			if err != nil {
				sealErr = err
				break
			}
			if ok {
				fs.out = append(fs.out, outPacket{b: pkt, to: dst})
				fs.idx = append(fs.idx, end)
			}
		}
		n, err := w.sendRaw(fs.out)
		if err != nil && fatalWriteError(err) && w.followSocket() {
			// The filter moved to a new socket while we wrote to the old
			// one: the rest goes to the new one.
			var m int
			m, err = w.sendRaw(fs.out[n:])
			n += m
		}
		clear(fs.out) // do not keep the sealed bytes' addresses reachable
		if err != nil {
			return fs.idx[n], err
		}
		done = end
		if sealErr != nil {
			return done, sealErr
		}
	}
	return done, nil
}

// followSocket moves the writer to the filter's current socket when it
// changed and reports whether it did.
func (w *packetWriter) followSocket() bool {
	u := w.filter.f.filterSocket()
	if u == w.udp {
		return false
	}
	w.mu.Lock()
	w.udp = u
	w.connected = false
	gso := w.batch != nil && w.batch.gso()
	if w.batch != nil {
		w.batch = newBatchWriter(u, false, &w.offload)
		if w.batch != nil && !gso {
			w.batch.disableGSO()
		}
	}
	w.batchOn.Store(w.batch != nil)
	w.gsoOn.Store(w.batch != nil && w.batch.gso())
	w.mu.Unlock()
	return true
}

// followSocket moves the reader to the filter's current socket when it
// changed and reports whether it did.
func (r *packetReader) followSocket() bool {
	u := r.filter.filterSocket()
	if u == r.udp {
		return false
	}
	r.udp = u
	if r.batch != nil {
		gro := r.batch.groOn()
		r.batch = newBatchReader(u, &r.offload, false)
		if r.batch != nil {
			if !gro {
				r.batch.disableGRO()
			}
			r.batch.widen(filterBufLen)
		}
		r.groOn.Store(r.batch != nil && r.batch.groOn())
		r.batchOn.Store(r.batch != nil)
	}
	return true
}

// filterHandler wraps handle so that every datagram passes through the
// reader's filter first. The clock is read at the first datagram of each
// read call (read clears r.filterNowOK before the call): one time.Now for
// a batch of up to 64 datagrams.
func (r *packetReader) filterHandler(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) func(data []byte, ap netip.AddrPort, addr net.Addr) {
	f := r.filter
	return func(pkt []byte, src netip.AddrPort, _ net.Addr) {
		if !r.filterNowOK {
			r.filterNow, r.filterNowOK = time.Now(), true
		}
		if data, from, ok := f.filterIn(pkt, src, r.filterNow); ok {
			handle(data, from, nil)
		}
	}
}

// Control replies. A filter answers some datagrams itself: handshake
// responses, cookie replies, keepalive answers, path challenges and their
// responses, the client's key confirmation. It never writes them from the
// reader goroutine: it formats (and seals) each into a slot of its
// ctlQueue, and the socket's sendQueue writes them, ahead of the sessions'
// datagrams, whoever holds its drain token. The queue is a fixed ring of
// preallocated slots: a flood of packets that draw replies costs no memory
// beyond it, and a reply that finds the ring full is dropped and counted
// (a handshake or a challenge is retried by its sender; a keepalive
// answer is not needed twice).
const (
	// ctlSlotsListener and ctlSlotsClient are the number of control replies
	// a listener's filter and a client's hold for their sender: a listener
	// answers many sources, in bursts as large as a receive batch; a client
	// answers its one server.
	ctlSlotsListener = 256
	ctlSlotsClient   = 16
	// ctlSlotLen is the largest control reply: handshake responses,
	// finishes, cookie replies (66 bytes) and sealed path frames (43) are
	// all well under it (TestCtlQueue checks).
	ctlSlotLen = 256
)

// ctlQueue is a filter's ring of control replies waiting for the socket's
// sender. Producers (the reader goroutine, a filter's timer) fill a slot
// between begin and commit, holding mu; the sender takes the filled slots
// with take, writes them without mu, and frees them with release. Lock
// order: ctlQueue.mu before a peer's path lock and a key's send lock.
type ctlQueue struct {
	mu    sync.Mutex
	slab  []byte // len(n) slots of ctlSlotLen
	n     []int  // bytes in each slot
	to    []netip.AddrPort
	head  int           // first filled slot
	count int           // filled slots, head onwards (the sender's taken ones included)
	wake  chan struct{} // the sender's signal; nil until a sendQueue attaches

	queued atomic.Int32  // mirrors count, for the sender's idle check
	drops  atomic.Uint64 // replies dropped because the ring was full
	sent   atomic.Uint64 // replies handed to the socket
}

func newCtlQueue(slots int) *ctlQueue {
	return &ctlQueue{
		slab: make([]byte, slots*ctlSlotLen),
		n:    make([]int, slots),
		to:   make([]netip.AddrPort, slots),
	}
}

// slots returns the capacity of the ring.
func (c *ctlQueue) slots() int { return len(c.n) }

// begin returns the next free slot, empty with capacity ctlSlotLen, with
// mu held; the caller fills it and calls commit or abort. On a full ring it
// counts the drop and returns nil without mu held.
func (c *ctlQueue) begin() []byte {
	c.mu.Lock()
	if c.count == len(c.n) {
		c.mu.Unlock()
		c.drops.Add(1)
		return nil
	}
	i := (c.head + c.count) % len(c.n)
	return c.slab[i*ctlSlotLen : i*ctlSlotLen : (i+1)*ctlSlotLen]
}

// commit queues the n bytes written in the slot begin returned, for to, and
// signals the sender.
func (c *ctlQueue) commit(n int, to netip.AddrPort) {
	i := (c.head + c.count) % len(c.n)
	c.n[i], c.to[i] = n, to
	c.count++
	c.queued.Store(int32(c.count))
	wake := c.wake
	c.mu.Unlock()
	if wake != nil {
		notify(wake)
	}
}

// abort releases the slot begin returned, unused.
func (c *ctlQueue) abort() { c.mu.Unlock() }

// put queues a copy of pkt for to; it reports false when the ring was full
// (or pkt does not fit a slot).
func (c *ctlQueue) put(pkt []byte, to netip.AddrPort) bool {
	if len(pkt) > ctlSlotLen {
		c.drops.Add(1)
		return false
	}
	buf := c.begin()
	if buf == nil {
		return false
	}
	c.commit(len(append(buf, pkt...)), to)
	return true
}

// attach makes the sender whose signal is wake write the queue, and
// signals it when replies are already waiting.
func (c *ctlQueue) attach(wake chan struct{}) {
	c.mu.Lock()
	c.wake = wake
	waiting := c.count > 0
	c.mu.Unlock()
	if waiting {
		notify(wake)
	}
}

// take appends the filled slots to out and returns it; they stay reserved
// until release. One taker at a time (the drain token holder).
func (c *ctlQueue) take(out []outPacket) []outPacket {
	c.mu.Lock()
	for k := 0; k < c.count; k++ {
		i := (c.head + k) % len(c.n)
		out = append(out, outPacket{b: c.slab[i*ctlSlotLen : i*ctlSlotLen+c.n[i]], to: c.to[i]})
	}
	c.mu.Unlock()
	return out
}

// release frees the first k slots, written (sent of them) or dropped.
func (c *ctlQueue) release(k, sent int) {
	c.mu.Lock()
	c.head = (c.head + k) % len(c.n)
	c.count -= k
	c.queued.Store(int32(c.count))
	c.mu.Unlock()
	c.sent.Add(uint64(sent))
}

// flushPlain writes the queued replies to sock, one call each. The filters'
// own ReadFrom, used outside the engine (no sender attached), calls it.
func (c *ctlQueue) flushPlain(sock *net.UDPConn) {
	c.mu.Lock()
	attached := c.wake != nil
	c.mu.Unlock()
	if attached {
		return
	}
	out := c.take(nil)
	sent := 0
	for _, o := range out {
		if _, err := sock.WriteToUDPAddrPort(o.b, o.to); err == nil {
			sent++
		}
	}
	clear(out)
	c.release(len(out), sent)
}
