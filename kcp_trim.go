package kcp

import "sync"

// Trimming: what an idle conversation gives back.
//
// A conversation with nothing queued, in flight or out of order needs none
// of its working memory: the payload free lists, the segment rings, the
// reorder slots, the datagram buffer flush assembles in. trim hands the
// buffers to process-wide pools and lets the rest go, so a hundred thousand
// idle sessions hold only their fixed state. Everything comes back on
// demand, from the same pools: a conversation that wakes to exchange a few
// segments allocates nothing once the pools are warm (the reorder slots are
// the exception: they are made again only when a segment arrives out of
// order).
//
// The pools are shared by every conversation of the process, like the
// datagram pool (bufferpool.go); sync.Pool keeps a cache per P, and the GC
// empties them when nobody takes from them.

// flushBufSize is the capacity of the pooled flush buffers: any mtu a
// session sets fits (SetMtu clamps sessions to maxDatagram); a bare KCP with
// a larger mtu gets an unpooled buffer.
const flushBufSize = mtuLimit

// flushPool holds flush buffers, as pointers to arrays so that Put stores
// a pointer and allocates nothing.
var flushPool = sync.Pool{New: func() any { return new([flushBufSize]byte) }}

// ringPool holds segment arrays of the smallest ring size (segRing.grow).
var ringPool = sync.Pool{New: func() any { return new([minRing]segment) }}

// minRing is the size a segment ring starts at.
const minRing = 8

// payloadPool and smallPool hold payload buffers given back by trimmed
// conversations: mss-sized ones (any mss: a taker checks the capacity) and
// smallBuf ones.
var payloadPool, smallPool slicePool

// slicePool is a pool of byte slices. A slice stored in an interface costs
// an allocation, so slices travel in *[]byte boxes, and the emptied boxes
// wait in a pool of their own for the next Put: in the steady state neither
// Get nor Put allocates.
type slicePool struct {
	full, empty sync.Pool
}

// get returns a pooled slice, or nil when the pool is empty.
func (p *slicePool) get() []byte {
	bp, _ := p.full.Get().(*[]byte)
	if bp == nil {
		return nil
	}
	b := *bp
	*bp = nil
	p.empty.Put(bp)
	return b
}

// put stores b (its contents are not kept).
func (p *slicePool) put(b []byte) {
	bp, _ := p.empty.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = b[:0]
	p.full.Put(bp)
}

// newPayload returns an empty payload buffer with room for need bytes, from
// the shared pool when it has one large enough.
func newPayload(need int) []byte {
	if b := payloadPool.get(); cap(b) >= need {
		return b[:0]
	}
	return make([]byte, 0, need)
}

// newSmallPayload returns an empty buffer of capacity smallBuf.
func newSmallPayload() []byte {
	if b := smallPool.get(); cap(b) == smallBuf {
		return b[:0]
	}
	return make([]byte, 0, smallBuf)
}

// takeFlushBuf gives the conversation a datagram buffer of mtu bytes.
func (kcp *KCP) takeFlushBuf() {
	if kcp.sink != nil {
		kcp.buffer = kcp.sink.lendFlushBuf()
		return
	}
	if kcp.mtu > flushBufSize {
		kcp.buffer = make([]byte, kcp.mtu)
		return
	}
	kcp.buffer = flushPool.Get().(*[flushBufSize]byte)[:kcp.mtu]
}

// giveFlushBuf lets go of the datagram buffer, to the pool when it came
// from there; the next flush takes one again.
func (kcp *KCP) giveFlushBuf() {
	if kcp.sink != nil {
		if kcp.buffer != nil {
			kcp.sink.unlend()
		}
		kcp.buffer = nil
		return
	}
	if cap(kcp.buffer) == flushBufSize {
		flushPool.Put((*[flushBufSize]byte)(kcp.buffer[:flushBufSize]))
	}
	kcp.buffer = nil
}

// trim gives back the working memory of a quiet conversation: the payload
// free lists (to the shared pools), the flush buffer, and every empty
// segment ring and reorder slot array. What is still in use stays: a ring
// holding segments, slots holding an out-of-order segment. The conversation
// stays fully usable; it takes what it needs again when it needs it.
func (kcp *KCP) trim() {
	for i, b := range kcp.free {
		payloadPool.put(b)
		kcp.free[i] = nil
	}
	kcp.free = kcp.free[:0]
	for i, b := range kcp.freeSmall {
		smallPool.put(b)
		kcp.freeSmall[i] = nil
	}
	kcp.freeSmall = kcp.freeSmall[:0]
	// The free lists' own arrays are kept while small: a waking
	// conversation refills them without allocating.
	if cap(kcp.free) > minRing {
		kcp.free = nil
	}
	if cap(kcp.freeSmall) > minRing {
		kcp.freeSmall = nil
	}
	if len(kcp.acklist) == 0 && cap(kcp.acklist) > 4*minRing {
		kcp.acklist = nil
	}
	kcp.giveFlushBuf()
	kcp.sndQueue.release()
	kcp.sndBuf.release()
	kcp.rcvQueue.release()
	if kcp.rcvBuf.count == 0 {
		kcp.rcvBuf = recvSlots{}
	}
}

// release lets go of an empty ring's array (to ringPool when it has the
// smallest size); the ring grows again from nothing on the next push.
func (r *segRing) release() {
	if r.n != 0 || r.buf == nil {
		return
	}
	if len(r.buf) == minRing {
		clear(r.buf)
		ringPool.Put((*[minRing]segment)(r.buf))
	}
	r.buf, r.head = nil, 0
}
