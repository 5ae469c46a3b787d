package kcp

// RingBuffer is the generic FIFO that kcp-go exports (since v5.6.72); kcpx's
// own core keeps its segments in segRing (kcp_ring.go) and does not use it.
// It is here so that code written against kcp-go's API compiles unchanged,
// with the same growth rule and the same capacity accounting.

const (
	// RINGBUFFER_MIN is the smallest backing slice a RingBuffer uses, in
	// elements (so the smallest ring holds RINGBUFFER_MIN-1).
	RINGBUFFER_MIN = 8
	// RINGBUFFER_EXP is the backing-slice length at which growth switches
	// from doubling to adding 10 % (rounded up).
	RINGBUFFER_EXP = 1024
)

// RingBuffer is a first-in first-out queue of T in a circular backing slice
// that grows when full. One slot of the backing slice always stays empty, so
// that a full ring and an empty one differ: a ring over n slots holds n-1
// elements before it grows. Push, Pop and Peek take amortised constant time.
//
// The zero value is an empty ring ready for use. A RingBuffer is not safe
// for concurrent use.
type RingBuffer[T any] struct {
	slots []T
	head  int // index of the oldest element
	tail  int // index where the next Push goes
}

// NewRingBuffer returns an empty ring over a backing slice of size slots
// (at least RINGBUFFER_MIN), so it holds size-1 elements before growing.
func NewRingBuffer[T any](size int) *RingBuffer[T] {
	return &RingBuffer[T]{slots: make([]T, max(size, RINGBUFFER_MIN))}
}

// wrap maps an index that may have run one lap past the end back into the
// backing slice.
func (r *RingBuffer[T]) wrap(i int) int {
	if i >= len(r.slots) {
		i -= len(r.slots)
	}
	return i
}

// Len returns the number of elements held.
func (r *RingBuffer[T]) Len() int {
	if r.tail >= r.head {
		return r.tail - r.head
	}
	return r.tail + len(r.slots) - r.head
}

// MaxLen returns how many elements the ring holds before the next Push
// grows it: the backing slice's length minus the slot kept empty.
func (r *RingBuffer[T]) MaxLen() int { return max(len(r.slots)-1, 0) }

// IsEmpty reports whether the ring holds no element.
func (r *RingBuffer[T]) IsEmpty() bool { return r.head == r.tail }

// IsFull reports whether the ring holds MaxLen elements, so that the next
// Push grows the backing slice.
func (r *RingBuffer[T]) IsFull() bool {
	return len(r.slots) == 0 || r.wrap(r.tail+1) == r.head
}

// Push appends v at the tail, growing the backing slice when the ring is
// full (see grow).
func (r *RingBuffer[T]) Push(v T) {
	if r.IsFull() {
		r.grow()
	}
	r.slots[r.tail] = v
	r.tail = r.wrap(r.tail + 1)
}

// Pop removes and returns the element at the head; ok is false, with the
// zero T, when the ring is empty. The vacated slot is zeroed so the ring
// keeps no reference to it.
func (r *RingBuffer[T]) Pop() (v T, ok bool) {
	if r.IsEmpty() {
		return v, false
	}
	var zero T
	v, r.slots[r.head] = r.slots[r.head], zero
	r.head = r.wrap(r.head + 1)
	return v, true
}

// Peek returns a pointer to the element at the head without removing it;
// ok is false, with a nil pointer, when the ring is empty. The pointer is
// valid until the next Push, Pop, Discard or Clear.
func (r *RingBuffer[T]) Peek() (p *T, ok bool) {
	if r.IsEmpty() {
		return nil, false
	}
	return &r.slots[r.head], true
}

// At returns a pointer to the i-th element from the head, for 0 <= i <
// Len(); an i outside that range returns a stale slot or panics. It lets a
// caller iterate without a closure. The pointer is valid until the next
// Push, Pop, Discard or Clear.
func (r *RingBuffer[T]) At(i int) *T {
	return &r.slots[r.wrap(r.head+i)]
}

// Discard removes up to n elements from the head, zeroing their slots, and
// returns how many it removed: min(n, Len()), or 0 for n <= 0.
func (r *RingBuffer[T]) Discard(n int) int {
	if n <= 0 {
		return 0
	}
	n = min(n, r.Len())
	if n == r.Len() {
		r.Clear()
		return n
	}
	if end := r.head + n; end <= len(r.slots) {
		clear(r.slots[r.head:end])
	} else {
		clear(r.slots[r.head:])
		clear(r.slots[:end-len(r.slots)])
	}
	r.head = r.wrap(r.head + n)
	return n
}

// ForEach calls fn with a pointer to each element from head to tail,
// stopping early when fn returns false. fn must not Push, Pop or Discard.
func (r *RingBuffer[T]) ForEach(fn func(*T) bool) {
	for i, n := 0, r.Len(); i < n; i++ {
		if !fn(r.At(i)) {
			return
		}
	}
}

// ForEachReverse is ForEach from tail to head.
func (r *RingBuffer[T]) ForEachReverse(fn func(*T) bool) {
	for i := r.Len() - 1; i >= 0; i-- {
		if !fn(r.At(i)) {
			return
		}
	}
}

// Clear removes every element, zeroing the slots they used, and keeps the
// backing slice.
func (r *RingBuffer[T]) Clear() {
	if r.tail >= r.head {
		clear(r.slots[r.head:r.tail])
	} else {
		clear(r.slots[r.head:])
		clear(r.slots[:r.tail])
	}
	r.head, r.tail = 0, 0
}

// grow enlarges a full ring's backing slice, keeping the order of the
// elements: to RINGBUFFER_MIN slots when smaller, doubled below
// RINGBUFFER_EXP, and by 10 % (rounded up) from there on.
func (r *RingBuffer[T]) grow() {
	size := len(r.slots)
	switch {
	case size < RINGBUFFER_MIN:
		size = RINGBUFFER_MIN
	case size < RINGBUFFER_EXP:
		size *= 2
	default:
		size += (size + 9) / 10
	}
	slots := make([]T, size)
	n := r.Len()
	if r.tail >= r.head {
		copy(slots, r.slots[r.head:r.tail])
	} else {
		m := copy(slots, r.slots[r.head:])
		copy(slots[m:], r.slots[:r.tail])
	}
	r.slots, r.head, r.tail = slots, 0, n
}
