package kcp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Datagram I/O between the sessions and the socket.
//
// Each socket has one reader goroutine (udp_rx.go: it reads, opens and
// demultiplexes, and never writes) and one sender goroutine (udp_tx.go:
// sendQueue, the only writer). packetReader and packetWriter move datagrams
// for one net.PacketConn. For a
// *net.UDPConn on Linux they use recvmmsg and sendmmsg over the socket's
// RawConn with message arrays built once (udp_rx_linux.go, udp_tx_linux.go),
// and so for the socket under a datagram filter (secure mode, udp_filter.go);
// everywhere else, and for any other PacketConn, one datagram per call
// (udp_rx_other.go, udp_tx_other.go hold the stubs). Sources are reported
// as netip.AddrPort with IPv4-mapped IPv6 addresses unmapped, so a peer has
// one key whether it reaches a dual-stack socket or an IPv4 one. Neither path
// allocates per datagram.
//
// When the kernel or a sandbox refuses a batch call as unsupported (ENOSYS,
// EOPNOTSUPP, EIO; EPERM for recvmmsg, and for sendmmsg when the same
// datagram then passes a plain send) the reader or writer switches to the
// plain path for good, and counts the switch (fallbacks). Transient errors
// (EPERM from a firewall, ENOBUFS, ECONNREFUSED and the like) cost the one
// datagram and never change the mode.
//
// On Linux the batch paths also use UDP offloads when the kernel offers them
// (udp_gso_linux.go): the writer sends each run of equal-sized datagrams as one
// GSO super-datagram, the reader turns UDP_GRO on for its socket and cuts
// coalesced runs apart. Both are probed per socket by the constructors, so
// callers do nothing to enable them. A GSO message the kernel refuses is sent
// again without GSO and counted (gsoFallbacks); nothing is lost.
//
// The counters of both are published as IOStats (Listener.IOStats,
// UDPSession.IOStats).
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

// offloadStats counts the batch paths' calls and their GSO and GRO work.
type offloadStats struct {
	txCalls      atomic.Uint64 // sendmmsg calls that sent something
	gsoBatches   atomic.Uint64 // GSO messages sent
	gsoFallbacks atomic.Uint64 // GSO messages the kernel refused, sent again without GSO
	gsoSegments  atomic.Uint64 // datagrams sent inside GSO messages
	rxCalls      atomic.Uint64 // recvmmsg calls that returned datagrams
	rxDatagrams  atomic.Uint64 // datagrams recvmmsg delivered
	groBatches   atomic.Uint64 // GRO-coalesced runs received
	groSegments  atomic.Uint64 // datagrams received inside GRO-coalesced runs
}

// IOStats counts the datagram I/O of one socket since it was opened by a
// Listener or a dialled UDPSession: what the reader and the sender did, and
// which paths are in use. On Linux a *net.UDPConn is read with recvmmsg
// (with UDP_GRO where the kernel offers it) and written with sendmmsg (with
// UDP GSO); elsewhere, and for other PacketConns, one datagram per call.
type IOStats struct {
	RxDatagrams   uint64 // datagrams read (GRO runs counted as their datagrams)
	RxCalls       uint64 // read system calls (or ReadFrom calls) that returned data
	RxGROBatches  uint64 // GRO-coalesced runs read
	RxGROSegments uint64 // datagrams that arrived inside GRO runs
	RxDropped     uint64 // datagrams dropped on read (oversize, unknown source) and transient read errors skipped
	RxFallbacks   uint64 // 1 once the kernel refused recvmmsg and the reader went to one datagram per call
	RxKernelDrops uint64 // datagrams the kernel dropped before the reader saw them, mostly for a full receive buffer (Linux 4.19+, SO_MEMINFO; 0 elsewhere)

	TxDatagrams    uint64 // datagrams handed to the kernel (or the conn)
	TxCalls        uint64 // write system calls (sendmmsg, sendto, or WriteTo calls)
	TxGSOBatches   uint64 // GSO messages sent (each one call's worth of a run to one peer)
	TxGSOSegments  uint64 // datagrams sent inside GSO messages
	TxGSOFallbacks uint64 // GSO messages the kernel refused and that went again without GSO
	TxFallbacks    uint64 // 1 once the kernel refused sendmmsg and the sender went to one datagram per call
	TxErrors       uint64 // datagrams a transient send error dropped (EPERM, ENOBUFS, ...; ARQ resends)
	TxQueueDrops   uint64 // datagrams dropped before the socket because a session's send queue was full
	TxAmpLimited   uint64 // times output toward a peer not yet proven to receive at its address waited for its budget (3x what it sent), plus datagrams dropped meanwhile
	TxCtlDrops     uint64 // secure mode: handshake and control replies dropped because the socket's reply ring was full (a flood; clients retry)

	RxBatch bool // the reader uses recvmmsg
	GRO     bool // UDP_GRO is on for the socket
	TxBatch bool // the sender uses sendmmsg
	GSO     bool // the sender uses UDP GSO
}

// IOStats returns the counters of the listener's socket, shared by all its
// sessions, summed over its sockets when it has one per core (the path
// flags are the first socket's). It is safe for concurrent use and keeps
// working after Close.
func (l *Listener) IOStats() IOStats {
	st := ioStats(l.rx, l.sq)
	for _, ln := range l.lanes[1:] {
		st.add(ioStats(ln.rx, ln.sq))
	}
	return st
}

// IOStats returns the counters of the socket the session uses: its own for a
// dialled session, its listener's for an accepted one. It is safe for
// concurrent use and keeps working after Close.
func (s *UDPSession) IOStats() IOStats {
	if s.l != nil {
		return s.l.IOStats()
	}
	return ioStats(s.rx, s.sq)
}

// RxPerCall is the mean number of datagrams one read call returned.
func (s IOStats) RxPerCall() float64 { return perCall(s.RxDatagrams, s.RxCalls) }

// TxPerCall is the mean number of datagrams one write call carried.
func (s IOStats) TxPerCall() float64 { return perCall(s.TxDatagrams, s.TxCalls) }

func perCall(n, calls uint64) float64 {
	if calls == 0 {
		return 0
	}
	return float64(n) / float64(calls)
}

// ioStats gathers the counters of a socket's reader and sender. r is nil
// before the reader started.
func ioStats(r *packetReader, q *sendQueue) IOStats {
	var st IOStats
	if r != nil {
		st.RxDatagrams = r.ndatagram.Load() + r.offload.rxDatagrams.Load()
		st.RxCalls = r.ncalls.Load() + r.offload.rxCalls.Load()
		st.RxGROBatches = r.offload.groBatches.Load()
		st.RxGROSegments = r.offload.groSegments.Load()
		st.RxDropped = r.ndropped.Load()
		st.RxFallbacks = r.nfallback.Load()
		st.RxKernelDrops = r.kernelDrops()
		st.RxBatch = r.batchOn.Load()
		st.GRO = r.groOn.Load()
	}
	w := q.w
	st.TxDatagrams = w.ndatagram.Load()
	st.TxCalls = w.ncalls.Load() + w.offload.txCalls.Load()
	st.TxGSOBatches = w.offload.gsoBatches.Load()
	st.TxGSOSegments = w.offload.gsoSegments.Load()
	st.TxGSOFallbacks = w.offload.gsoFallbacks.Load()
	st.TxFallbacks = w.nfallback.Load()
	st.TxErrors = q.sendErrs.Load()
	st.TxQueueDrops = q.queueDrops.Load()
	st.TxAmpLimited = q.ampLimited.Load()
	if q.ctl != nil {
		st.TxCtlDrops = q.ctl.drops.Load()
	}
	st.TxBatch = w.batching()
	st.GSO = w.gsoEnabled()
	return st
}

// errNoSockopt reports that a connection offers no way to set an option.
var errNoSockopt = errors.New("kcp: socket option not supported by this connection")

// unmapAddrPort turns ::ffff:a.b.c.d into a.b.c.d so both key one peer.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// batchRefused reports an error meaning the kernel does not offer
// recvmmsg/sendmmsg on this socket, so the plain path should be used. EPERM
// is not among them: see recvRefused and packetWriter.send.
func batchRefused(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENOSYS, syscall.EOPNOTSUPP, syscall.EIO:
		return true
	}
	return false
}

// recvRefused is batchRefused for recvmmsg, which no firewall refuses: EPERM
// there comes from a sandbox that forbids the call.
func recvRefused(err error) bool {
	return batchRefused(err) || errors.Is(err, syscall.EPERM)
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
