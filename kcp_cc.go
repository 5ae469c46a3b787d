package kcp

import "errors"

// Congestion control of the core. Two legacy modes live in the core itself
// and behave exactly as kcp-go's: "kcp" (NoDelay nc=0: KCP's slow start,
// AIMD and collapse to one segment on a timeout) and "none" (nc=1: only the
// send and remote windows bound what is in flight). A model-based
// controller ("bbr", "cubic") plugs in behind the controller interface: the
// core calls it when it transmits, on every ACK (with a delivery-rate
// sample and the RTT from KCP's ts echo), on a fast retransmission (a loss)
// and on a retransmission timeout, and it answers with a window of
// unacknowledged segments and a pacing rate that drives the core's pacer
// (kcp_pace.go).
//
// The delivery rate is sampled as in the IETF BBR draft
// (draft-ietf-ccwg-bbr, "Delivery Rate Samples"): each transmission records
// how much had been delivered, and when, and every ACK turns the
// difference into a rate over the longer of the send and ACK intervals.
//
// The sampler, the controllers and the pacer run on a µs clock (usAt):
// over a fast path (loopback, a LAN) a round trip is well under a ms, and
// rates and RTTs measured in whole ms would be off by up to the sample
// itself (a sample over 0.3 ms counted as 1 ms reads a third of the rate).
// A session passes its µs clock in (sessionClocks); a bare KCP, and the
// simulated links of the tests, take the ms clock times 1000. KCP's wire ts,
// its RTO and its legacy modes stay on the ms clock.
//
// The µs clock is 64 bits and monotonic, and its stamps compare as plain
// differences. A 32-bit µs clock wraps every 71.6 minutes, and a stamp
// compared by int32 difference reads as in the future once it is 35.8
// minutes old: a session that idled that long kept a stale min RTT, and
// CUBIC's recovery period swallowed every loss for the next 35.8 minutes.
// kcptun's tunnels live for days. A bare KCP's ms clock is uint32 (kcp-go's
// API); ccNow extends it to 64 bits by the signed ms step since the last
// reading, which holds as long as it is read at least every 24.8 days.
// Only a segment's send time (sentUs) is kept in full per segment; the
// sampler's other per-segment times are ages, at most 2^32-1 µs, so a
// segment stays 72 bytes.

// ErrUnknownCongestionControl is returned by SetCongestionControl for a name
// it does not know. Known names are "kcp", "none", "bbr" and "cubic".
var ErrUnknownCongestionControl = errors.New("kcp: unknown congestion control")

// Congestion control names accepted by SetCongestionControl.
const (
	// CongestionKCP is KCP's own window (NoDelay nc=0), the default.
	CongestionKCP = "kcp"
	// CongestionNone turns congestion control off (NoDelay nc=1): only the
	// send window and the peer's window bound the data in flight.
	CongestionNone = "none"
	// CongestionBBR is a BBR controller: it models the path's bottleneck
	// bandwidth and minimum RTT and paces at that rate; random loss does
	// not shrink it.
	CongestionBBR = "bbr"
	// CongestionCUBIC is a CUBIC controller (RFC 9438), loss-based and
	// TCP-friendly, paced at 1.2 to 2 times cwnd per smoothed RTT.
	CongestionCUBIC = "cubic"
)

// controller is a model-based congestion controller. Times are the core's
// µs clock (usAt: 64 bits and monotonic, so now never falls behind a stamp
// taken from it); windows are
// segments; rates are bytes per second, counted in KCP bytes (segment
// header and payload).
type controller interface {
	// onSend is told of every data transmission: sn, its bytes, whether it
	// is a retransmission, and the segments unacknowledged after it.
	onSend(now uint64, sn uint32, bytes int, retrans bool, inflight uint32)
	// onAck is told of every input that acknowledged data.
	onAck(now uint64, rs *rateSample)
	// onLoss is told of each segment sent again by fast (or early)
	// retransmission; sndNxt is the next new sn at that moment.
	onLoss(now uint64, sn uint32, bytes int, sndNxt uint32)
	// onTimeout is told of each segment sent again because its RTO fired.
	onTimeout(now uint64, sn uint32, sndNxt uint32)
	// timeoutVerdict is told what the first ACK of a segment whose RTO
	// fired showed: spurious when it echoed a transmission from before
	// the timeout (the segment was not lost, only late), otherwise the
	// retransmission was needed.
	timeoutVerdict(now uint64, spurious bool)
	// window is how many segments may be unacknowledged (at least 1).
	window() uint32
	// pacingRate is the rate to release data at, bytes/s (at least 1).
	pacingRate() uint64
	// minRTT is the controller's minimum RTT estimate, µs (0: none yet).
	minRTT() uint32
}

// rateSample is what one input taught about the path.
type rateSample struct {
	delivered      uint32 // bytes delivered over interval
	interval       uint32 // µs; 0 when no rate could be computed
	deliveryRate   uint64 // bytes/s, valid when interval > 0
	priorDelivered uint32 // the delivered count when the newest acked segment left
	hasPrior       bool   // priorDelivered is set: a segment that had left was acked
	totalDelivered uint32 // bytes delivered since the start (wraps)
	newlyAcked     uint32 // bytes acknowledged by this input
	newlyAckedSegs uint32
	rtt            int32  // µs; -1 when this input had none
	srtt           int32  // smoothed RTT, µs (0 before a sample)
	inflight       uint32 // segments sent and still unacknowledged
	una            uint32 // the first sn not yet acknowledged, after this input
	appLimited     bool   // the newest acked segment left while the sender had too little to send
	ackDelay       uint32 // µs a peer may hold an ACK back: its flush interval (ours stands in for it)
	ackEvery       uint32 // segments after which a kcpx peer ACKs at once (an mtu of ACKs; ours stands in)

	rttSentUs uint64 // when the newest once-sent segment acked left
	hasRttUs  bool   // rttSentUs is set
}

// ccCore is the core's congestion-control state: the controller (nil in
// the legacy modes), the delivery-rate sampler and the write bound.
type ccCore struct {
	ctl  controller
	name string // "" for the legacy modes, which NoDelay's nc selects

	// The µs clock: the session's (nil: the ms clock times 1000), and its
	// reading at the start of the current input or flush.
	clockUs func() uint64
	nowUs   uint64
	// Without a session clock, the last ms reading ccNow took and its
	// extension to 64-bit µs (valid once msSet).
	msLast uint32
	msUs   uint64
	msSet  bool

	// The delivery-rate sampler (kept in every mode, for observability).
	// Times are µs.
	delivered     uint32 // bytes acknowledged since the start; wraps
	deliveredTime uint64 // when delivered last grew
	firstSentTime uint64 // send time of the newest acked segment's flight
	appLimitedTo  uint32 // while appLimited: delivered count that ends it
	appLimited    bool
	lastRate      uint64 // last valid delivery-rate sample, bytes/s
	minRTTSeen    uint32 // least RTT sample, µs (0: none)
	srttUs        uint32 // smoothed RTT over the µs samples (0: none)

	// per-input accumulation (reset by ccAckBegin)
	rs rateSample

	// A timeout episode awaiting its verdict (rtoOpen) lasts until una
	// reaches rtoEnd, the sndNxt of its first timeout. The witness
	// (rtoArmed): a segment whose first transmission's RTO fired, and
	// the ms time of that retransmission; an ACK of rtoSn echoing an
	// earlier ts shows the timeout spurious (RFC 3522's test, with KCP's
	// ts echo). A kcpx peer leaves out the ACKs that its una covers but
	// the last of a flush, so a witness may never be answered
	// (ccWitnessCovered reads what the una that covered it shows): each
	// flush that times segments out arms a new one, and an episode that
	// ends without an answer is given a real one.
	rtoSn, rtoAt, rtoEnd uint32
	rtoArmed, rtoOpen    bool
	// The newest ts the ACKs of this input echoed (echoed: any).
	echoMax uint32
	echoed  bool

	unacked  uint32 // segments in sndBuf not yet acknowledged
	queued   int    // payload bytes waiting in sndQueue
	writeMax int    // bound on queued beyond the window, bytes; 0: automatic
	ccPace   uint64 // the controller's pacing rate last applied, bytes/s
	userPace uint32 // SetRateLimit's rate (setPace), bytes/s; 0: none
	sentOut  uint32 // segments sent at least once and not yet acknowledged
}

// SetCongestionControl selects the congestion controller by name: "kcp"
// (KCP's own window, the same as NoDelay nc=0, the default), "none" (nc=1),
// "bbr" or "cubic". It returns ErrUnknownCongestionControl, changing
// nothing, for any other name. Switching starts the new controller from
// scratch ("kcp" keeps KCP's window when it is already in use); data in
// flight stays. While "bbr" or "cubic" is selected,
// NoDelay's nc has no effect (it takes effect again after "kcp"/"none" is
// chosen, which set it themselves).
func (kcp *KCP) SetCongestionControl(name string) error {
	segBytes := kcp.mtu
	switch name {
	case CongestionKCP, CongestionNone:
		if kcp.cc.ctl != nil && name == CongestionKCP {
			// back from a model: a fresh KCP window, as NewKCP sets it
			kcp.cwnd, kcp.ssthresh, kcp.incr = 1, IKCP_THRESH_INIT, kcp.mss
		}
		kcp.cc.ctl, kcp.cc.name = nil, ""
		kcp.nocwnd = name == CongestionNone
	case CongestionBBR:
		kcp.cc.ctl, kcp.cc.name = newBBR(segBytes, uint64(kcp.conv)^uint64(kcp.sndNxt)<<32), name
	case CongestionCUBIC:
		kcp.cc.ctl, kcp.cc.name = newCubic(segBytes), name
	default:
		return ErrUnknownCongestionControl
	}
	kcp.cc.ccPace = 0
	kcp.ccApplyPace(kcp.paceLast)
	return nil
}

// usAt is the µs clock at ms time current: the session's µs clock, or for
// a bare KCP current in µs, extended to 64 bits from the last reading ccNow
// took by the signed ms step since (current*1000 until the first). A time
// behind that reading (a caller's clock that stepped back) reads as that
// reading, so the clock never runs backwards. usAt changes nothing: check
// may ask about any time.
func (kcp *KCP) usAt(current uint32) uint64 {
	c := &kcp.cc
	if c.clockUs != nil {
		return c.clockUs()
	}
	if !c.msSet {
		return uint64(current) * 1000
	}
	if d := int32(current - c.msLast); d > 0 {
		return c.msUs + uint64(d)*1000
	}
	return c.msUs
}

// ccNow reads the µs clock for the input or flush at ms time current; the
// hooks below use that reading. For a bare KCP it moves the extension of
// the ms clock forward; a step is read right while it is under 2^31 ms
// (24.8 days), so a KCP that is flushed at all keeps its µs clock across
// the ms clock's own wrap (every 49.7 days).
func (kcp *KCP) ccNow(current uint32) uint64 {
	c := &kcp.cc
	c.nowUs = kcp.usAt(current)
	if c.clockUs == nil && (!c.msSet || int32(current-c.msLast) > 0) {
		c.msLast, c.msUs, c.msSet = current, c.nowUs, true
	}
	return c.nowUs
}

// satUs is a µs span as a uint32, saturated at 2^32-1 (71.6 minutes).
func satUs(d uint64) uint32 { return uint32(min(d, 1<<32-1)) }

// congestionControl returns the name of the controller in use: "kcp",
// "none", "bbr" or "cubic".
func (kcp *KCP) congestionControl() string {
	switch {
	case kcp.cc.ctl != nil:
		return kcp.cc.name
	case kcp.nocwnd:
		return CongestionNone
	}
	return CongestionKCP
}

// ccState reports the congestion state for observability: the window in
// segments that bounds new data now (KCP's cwnd, the controller's window,
// or with "none" the send window), the pacing rate in bytes/s the core
// releases data at (0: unpaced), the last delivery-rate sample in bytes/s
// (0 before one), and the least RTT seen in ms, rounded up (0 before a
// sample).
func (kcp *KCP) ccState() (cwnd uint32, pacingRate uint64, deliveryRate uint64, minRTT uint32) {
	switch {
	case kcp.cc.ctl != nil:
		cwnd = kcp.cc.ctl.window()
		minRTT = kcp.cc.ctl.minRTT()
	case kcp.nocwnd:
		cwnd = kcp.sndWnd
	default:
		cwnd = kcp.cwnd
	}
	if minRTT == 0 {
		minRTT = kcp.cc.minRTTSeen
	}
	return cwnd, uint64(kcp.paceRate), kcp.cc.lastRate, (minRTT + 999) / 1000
}

// setWriteLimit bounds, in bytes, what writable lets the application queue
// beyond the congestion window; 0 restores the automatic bound.
func (kcp *KCP) setWriteLimit(bytes int) { kcp.cc.writeMax = max(bytes, 0) }

// writeLimit is the bound on payload bytes queued beyond the window: the
// set one, or four windows (the congestion window, the send window and the
// peer's window, whichever is least), and at least 64 KiB.
func (kcp *KCP) writeLimit() int {
	if kcp.cc.writeMax > 0 {
		return kcp.cc.writeMax
	}
	wnd := min(kcp.sndWnd, kcp.rmtWnd)
	switch {
	case kcp.cc.ctl != nil:
		wnd = min(wnd, kcp.cc.ctl.window())
	case !kcp.nocwnd:
		wnd = min(wnd, kcp.cwnd)
	}
	return max(4*int(wnd)*int(kcp.mss), 64<<10)
}

// writable reports whether the application may queue more data: fewer
// segments queued and in flight than the send window (kcp-go's rule), and
// fewer bytes waiting beyond the window than writeLimit.
func (kcp *KCP) writable() bool {
	return kcp.WaitSnd() < int(kcp.sndWnd) && kcp.cc.queued < kcp.writeLimit()
}

// writeRoom is how many payload bytes the application may queue now before
// writable turns false (0 when it is false); a writer that splits a large
// write queues this much per step.
func (kcp *KCP) writeRoom() int {
	if !kcp.writable() {
		return 0
	}
	segs := int(kcp.sndWnd) - kcp.WaitSnd()
	return min(segs*int(kcp.mss), kcp.writeLimit()-kcp.cc.queued)
}

// ---- hooks called by kcp.go ----

// ccQueued notes payload bytes entering (n > 0) or leaving the send queue.
func (kcp *KCP) ccQueued(n int) { kcp.cc.queued += n }

// ccAdmit reports whether the controller's window lets one more segment
// into sndBuf; the legacy modes bound sndBuf by the sn span alone, as before.
func (kcp *KCP) ccAdmit() bool {
	return kcp.cc.ctl == nil || kcp.cc.unacked < kcp.cc.ctl.window()
}

// ccSent records the transmission of seg (in the flush ccNow began) for the
// rate sampler and tells the controller. Call it after seg.xmit is updated.
func (kcp *KCP) ccSent(seg *segment) {
	c := &kcp.cc
	now := c.nowUs
	seg.sentUs = now
	if seg.xmit == 1 {
		if c.sentOut == 0 {
			// Nothing in flight: the idle time before this flight must not
			// stretch the first sample's interval.
			c.firstSentTime, c.deliveredTime = now, now
		}
		c.sentOut++
	}
	seg.firstSentAge = satUs(now - c.firstSentTime)
	seg.deliveredAge = satUs(now - c.deliveredTime)
	seg.delivered = c.delivered
	seg.appLimited = c.appLimited
	if c.ctl != nil {
		c.ctl.onSend(now, seg.sn, len(seg.data)+IKCP_OVERHEAD, seg.xmit > 1, c.unacked)
	}
}

// ccAppLimited marks the flight app-limited when the sender has nothing
// queued and room in its window: rate samples taken until what is in
// flight now is delivered do not show the path's capacity.
func (kcp *KCP) ccAppLimited(wnd uint32) {
	c := &kcp.cc
	if kcp.sndQueue.len() > 0 {
		return
	}
	room := int32(kcp.sndNxt-kcp.sndUna) < int32(wnd)
	if c.ctl != nil {
		room = room && c.unacked < c.ctl.window()
	}
	if room {
		c.appLimited = true
		c.appLimitedTo = c.delivered + c.unacked*kcp.mtu
	}
}

// ccAckBegin starts the accumulation of one input at ms time current.
func (kcp *KCP) ccAckBegin(current uint32) {
	kcp.cc.rs = rateSample{rtt: -1}
	kcp.cc.echoed = false
	kcp.ccNow(current)
}

// ccAcked records that seg, still holding its payload, was acknowledged
// by the input ccAckBegin began.
func (kcp *KCP) ccAcked(seg *segment) {
	c := &kcp.cc
	now := c.nowUs
	bytes := uint32(len(seg.data) + IKCP_OVERHEAD)
	if c.unacked > 0 { // (only a test fills sndBuf behind the core's back)
		c.unacked--
	}
	c.delivered += bytes
	c.deliveredTime = now
	rs := &c.rs
	rs.newlyAcked += bytes
	rs.newlyAckedSegs++
	if seg.xmit == 0 {
		return // acknowledged before it left (a peer's guess): no sample
	}
	if c.sentOut > 0 {
		c.sentOut--
	}
	if seg.xmit == 1 && (!c.rs.hasRttUs || seg.sentUs > c.rs.rttSentUs) {
		// Sent once, so the ACK answers that transmission: an RTT
		// sample to the µs, from the newest one acked.
		c.rs.rttSentUs, c.rs.hasRttUs = seg.sentUs, true
	}
	// The newest transmission acked so far defines the sample.
	if !rs.hasPrior || int32(seg.delivered-rs.priorDelivered) >= 0 {
		rs.hasPrior = true
		rs.priorDelivered = seg.delivered
		rs.appLimited = seg.appLimited
		// The ages bound the interval at 71 minutes: a flight that
		// stalled that long (a peer gone while segments stayed in
		// flight) yields a rate near 0, never one over a wrapped interval.
		sendElapsed := uint64(seg.firstSentAge)
		ackElapsed := now - seg.sentUs + uint64(seg.deliveredAge)
		rs.interval = satUs(max(sendElapsed, ackElapsed, 1))
		c.firstSentTime = seg.sentUs
	}
}

// ccAckEnd finishes one input: it computes the rate sample and hands it to
// the controller, which sets the pacer. rtt is the input's RTT sample in
// ms from the ts echo, or -1 (then the input yields no RTT sample).
func (kcp *KCP) ccAckEnd(rtt int32) {
	c := &kcp.cc
	now := c.nowUs
	rs := &c.rs
	if rs.newlyAckedSegs == 0 {
		return
	}
	if c.appLimited && int32(c.delivered-c.appLimitedTo) > 0 {
		c.appLimited = false
	}
	rs.totalDelivered = c.delivered
	rs.rtt = -1
	if rtt >= 0 {
		// The ts echo's sample, refined to the µs by the newest segment
		// sent once that this input acknowledged, unless the two
		// disagree by more than the ms clock's step (that segment's own
		// ACK was lost and a later una covered it).
		// Without a µs clock (a bare KCP) the ms sample stands, at least
		// 1 ms as always; with one, the two clocks are read at slightly
		// different moments, hence the wider tolerance, and a ms sample
		// of 0 that could not be refined says nothing.
		us, slack := int64(max(rtt, 1))*1000, int64(1000)
		if c.clockUs != nil {
			us, slack = int64(rtt)*1000, 2000
		}
		if rs.hasRttUs {
			if d := int64(now - rs.rttSentUs); d > 0 && d > us-slack && d < us+slack {
				us = d
			}
		}
		if us > 0 {
			rs.rtt = int32(us)
			r := uint32(us)
			if c.srttUs == 0 {
				c.srttUs = r
			} else {
				c.srttUs = uint32(int64(c.srttUs) + (int64(r)-int64(c.srttUs))/8)
			}
			if c.minRTTSeen == 0 || r < c.minRTTSeen {
				c.minRTTSeen = r
			}
		}
	}
	rs.srtt = int32(c.srttUs)
	rs.ackDelay = kcp.interval * 1000
	rs.ackEvery = kcp.mtu / IKCP_OVERHEAD
	rs.inflight = c.sentOut
	rs.una = kcp.sndUna
	if rs.hasPrior {
		rs.delivered = c.delivered - rs.priorDelivered
		// An interval shorter than the least RTT comes from ACKs bunched
		// together; the draft discards such samples.
		if c.minRTTSeen != 0 && rs.interval < c.minRTTSeen {
			rs.interval = 0
		} else {
			rs.deliveryRate = uint64(rs.delivered) * 1_000_000 / uint64(rs.interval)
			c.lastRate = rs.deliveryRate
		}
	}
	if c.ctl != nil {
		c.ctl.onAck(now, rs)
		kcp.ccApplyPace(now)
	}
}

// ccLoss tells the controller that seg is sent again by fast or early
// retransmission (in the flush ccNow began).
func (kcp *KCP) ccLoss(seg *segment) {
	if c := &kcp.cc; c.ctl != nil {
		c.ctl.onLoss(c.nowUs, seg.sn, len(seg.data)+IKCP_OVERHEAD, kcp.sndNxt)
		kcp.ccApplyPace(c.nowUs)
	}
}

// ccTimeout tells the controller that seg's RTO fired (in the flush ccNow
// began at ms time current; seg.xmit does not count this transmission
// yet). The first once-sent segment a flush times out is the episode's
// witness.
func (kcp *KCP) ccTimeout(seg *segment, current uint32) {
	if c := &kcp.cc; c.ctl != nil {
		if !c.rtoOpen {
			c.rtoOpen, c.rtoEnd = true, kcp.sndNxt
		}
		if seg.xmit == 1 && (!c.rtoArmed || c.rtoAt != current) {
			c.rtoSn, c.rtoAt, c.rtoArmed = seg.sn, current, true
		}
		c.ctl.onTimeout(c.nowUs, seg.sn, kcp.sndNxt)
		kcp.ccApplyPace(c.nowUs)
	}
}

// ccAckEcho sees an ACK of sn that echoes ts (our ms clock at the
// transmission it answers), before its una is applied: the first ACK of
// the episode's witness gives its verdict. Only the first ACK of that sn
// counts; a later one may answer the retransmission.
func (kcp *KCP) ccAckEcho(sn, ts, current uint32) {
	c := &kcp.cc
	if c.ctl == nil {
		return
	}
	if !c.echoed || int32(ts-c.echoMax) > 0 {
		c.echoMax, c.echoed = ts, true
	}
	if c.rtoArmed && sn == c.rtoSn {
		kcp.ccVerdict(int32(ts-c.rtoAt) < 0, current)
	}
}

// ccWitnessCovered runs once an input's una is applied (the una moves
// nowhere else). An una that passed the witness without its own ACK (a
// kcpx peer leaves out the ACKs its una covers but the last of a flush)
// still tells: on a path that keeps the order of datagrams, the peer
// acknowledges in the order they arrived, and had the retransmission
// (sent at rtoAt) arrived first, the last ACK of the peer's flush would
// echo it or something sent after it. An input whose newest echo predates
// the retransmission shows the first transmission arrived: the timeout
// was spurious. Otherwise it tells nothing, and the next flush that times
// segments out arms another witness.
//
// An episode whose segments are all acknowledged with no verdict ends
// here as real: left pending, the controller would keep its state from
// before the cut, and a spurious timeout long after would restore it.
func (kcp *KCP) ccWitnessCovered(current uint32) {
	c := &kcp.cc
	if c.ctl == nil {
		return
	}
	if c.rtoArmed && int32(kcp.sndUna-c.rtoSn) > 0 {
		if c.echoed && int32(c.echoMax-c.rtoAt) < 0 {
			kcp.ccVerdict(true, current)
			return
		}
		c.rtoArmed = false
	}
	if c.rtoOpen && int32(kcp.sndUna-c.rtoEnd) >= 0 {
		c.rtoOpen = false
		c.ctl.timeoutVerdict(c.nowUs, false)
	}
}

// ccVerdict closes the timeout episode with the witness's verdict.
//
// A spurious timeout means the RTT rose past the RTO. The timers of the
// segments still in flight on their first transmission were set under
// that RTO and would fire one after another as the delayed ACKs trickle
// in, each a new spurious timeout: they restart from now, as a single
// retransmission timer (Linux's) restarts on each ACK.
func (kcp *KCP) ccVerdict(spurious bool, current uint32) {
	c := &kcp.cc
	c.rtoOpen, c.rtoArmed = false, false
	c.ctl.timeoutVerdict(c.nowUs, spurious)
	kcp.ccApplyPace(c.nowUs)
	if !spurious {
		return
	}
	a, b := kcp.sndBuf.spans()
	for _, span := range [2][]segment{a, b} {
		for i := range span {
			seg := &span[i]
			if !seg.acked && seg.xmit == 1 && int32(seg.resendts-(current+seg.rto)) < 0 {
				seg.resendts = current + seg.rto
			}
		}
	}
}

// ccUnackedReset recounts the unacknowledged segments (after the send
// buffer was cleared).
func (kcp *KCP) ccUnackedReset() {
	kcp.cc.unacked, kcp.cc.queued, kcp.cc.sentOut = 0, 0, 0
}

// ---- KCP's own window (nc=0), unchanged from kcp-go ----

// growCwnd opens the congestion window after the una moved: one segment per
// ACKed datagram in slow start, about one segment per window above ssthresh.
func (kcp *KCP) growCwnd() {
	mss := kcp.mss
	if kcp.cwnd < kcp.ssthresh {
		kcp.cwnd++
		kcp.incr += mss
	} else {
		kcp.incr = max(kcp.incr, mss)
		kcp.incr += mss*mss/kcp.incr + mss/16
		if (kcp.cwnd+1)*mss <= kcp.incr {
			kcp.cwnd = (kcp.incr + mss - 1) / mss
		}
	}
	if kcp.cwnd > kcp.rmtWnd {
		kcp.cwnd = kcp.rmtWnd
		kcp.incr = kcp.rmtWnd * mss
	}
}

// shrinkCwnd is KCP's response to the retransmissions of one flush: fast
// (and early) ones halve the window to half of what is in flight, a timeout
// collapses it to one segment. cwnd is the window the flush used.
func (kcp *KCP) shrinkCwnd(cwnd uint32, fastOrEarly, lost uint64) {
	if fastOrEarly > 0 {
		inflight := kcp.sndNxt - kcp.sndUna
		kcp.ssthresh = max(inflight/2, IKCP_THRESH_MIN)
		kcp.cwnd = kcp.ssthresh + uint32(max(kcp.fastresend, 0))
		kcp.incr = kcp.cwnd * kcp.mss
	}
	if lost > 0 {
		kcp.ssthresh = max(cwnd/2, IKCP_THRESH_MIN)
		kcp.cwnd = 1
		kcp.incr = kcp.mss
	}
	if kcp.cwnd < 1 {
		kcp.cwnd = 1
		kcp.incr = kcp.mss
	}
}
