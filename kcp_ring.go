package kcp

// The core's segment queues: a FIFO ring for the send queue, the send
// buffer and the receive queue, and window-indexed slots for segments that
// arrived out of order.

// segment is one KCP segment held by the core. Wire fields that the core
// rewrites at every transmission (conv, cmd, wnd, una) are not stored.
type segment struct {
	sn       uint32
	ts       uint32 // time of the last transmission (send side) or the peer's ts (receive side)
	resendts uint32 // when the next retransmission is due
	rto      uint32 // this segment's current retransmission timeout
	xmit     uint32 // transmissions so far
	fastack  uint32 // ACKs seen for later segments, or fastackDone
	frg      uint8
	acked    bool // acknowledged out of order; dropped once una passes it
	// Delivery-rate sampling (kcp_cc.go), recorded at each transmission:
	// the sampler's delivered count, how long before it last grew and
	// the flight this transmission belongs to started (µs ages, saturated
	// at 2^32-1: a stalled flight can be older than a uint32 of µs spans),
	// and when it left (the 64-bit µs clock, in the padding a uint32
	// would leave: the segment stays 72 bytes).
	appLimited   bool // sent while the sender had too little to send
	delivered    uint32
	deliveredAge uint32
	firstSentAge uint32
	sentUs       uint64
	data         []byte // payload; capacity is at least mss, from the free list
}

// segRing is a growable FIFO of segments in a power-of-two ring.
type segRing struct {
	buf  []segment
	head int
	n    int
}

func (r *segRing) len() int { return r.n }

// at returns the i-th segment from the front; 0 <= i < r.n.
func (r *segRing) at(i int) *segment { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *segRing) back() *segment { return r.at(r.n - 1) }

func (r *segRing) push(s segment) {
	if r.n == len(r.buf) {
		r.grow(r.n + 1)
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = s
	r.n++
}

// grow makes room for at least want segments, keeping their order.
func (r *segRing) grow(want int) {
	size := max(len(r.buf), minRing)
	for size < want {
		size *= 2
	}
	if size == len(r.buf) {
		return
	}
	var nb []segment
	if size == minRing {
		nb = ringPool.Get().(*[minRing]segment)[:] // a ring trimmed away grows again
	} else {
		nb = make([]segment, size)
	}
	for i := 0; i < r.n; i++ {
		nb[i] = *r.at(i)
	}
	r.buf, r.head = nb, 0
}

func (r *segRing) pop() segment {
	p := &r.buf[r.head]
	s := *p
	*p = segment{}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return s
}

// spans returns the queue contents as at most two contiguous slices.
func (r *segRing) spans() (a, b []segment) {
	if r.n == 0 {
		return nil, nil
	}
	end := r.head + r.n
	if end <= len(r.buf) {
		return r.buf[r.head:end], nil
	}
	return r.buf[r.head:], r.buf[:end-len(r.buf)]
}

// recvSlots holds out-of-order segments, indexed by sn - rcvNxt. Its size is
// zero or a power of two; parseData grows it on demand to cover the offset
// of each segment it stores (never beyond the window rounded up), and trim
// lets it go while empty. base is the slot of rcvNxt.
type recvSlots struct {
	seg   []segment
	have  []bool
	base  int
	count int
}

func (s *recvSlots) slot(off uint32) int { return (s.base + int(off)) & (len(s.seg) - 1) }

// resize makes room for a window of wnd segments; slots are kept in order.
func (s *recvSlots) resize(wnd int) {
	size := max(len(s.seg), 8)
	for size < wnd {
		size *= 2
	}
	if size == len(s.seg) {
		return
	}
	seg, have := make([]segment, size), make([]bool, size)
	for i := range s.seg {
		j := (s.base + i) & (len(s.seg) - 1)
		seg[i], have[i] = s.seg[j], s.have[j]
	}
	s.seg, s.have, s.base = seg, have, 0
}

// clear empties the ring and lets go of its segments' payloads; the ring
// stays usable.
func (r *segRing) clear() {
	clear(r.buf)
	r.head, r.n = 0, 0
}

// clear empties every slot and lets go of the payloads; the slots stay
// usable.
func (s *recvSlots) clear() {
	clear(s.seg)
	clear(s.have)
	s.base, s.count = 0, 0
}
