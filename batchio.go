package kcp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Datagram I/O between the sessions and the socket.
//
// packetReader and packetWriter move datagrams for one net.PacketConn. For a
// *net.UDPConn on Linux they use recvmmsg and sendmmsg over the socket's
// RawConn with message arrays built once (readloop_linux.go, tx_linux.go);
// everywhere else, and for any other PacketConn, one datagram per call
// (readloop_generic.go, tx_generic.go hold the stubs). Sources are reported
// as netip.AddrPort with IPv4-mapped IPv6 addresses unmapped, so a peer has
// one key whether it reaches a dual-stack socket or an IPv4 one. Neither path
// allocates per datagram.
//
// When the kernel or a sandbox refuses a batch call (ENOSYS, EPERM,
// EOPNOTSUPP, EIO) the reader or writer switches to the plain path for good,
// and counts the switch (fallbacks).
//
// On Linux the batch paths also use UDP offloads when the kernel offers them
// (gso_linux.go): the writer sends each run of equal-sized datagrams as one
// GSO super-datagram, the reader turns UDP_GRO on for its socket and cuts
// coalesced runs apart. Both are probed per socket by the constructors, so
// callers do nothing to enable them. A GSO message the kernel refuses is sent
// again without GSO and counted (gsoFallbacks); nothing is lost.
//
// Counters for a session layer's statistics (all safe to read from any
// goroutine, cumulative since construction):
//
//	packetWriter: fallbacks(), batching(), gsoEnabled(), gsoFallbacks(), gsoSegments()
//	packetReader: fallbacks(), batching(), dropped(), groEnabled(), groSegments()
//
// UDP_GRO changes what every reader of the socket gets, so a session layer
// that reads a caller-owned conn calls packetReader.release once its read
// loop has returned, before handing the conn back.

// ioMode selects the path of a packetReader or packetWriter. The
// constructors pick the best the socket offers; forceMode steps down for
// tests and benchmarks.
type ioMode int

const (
	ioPlain   ioMode = iota // one datagram per syscall
	ioBatch                 // recvmmsg/sendmmsg, one datagram per message
	ioOffload               // ioBatch plus GRO (reader) or GSO (writer)
)

// offloadStats counts GSO and GRO work; the batch paths add to it.
type offloadStats struct {
	gsoFallbacks atomic.Uint64 // GSO messages the kernel refused, sent again without GSO
	gsoSegments  atomic.Uint64 // datagrams sent inside GSO messages
	groSegments  atomic.Uint64 // datagrams received inside GRO-coalesced runs
}

// errNoSockopt reports that a connection offers no way to set an option.
var errNoSockopt = errors.New("kcp: socket option not supported by this connection")

// packetReader reads datagrams from one conn. read is called by one
// goroutine at a time (the conn's read loop); the counters may be read from
// any goroutine.
type packetReader struct {
	conn  net.PacketConn
	udp   *net.UDPConn // conn as a *net.UDPConn; nil for custom conns
	batch *batchReader // nil when batching is unavailable or was refused
	buf   []byte       // plain path: mtuLimit+1, so oversize shows as n > mtuLimit

	nfallback atomic.Uint64 // batch calls refused, then served by the plain path
	ndropped  atomic.Uint64 // datagrams dropped (oversize, bad source) and transient errors skipped
	offload   offloadStats
	groOn     atomic.Bool // mirrors batch.groOn() for readers on other goroutines
}

// newPacketReader returns a reader for conn. On Linux a *net.UDPConn is read
// with recvmmsg, with UDP_GRO turned on for the socket when the kernel allows
// it; any other conn one datagram per ReadFrom.
func newPacketReader(conn net.PacketConn) *packetReader {
	r := &packetReader{conn: conn, buf: make([]byte, mtuLimit+1)}
	if u, ok := conn.(*net.UDPConn); ok {
		r.udp = u
		r.batch = newBatchReader(u, &r.offload)
		r.groOn.Store(r.batch != nil && r.batch.groOn())
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
	for {
		if err := r.readOnce(handle); err != nil {
			return err
		}
	}
}

// readOnce performs one read call (one batch or one datagram) and delivers
// what it got.
func (r *packetReader) readOnce(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) error {
	var err error
	switch {
	case r.batch != nil:
		err = r.batch.receive(handle, &r.ndropped)
		if err != nil && batchRefused(err) {
			r.batch.disableGRO() // plain reads cannot cut coalesced runs apart
			r.groOn.Store(false)
			r.batch = nil
			r.nfallback.Add(1)
			return nil
		}
	case r.udp != nil:
		err = r.readUDP(handle)
	default:
		err = r.readConn(handle)
	}
	if err != nil && transientReadError(err) {
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
	if n > mtuLimit {
		r.ndropped.Add(1)
		return nil
	}
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
	if ua, ok := from.(*net.UDPAddr); ok {
		if ap := ua.AddrPort(); ap.IsValid() {
			handle(r.buf[:n:n], unmapAddrPort(ap), nil)
			return nil
		}
	}
	handle(r.buf[:n:n], netip.AddrPort{}, from)
	return nil
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

// groSegments reports how many datagrams arrived inside GRO-coalesced runs
// and were cut apart (0 without GRO, or when no peer sends runs).
func (r *packetReader) groSegments() uint64 { return r.offload.groSegments.Load() }

// packetWriter sends datagrams on one conn. write is safe for concurrent use
// by the sessions of a listener sharing the socket: the batch path holds mu
// around its prebuilt message array (one sendmmsg at a time; the kernel
// serialises writers of a socket anyway, and this keeps memory at one array
// per socket instead of one per caller). The plain path takes no lock.
type packetWriter struct {
	conn      net.PacketConn
	udp       *net.UDPConn // nil for custom conns
	connected bool         // udp has a fixed peer: send without an address

	mu       sync.Mutex   // guards batch's message array during a call
	batch    *batchWriter // nil when batching is unavailable
	batchOff atomic.Bool  // the kernel refused batching; set once

	lastAddr atomic.Pointer[addrCache] // custom conns: last AddrPort converted to net.Addr

	nfallback atomic.Uint64
	offload   offloadStats
	gsoOn     atomic.Bool // mirrors batch.gso() after each call, for readers on other goroutines
}

type addrCache struct {
	ap   netip.AddrPort
	addr net.Addr
}

// newPacketWriter returns a writer for conn. On Linux a *net.UDPConn is
// written with sendmmsg, with GSO when the socket answers the UDP_SEGMENT
// probe; any other conn one datagram per WriteTo.
func newPacketWriter(conn net.PacketConn) *packetWriter {
	w := &packetWriter{conn: conn}
	if u, ok := conn.(*net.UDPConn); ok {
		w.udp = u
		w.connected = u.RemoteAddr() != nil
		w.batch = newBatchWriter(u, w.connected, &w.offload)
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

// write sends pkts in order to the peer (to, or toAddr when to is invalid;
// both are ignored on a connected socket) and returns how many were sent.
// Callers gain most from GSO by passing all datagrams due for one peer in one
// call: every run of equal-sized ones becomes one message to the kernel. On
// the first error it stops and returns the count so far with the error. The
// buffers stay the caller's and are not retained. A full socket buffer
// blocks until there is room or the write deadline passes.
func (w *packetWriter) write(pkts [][]byte, to netip.AddrPort, toAddr net.Addr) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if w.udp == nil {
		return w.writeConn(pkts, to, toAddr)
	}
	if !to.IsValid() && toAddr != nil {
		if ua, ok := toAddr.(*net.UDPAddr); ok {
			to = ua.AddrPort()
		}
	}
	if !to.IsValid() && !w.connected {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: w.udp.LocalAddr(), Addr: toAddr,
			Err: errors.New("missing or non-UDP destination address")}
	}
	to = unmapAddrPort(to)

	sent := 0
	if w.batch != nil && !w.batchOff.Load() {
		w.mu.Lock()
		if !w.batchOff.Load() {
			n, ok, err := w.batch.send(pkts, to)
			w.gsoOn.Store(w.batch.gso())
			if ok && (err == nil || !batchRefused(err)) {
				w.mu.Unlock()
				return n, err
			}
			if ok { // refused: go plain for good
				w.batchOff.Store(true)
				w.gsoOn.Store(false)
				w.nfallback.Add(1)
			}
			sent = n
		}
		w.mu.Unlock()
	}
	for _, p := range pkts[sent:] {
		var err error
		if w.connected {
			_, err = w.udp.Write(p)
		} else {
			_, err = w.udp.WriteToUDPAddrPort(p, to)
		}
		if err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

func (w *packetWriter) writeConn(pkts [][]byte, to netip.AddrPort, toAddr net.Addr) (int, error) {
	addr := toAddr
	if addr == nil {
		if !to.IsValid() {
			return 0, &net.OpError{Op: "write", Net: w.conn.LocalAddr().Network(), Source: w.conn.LocalAddr(),
				Err: errors.New("missing destination address")}
		}
		if c := w.lastAddr.Load(); c != nil && c.ap == to {
			addr = c.addr
		} else {
			addr = net.UDPAddrFromAddrPort(to)
			w.lastAddr.Store(&addrCache{ap: to, addr: addr})
		}
	}
	for i, p := range pkts {
		if _, err := w.conn.WriteTo(p, addr); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

// batching reports whether the writer still uses the batch path.
func (w *packetWriter) batching() bool { return w.batch != nil && !w.batchOff.Load() }

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

// unmapAddrPort turns ::ffff:a.b.c.d into a.b.c.d so both key one peer.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// batchRefused reports an error meaning the kernel or a sandbox does not
// allow recvmmsg/sendmmsg on this socket, so the plain path should be used.
func batchRefused(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENOSYS, syscall.EPERM, syscall.EOPNOTSUPP, syscall.EIO:
		return true
	}
	return false
}

// transientReadError reports a read error that concerns one datagram or an
// earlier send (an ICMP error queued on the socket), not the socket itself:
// the reader skips it and goes on.
func transientReadError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.EMSGSIZE, syscall.ENOBUFS, syscall.ENOMEM:
		return true
	}
	if runtime.GOOS == "windows" {
		// WSAEMSGSIZE, WSAENETUNREACH, WSAENETRESET, WSAECONNRESET,
		// WSAECONNREFUSED, WSAEHOSTUNREACH: Windows reports these as raw
		// Winsock codes, not as the syscall package's E* values.
		switch uintptr(errno) {
		case 10040, 10051, 10052, 10054, 10061, 10065:
			return true
		}
	}
	return false
}

// setDSCP marks the conn's outgoing datagrams with the DiffServ code point
// dscp (0..63). A conn with its own SetDSCP(int) error method is asked
// first; otherwise the IPv4 TOS byte and the IPv6 traffic class are both set
// to dscp<<2 (both for dual-stack sockets; success of either is enough), as
// kcp-go v5.7 does (v5.6 wrote dscp unshifted into the traffic class).
func setDSCP(conn net.PacketConn, dscp int) error {
	if dscp < 0 || dscp > 63 {
		return errors.New("kcp: DSCP out of range 0..63")
	}
	if c, ok := conn.(interface{ SetDSCP(int) error }); ok {
		return c.SetDSCP(dscp)
	}
	nc, ok := conn.(net.Conn)
	if !ok {
		return errNoSockopt
	}
	err4 := ipv4.NewConn(nc).SetTOS(dscp << 2)
	err6 := ipv6.NewConn(nc).SetTrafficClass(dscp << 2)
	if err4 == nil || err6 == nil {
		return nil
	}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() != nil {
		return err4
	}
	return err6
}

// ownSocketBuffer is the receive and send buffer size, in bytes, asked for
// on the sockets the library opens itself (ListenWithOptions,
// DialWithOptions). The kernel default (about 208 KiB) drops datagrams as
// soon as a window of 1024 segments arrives in bursts; 4 MiB is what the
// interop benchmarks use. The kernel caps the request at net.core.rmem_max
// and wmem_max; the memory is only taken as datagrams queue.
const ownSocketBuffer = 4 << 20

// tuneOwnSocket asks for ownSocketBuffer on a socket the library opened.
// Failures are ignored: the socket works with whatever the kernel grants,
// and the caller may still set its own sizes afterwards.
func tuneOwnSocket(conn *net.UDPConn) {
	conn.SetReadBuffer(ownSocketBuffer)
	conn.SetWriteBuffer(ownSocketBuffer)
}

// setReadBuffer sets the conn's receive buffer in bytes when it has a
// SetReadBuffer(int) error method.
func setReadBuffer(conn net.PacketConn, bytes int) error {
	if c, ok := conn.(interface{ SetReadBuffer(int) error }); ok {
		return c.SetReadBuffer(bytes)
	}
	return errNoSockopt
}

// setWriteBuffer sets the conn's send buffer in bytes when it has a
// SetWriteBuffer(int) error method.
func setWriteBuffer(conn net.PacketConn, bytes int) error {
	if c, ok := conn.(interface{ SetWriteBuffer(int) error }); ok {
		return c.SetWriteBuffer(bytes)
	}
	return errNoSockopt
}
