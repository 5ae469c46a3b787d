package kcp

import (
	"sync"
	"sync/atomic"
)

// mtuLimit is the largest datagram kcpx receives, in bytes. Every pooled
// buffer has exactly this length, so any datagram fits in one. kcp-go v5.6
// peers may send up to 1500 bytes.
const mtuLimit = 1500

// maxDatagram is the largest datagram kcpx sends (SetMtu clamps to it): what
// kcp-go v5.7 peers can receive, and the IPv4 payload of a 1500-byte
// Ethernet frame. It is also the length of the simple XOR pad.
const maxDatagram = 1472

// bufferPool is the one process-wide pool of datagram buffers. It is a global
// (like kcp-go's) because buffers cross owners: a session's output fills one, the
// transmit path sends and returns it, a listener reads into one and a session
// consumes it; one shared pool lets a buffer freed by any of them serve any other
// without per-session idle memory. sync.Pool keeps a per-P cache, so Get and Put
// take no lock shared by all sessions in the steady state.
//
// The pool holds *[]byte, not []byte: storing a pointer in an interface does not
// allocate, storing a slice header would (one allocation per Put).
//
// Ownership rule: whoever calls getBuffer owns the buffer until it hands it on;
// handing it on (to a queue, to the transmit path, to another goroutine)
// transfers ownership, and the previous owner must not touch it again. The last
// owner, the one that is done with the bytes (typically after the datagram was
// written to the socket, or after a received datagram was fully consumed), calls
// putBuffer exactly once. Nobody may keep a slice of a buffer after returning it:
// data copied out of a buffer (for example into a KCP segment) must be a copy.
var bufferPool = sync.Pool{
	New: func() any {
		b := make([]byte, mtuLimit)
		return &b
	},
}

// bufferTracking counts buffers handed out and not yet returned. It costs one
// uncontended atomic load per call while off (the default) and is meant for tests
// only: a test turns it on with trackBuffers, then checks buffersOutstanding to
// prove that a path returns every buffer it takes. Tests that use it must not run
// in parallel with other tests that use the pool.
var bufferTracking struct {
	on          atomic.Bool
	outstanding atomic.Int64
}

// getBuffer returns a buffer of length mtuLimit from the pool. The caller owns it
// (see the ownership rule on bufferPool). Its contents are whatever the previous
// owner left. It allocates only when the pool is empty (at start-up and after GC
// cycles emptied the per-P caches).
func getBuffer() *[]byte {
	p := bufferPool.Get().(*[]byte)
	if bufferTracking.on.Load() {
		bufferTracking.outstanding.Add(1)
	}
	return p
}

// putBuffer gives a buffer obtained from getBuffer back to the pool; the caller
// must not use it afterwards and must return it only once. The slice length is
// restored to mtuLimit, so the owner may reslice *p freely before returning it.
// A nil pointer is ignored. A buffer whose capacity is below mtuLimit (its start
// was resliced away, or it never came from the pool) is dropped, not pooled.
func putBuffer(p *[]byte) {
	if p == nil {
		return
	}
	if bufferTracking.on.Load() {
		bufferTracking.outstanding.Add(-1)
	}
	if cap(*p) < mtuLimit {
		return
	}
	*p = (*p)[:mtuLimit]
	bufferPool.Put(p)
}

// trackBuffers turns buffer accounting on or off (tests only) and resets the
// outstanding count.
func trackBuffers(on bool) {
	bufferTracking.on.Store(on)
	bufferTracking.outstanding.Store(0)
}

// buffersOutstanding reports how many buffers were taken with getBuffer and not
// yet returned with putBuffer since accounting was turned on.
func buffersOutstanding() int64 {
	return bufferTracking.outstanding.Load()
}
