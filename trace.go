package kcp

import (
	"encoding/binary"
	"time"
)

// Tracer hears what happens inside one session, event by event. Set it with
// UDPSession.SetTracer, or name a directory in the KCPX_QLOGDIR environment
// variable to give every new session a qlog tracer (QlogTracer). A session
// without a tracer pays one nil check per event site and allocates nothing.
//
// The session calls its tracer with its lock held, from whichever goroutine
// is working for it (a reader, a writer, the scheduler), one call at a time.
// A method must return quickly and must not call back into the session.
// Byte slices passed in are only valid during the call.
type Tracer interface {
	// DatagramSent reports a datagram handed to the send queue: its kind,
	// its size on the wire in bytes (cipher and FEC headers and AEAD tag
	// included) and, for DatagramKCP, its KCP segments (nil otherwise).
	DatagramSent(kind DatagramKind, wireLen int, kcp []byte)
	// DatagramReceived reports a datagram that decrypted and verified, as
	// DatagramSent does for sent ones.
	DatagramReceived(kind DatagramKind, wireLen int, kcp []byte)
	// SegmentLost reports that the sender considers data segment sn lost,
	// and why; a retransmission follows as soon as the windows and the
	// pacer allow it.
	SegmentLost(sn uint32, reason LossReason)
	// SegmentRetransmitted reports transmission number xmit (2 or more) of
	// data segment sn.
	SegmentRetransmitted(sn uint32, xmit uint32)
	// MetricsUpdated reports the RTT estimate or the congestion window
	// after either changed.
	MetricsUpdated(m TraceMetrics)
	// FECRecovered reports a datagram of size bytes rebuilt by FEC.
	FECRecovered(size int)
	// StateChanged reports a step in the session's life. StateClosed is the
	// last event a session reports.
	StateChanged(state SessionState)
}

// DatagramKind says what a traced datagram carries.
type DatagramKind uint8

const (
	DatagramKCP    DatagramKind = iota // DatagramKCP carries KCP segments (an FEC data shard included).
	DatagramParity                     // DatagramParity is an FEC parity shard.
	DatagramOOB                        // DatagramOOB is an out-of-band datagram (SendOOB).
	DatagramClose                      // DatagramClose is the close signal (FIN or FINACK).
	DatagramPath                       // DatagramPath is a path challenge or response (NAT rebinding).
)

// String returns the kind's name as it appears in qlog: "kcp", "fec_parity",
// "oob", "close" or "path".
func (k DatagramKind) String() string {
	switch k {
	case DatagramKCP:
		return "kcp"
	case DatagramParity:
		return "fec_parity"
	case DatagramOOB:
		return "oob"
	case DatagramClose:
		return "close"
	case DatagramPath:
		return "path"
	}
	return "unknown"
}

// LossReason says why a segment was declared lost.
type LossReason uint8

const (
	// LossTimeout: its retransmission timeout expired.
	LossTimeout LossReason = iota
	// LossReordering: ACKs for later segments skipped it (fast or early
	// retransmit).
	LossReordering
)

// String returns the qlog trigger name: "time_threshold" or
// "reordering_threshold".
func (r LossReason) String() string {
	if r == LossReordering {
		return "reordering_threshold"
	}
	return "time_threshold"
}

// SessionState is a step in a session's life, as reported to a Tracer.
type SessionState uint8

const (
	// StateEstablished: the first valid KCP datagram from the peer arrived.
	StateEstablished SessionState = iota + 1
	// StateClosing: Close was called; queued data and the close signal drain.
	StateClosing
	// StateClosed: the session released everything; nothing follows.
	StateClosed
	// StateDeadLink: a segment reached the dead-link transmission count.
	StateDeadLink
	// StateIdleTimeout: nothing arrived within the idle timeout.
	StateIdleTimeout
)

// String returns the state's name as it appears in qlog.
func (st SessionState) String() string {
	switch st {
	case StateEstablished:
		return "established"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	case StateDeadLink:
		return "dead_link"
	case StateIdleTimeout:
		return "idle_timeout"
	}
	return "unknown"
}

// TraceMetrics is the RTT estimate and congestion state passed to
// Tracer.MetricsUpdated.
type TraceMetrics struct {
	MinRTT, SmoothedRTT, RTTVar, LatestRTT time.Duration
	RTO                                    time.Duration
	Cwnd                                   uint32 // segments
	CwndBytes                              uint64 // Cwnd times the segment size
	Ssthresh                               uint32 // segments
	BytesInFlight                          int64
	PacingRate                             uint64 // bytes per second; 0: not paced
}

// traceMetrics tells the tracer the RTT estimate and congestion state when
// the window, the RTO or the smoothed RTT moved since it was last told.
func (kcp *KCP) traceMetrics() {
	cc := kcp.ccView()
	o := &kcp.obs
	if cc.cwnd == o.lastCwnd && kcp.rxRto == o.lastRto && o.srttUs == o.lastSrtt {
		return
	}
	o.lastCwnd, o.lastRto, o.lastSrtt = cc.cwnd, kcp.rxRto, o.srttUs
	kcp.tracer.MetricsUpdated(kcp.traceMetricsNow(cc))
}

// traceMetricsNow builds a TraceMetrics from the core's state.
func (kcp *KCP) traceMetricsNow(cc ccState) TraceMetrics {
	o := &kcp.obs
	return TraceMetrics{
		MinRTT:        time.Duration(o.minRttMs) * time.Millisecond,
		SmoothedRTT:   time.Duration(o.srttUs) * time.Microsecond,
		RTTVar:        time.Duration(o.rttvarUs) * time.Microsecond,
		LatestRTT:     time.Duration(o.latestRttMs) * time.Millisecond,
		RTO:           time.Duration(kcp.rxRto) * time.Millisecond,
		Cwnd:          cc.cwnd,
		CwndBytes:     uint64(cc.cwnd) * uint64(kcp.mss),
		Ssthresh:      cc.ssthresh,
		BytesInFlight: cc.inflightBytes,
		PacingRate:    cc.pacingRate,
	}
}

// SetTracer installs t as the session's tracer; nil removes it. A tracer set
// from KCPX_QLOGDIR is replaced (and closed, when it is a *QlogTracer the
// session opened). Safe for concurrent use.
func (s *UDPSession) SetTracer(t Tracer) {
	s.mu.Lock()
	old, owned := s.tracer, s.tracerOwned
	s.tracer, s.tracerOwned = t, false
	s.kcp.tracer = t
	s.mu.Unlock()
	if q, ok := old.(*QlogTracer); ok && owned && old != t {
		q.Close()
	}
}

// traceOutput reports a KCP datagram of size KCP bytes leaving through
// output. Caller holds mu.
func (s *UDPSession) traceOutput(kcpBytes []byte) {
	s.tracer.DatagramSent(DatagramKCP, s.cryptHdr+s.fecHdr+len(kcpBytes)+s.cryptTag, kcpBytes)
}

// traceInput reports an opened datagram p (the bytes after the cipher
// header) that arrived as wireLen bytes, classified as input dispatches it.
// Caller holds mu.
func (s *UDPSession) traceInput(p []byte, wireLen int) {
	var typ uint16
	if len(p) >= 6 {
		typ = binary.LittleEndian.Uint16(p[4:])
	}
	switch typ {
	case typeData:
		kb, _ := fecDataPayload(p)
		s.tracer.DatagramReceived(DatagramKCP, wireLen, kb)
	case typeParity:
		s.tracer.DatagramReceived(DatagramParity, wireLen, nil)
	case typeOOB:
		s.tracer.DatagramReceived(DatagramOOB, wireLen, nil)
	case typeClose:
		s.tracer.DatagramReceived(DatagramClose, wireLen, nil)
	case typePath:
		s.tracer.DatagramReceived(DatagramPath, wireLen, nil)
	default:
		s.tracer.DatagramReceived(DatagramKCP, wireLen, p)
	}
}

// traceState reports a state once per session and state. Caller holds mu.
func (s *UDPSession) traceState(st SessionState) {
	bit := uint8(1) << st
	if s.tracedStates&bit != 0 {
		return
	}
	s.tracedStates |= bit
	s.tracer.StateChanged(st)
}

// traceFailure reports the link failure err, when it is one a Tracer has a
// state for. Caller holds mu.
func (s *UDPSession) traceFailure(err error) {
	switch err {
	case errDeadLink:
		s.traceState(StateDeadLink)
	case errIdle:
		s.traceState(StateIdleTimeout)
	}
}
