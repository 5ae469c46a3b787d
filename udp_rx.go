package kcp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"time"
)

// packetReader reads datagrams from one conn. read is called by one
// goroutine at a time (the conn's read loop), which only receives: it hands
// each datagram to a handler that opens and demultiplexes it, and never
// writes. The counters may be read from any goroutine.
type packetReader struct {
	conn  net.PacketConn
	udp   *net.UDPConn // conn as a *net.UDPConn; nil for custom conns
	batch *batchReader // nil when batching is unavailable or was refused
	// filter is conn as a datagramFilter (udp_filter.go): its socket is
	// read as udp, and every datagram goes through it; nil otherwise.
	filter      datagramFilter
	filterNow   time.Time         // the read goroutine's clock for the filter, read once per read call
	filterNowOK bool              // filterNow was read during the current read call
	runnable    [1]metrics.Sample // the runtime's count of goroutines waiting to run, for fewRunnable
	yieldMax    uint64            // fewRunnable's bound: 2 per core when the reader was made
	buf         []byte            // plain path: one byte more than the largest datagram, so oversize shows as n == len(buf)

	nfallback atomic.Uint64 // batch calls refused, then served by the plain path
	ndropped  atomic.Uint64 // datagrams dropped (oversize, bad source) and transient errors skipped
	ndatagram atomic.Uint64 // plain path: datagrams delivered (the batch path counts in offload)
	ncalls    atomic.Uint64 // plain path: reads that returned a datagram
	offload   offloadStats
	kdrops    atomic.Uint64 // the socket's kernel drop count, as last read (kernelDrops)
	groOn     atomic.Bool   // mirrors batch.groOn() for readers on other goroutines
	batchOn   atomic.Bool   // mirrors batch != nil

	// refusedFatal makes ECONNREFUSED end read instead of being skipped: a
	// dialled session's connected socket whose peer has not answered yet
	// (its first datagram drew an ICMP port unreachable). The read
	// goroutine clears it once a datagram from the peer opens.
	refusedFatal bool
	// lingering makes ECONNREFUSED end read too: the session was closed
	// and waits for its peer, whose socket the refusal says is gone.
	lingering atomic.Bool
}

// newPacketReader returns a reader for conn. On Linux a *net.UDPConn is read
// with recvmmsg, with UDP_GRO turned on for the socket when the kernel allows
// it; so is the socket of a datagramFilter conn, whose datagrams then pass
// through the filter; any other conn one datagram per ReadFrom.
func newPacketReader(conn net.PacketConn) *packetReader { return newReader(conn, false) }

// newDialReader is newPacketReader for a dialled session's socket: its batch
// reader starts with a few one-datagram buffers and GRO off, and grows to
// the full layout (with GRO) once traffic fills them, since a client may
// only ever see a datagram at a time (udp_rx_linux.go, smallSlots).
func newDialReader(conn net.PacketConn) *packetReader { return newReader(conn, true) }

func newReader(conn net.PacketConn, small bool) *packetReader {
	r := &packetReader{conn: conn, buf: make([]byte, mtuLimit+1), yieldMax: 2 * uint64(runtime.GOMAXPROCS(0))}
	r.runnable[0].Name = "/sched/goroutines/runnable:goroutines"
	if f, ok := conn.(datagramFilter); ok {
		u := f.filterSocket()
		r.filter, r.udp = f, u
		r.buf = make([]byte, filterBufLen+1)
		r.batch = newBatchReader(u, &r.offload, small)
		if r.batch != nil {
			r.batch.widen(filterBufLen)
		}
		r.groOn.Store(r.batch != nil && r.batch.groOn())
		r.batchOn.Store(r.batch != nil)
	} else if u, ok := conn.(*net.UDPConn); ok {
		r.udp = u
		r.batch = newBatchReader(u, &r.offload, small)
		r.groOn.Store(r.batch != nil && r.batch.groOn())
		r.batchOn.Store(r.batch != nil)
	}
	return r
}

// forceMode steps the reader down to mode m (it never steps up) and returns
// the mode in effect. For tests and benchmarks; call it before the first
// read.
func (r *packetReader) forceMode(m ioMode) ioMode {
	if r.batch != nil && m < ioOffload {
		r.batch.disableGRO()
		r.groOn.Store(false)
	}
	if m < ioBatch {
		r.batch = nil
		r.batchOn.Store(false)
	}
	switch {
	case r.batch == nil:
		return ioPlain
	case r.batch.groOn():
		return ioOffload
	}
	return ioBatch
}

// read reads datagrams until the conn fails, calling handle for each in the
// order received. data is valid only during the call. For UDP sources ap is
// the source (IPv4-mapped addresses unmapped) and addr is nil; for a custom
// conn whose addresses are not *net.UDPAddr, addr is the source and ap is
// invalid. Transient errors (ICMP-induced ECONNREFUSED and the like, oversize
// datagrams) are counted and skipped. It returns the first other error: the
// conn was closed or its read deadline passed.
func (r *packetReader) read(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) error {
	if r.filter != nil {
		handle = r.filterHandler(handle)
	}
	for {
		r.filterNowOK = false
		err := r.readOnce(handle)
		if err == nil {
			if r.batch != nil && r.batch.busy() && r.fewRunnable() {
				// The socket is busy (the call filled every slot it
				// offered): hand the core to the goroutines this batch
				// woke (a session's Read, the sender with fresh ACKs)
				// before reading again. They sit in this P's run queue,
				// and a reader that keeps finding datagrams would keep
				// them waiting until it is preempted. Only when few
				// goroutines wait to run: the reader queues behind all
				// of them for its next turn, and with many busy sessions
				// that turn comes late enough to cost more than the
				// hand-off gains. A call that emptied the socket does
				// not yield: its next read parks the reader, which runs
				// them at once. Measured on 2 cores (docs/PERFORMANCE.md).
				runtime.Gosched()
			}
			continue
		}
		if r.filter == nil {
			return err
		}
		if r.followSocket() {
			continue // the filter moved to a new socket: read that one
		}
		return r.filter.filterErr(err)
	}
}

// readOnce performs one read call (one batch or one datagram) and delivers
// what it got.
func (r *packetReader) readOnce(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) error {
	var err error
	switch {
	case r.batch != nil:
		if r.batch.wantsGrow() {
			r.groOn.Store(r.batch.grow())
		}
		err = r.batch.receive(handle, &r.ndropped)
		if err != nil && recvRefused(err) {
			r.batch.disableGRO() // plain reads cannot cut coalesced runs apart
			r.groOn.Store(false)
			r.batch = nil
			r.batchOn.Store(false)
			r.nfallback.Add(1)
			return nil
		}
	case r.udp != nil:
		err = r.readUDP(handle)
	default:
		err = r.readConn(handle)
	}
	if err != nil && transientReadError(err) && !((r.refusedFatal || r.lingering.Load()) && errors.Is(err, syscall.ECONNREFUSED)) {
		r.ndropped.Add(1)
		return nil
	}
	return err
}

func (r *packetReader) readUDP(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) error {
	n, ap, err := r.udp.ReadFromUDPAddrPort(r.buf)
	if err != nil {
		return err
	}
	if n >= len(r.buf) {
		r.ndropped.Add(1)
		return nil
	}
	r.ncalls.Add(1)
	r.ndatagram.Add(1)
	handle(r.buf[:n:n], unmapAddrPort(ap), nil)
	return nil
}

func (r *packetReader) readConn(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) error {
	n, from, err := r.conn.ReadFrom(r.buf)
	if err != nil {
		return err
	}
	if n > mtuLimit || from == nil {
		r.ndropped.Add(1)
		return nil
	}
	r.ncalls.Add(1)
	r.ndatagram.Add(1)
	if ua, ok := from.(*net.UDPAddr); ok {
		if ap := ua.AddrPort(); ap.IsValid() {
			handle(r.buf[:n:n], unmapAddrPort(ap), nil)
			return nil
		}
	}
	handle(r.buf[:n:n], netip.AddrPort{}, from)
	return nil
}

// fewRunnable reports whether at most two goroutines per core wait to run
// (the runtime's count, read in about 60 ns without allocating).
func (r *packetReader) fewRunnable() bool {
	metrics.Read(r.runnable[:])
	v := r.runnable[0].Value
	return v.Kind() == metrics.KindUint64 && v.Uint64() <= r.yieldMax
}

// batching reports whether the reader still uses the batch path.
func (r *packetReader) batching() bool { return r.batch != nil }

// fallbacks reports how many times a refused batch call made the reader
// switch to the plain path (0 or 1).
func (r *packetReader) fallbacks() uint64 { return r.nfallback.Load() }

// dropped reports datagrams dropped and transient errors skipped.
func (r *packetReader) dropped() uint64 { return r.ndropped.Load() }

// groEnabled reports whether UDP_GRO is on for the reader's socket (Linux
// 5.0 and later, batch path in use).
func (r *packetReader) groEnabled() bool { return r.groOn.Load() }

// release undoes what the reader changed on the socket: it turns UDP_GRO
// off again, so that the conn's owner reading it later gets datagrams one by
// one. Call it after the read loop has returned, for a conn the caller owns
// and keeps (a listener or session the library created and closes itself
// need not). The reader must not be used afterwards.
func (r *packetReader) release() {
	if r.batch != nil {
		r.batch.stopGRO()
	}
	r.groOn.Store(false)
}

// kernelDrops reports how many datagrams the kernel dropped on the
// reader's socket because its receive buffer was full (Linux; 0 elsewhere
// and for conns that are not UDP sockets). Once the socket is closed it
// reports what it last read.
func (r *packetReader) kernelDrops() uint64 {
	if r.udp != nil {
		if n, ok := socketDrops(r.udp); ok {
			for old := r.kdrops.Load(); n > old && !r.kdrops.CompareAndSwap(old, n); old = r.kdrops.Load() {
			}
		}
	}
	return r.kdrops.Load()
}

// groSegments reports how many datagrams arrived inside GRO-coalesced runs
// and were cut apart (0 without GRO, or when no peer sends runs).
func (r *packetReader) groSegments() uint64 { return r.offload.groSegments.Load() }
