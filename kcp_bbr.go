package kcp

// A BBR controller after the IETF draft (draft-ietf-ccwg-bbr, BBRv3), fitted
// to KCP: the model is the bottleneck bandwidth (the largest delivery rate
// of the last bbrBwRounds round trips) and the minimum RTT (the least ts-echo
// RTT of the last 10 s); the sender paces at gain × bandwidth and keeps at
// most cwnd_gain × BDP unacknowledged.
//
// States as in the draft: Startup (pacing gain 2.77, until the bandwidth
// stops growing by 25% for three rounds), Drain (gain 0.35, until what is in
// flight fits the BDP), ProbeBW (a cycle of Up at 1.25, Down at 0.75 and
// six Cruise phases at 1.0, each about one min RTT long, entered at a
// random Cruise phase so flows do not probe in step), and ProbeRTT (every
// 5 s without a lower RTT: cwnd at half the BDP for 200 ms and a round, so
// flows sharing a bottleneck see its empty-queue RTT).
//
// Where it departs from the draft: loss does not bound the model. BBRv3
// cuts inflight_hi when a round loses more than 2%, which makes a random
// 5% loss look like congestion; here only the delivery rate (which random
// loss lowers by the loss rate, not more) and the RTT drive it, and a
// retransmission timeout leaves the model alone (KCP's per-segment RTO
// already backs off the segment). The draft's ack-aggregation estimate
// (extra_acked) is kept and matters more than in TCP: a KCP receiver ACKs
// once per flush interval (10..100 ms), which on a short path is many RTTs.
//
// Without loss as a signal, flows sharing a bottleneck need another one:
// the queue. When even the least RTT of a whole round stayed above the min
// RTT by a tenth (a standing queue, which only flows whose estimates add
// up to more than the link keep up), the flow caps its bandwidth estimate at
// what it delivered in that round, cruises at 0.9, and keeps no more than
// 1.1 BDP plus 4 segments in flight (a standing queue keeps the pipe full
// through bunched ACKs, so extra_acked is not added then); the 4 segments are the same for every
// flow, so each keeps about as much queued, which in a FIFO means as much
// bandwidth (the principle of TCP Vegas). While no queue stands, the
// estimate grows by half a segment per round trip, again the same for all.
// This additive increase and multiplicative decrease is what brings four
// flows to a Jain index above 0.95 within seconds; plain BBRv1 dynamics
// leave flows that are window-limited where they started. The same signal
// ends Startup (a delay-based exit, so a drop-tail buffer need not overflow
// first). A queue that stands for more than bbrYieldRounds rounds in a row
// despite the cuts is kept by a sender that ignores delay (a loss-based TCP
// filling the buffer); the flow then stops yielding and competes. The min
// RTT then says nothing about the rounds (that sender's queue is in every
// one), so windows and probing phases take the round's least RTT instead;
// rate samples are held within 1/8 of what the last whole round delivered
// (bunched ACKs read high, and a max filter would keep them), and a loss
// cuts the estimate to 0.7 once a round, as CUBIC cuts its window. Beside
// kernel CUBIC through a tbf bottleneck this kept 0.45..0.65 of the link on
// the ms clock (docs/PERFORMANCE.md has the µs clock's less steady figures).
//
// Times are the core's µs clock, so the model holds on paths whose round
// trip is well under a ms (loopback, a LAN) as on long ones. Its stamps are
// 64-bit (kcp_cc.go): on a 32-bit clock compared by int32 difference, a
// stamp older than 35.8 minutes read as recent, and a flow back from such
// an idle kept a stale min RTT (of the path before a change, say) for up to
// 35.8 more minutes. On a path
// shorter than the peer's ACK interval the peer's delayed ACK, not the
// path, paces the rounds; winRtt, the filter slots (updateRound) and
// checkFullPipe allow for it.

const (
	bbrStartupGain    = 2.77       // Startup pacing gain (4 ln 2)
	bbrDrainGain      = 0.35       // Drain pacing gain
	bbrCwndGain       = 2.0        // cwnd gain in every state but ProbeRTT
	bbrBwRounds       = 10         // rounds the bandwidth max filter spans
	bbrMinRTTWindow   = 10_000_000 // µs the min RTT filter spans
	bbrProbeRTTEvery  = 5_000_000  // µs without a lower RTT before ProbeRTT
	bbrProbeRTTTime   = 200_000    // µs ProbeRTT holds the small window
	bbrInitCwnd       = 10         // segments before the first bandwidth sample
	bbrMinCwnd        = 4          // segments
	bbrPacingMargin   = 0.99       // pace 1% below the estimate, as the draft
	bbrQueueDrainGain = 0.9        // Cruise gain while a standing queue persists
	bbrQueueCwndGain  = 1.1        // cwnd gain while a standing queue persists
	bbrQueueSegs      = 4          // segments each flow may keep queued beyond that
	bbrYieldRounds    = 16         // rounds a standing queue is answered by draining
	bbrCompeteBeta    = 0.7        // estimate kept on a loss while competing (CUBIC's beta)
)

const (
	bbrStartup = iota
	bbrDrain
	bbrProbeBW
	bbrProbeRTT
)

// bbrCycle is the ProbeBW pacing gain per phase: Up, Down, then Cruise.
var bbrCycle = [8]float64{1.25, 0.75, 1, 1, 1, 1, 1, 1}

type bbr struct {
	seg uint64 // bytes of a full segment (the KCP mtu)
	rng uint64 // xorshift state for the random Cruise entry

	state      uint8
	pacingGain float64
	cwndGain   float64
	cwnd       uint32 // segments
	priorCwnd  uint32 // saved on entering ProbeRTT
	pacing     uint64 // bytes/s

	// bandwidth model: per-round maxima of the last bbrBwRounds rounds
	bwSlot             [bbrBwRounds]uint64
	measSlot           [bbrBwRounds]uint64 // the same, of measured rates only
	bw                 uint64              // max over bwSlot, bytes/s
	rounds             uint64              // filter slots begun (see updateRound)
	slotStamp          uint64              // when the current slot began
	nextRoundDelivered uint32
	roundStamp         uint64 // when the current round started
	roundDelivered     uint32 // the delivered count then
	roundStart         bool
	slotStart          bool // this round began a filter slot

	// RTT model
	minRtt           uint32 // µs; 0 before a sample
	minRttStamp      uint64
	probeRttMin      uint32 // least RTT of the last bbrProbeRTTEvery µs
	probeRttMinStamp uint64
	probeRttDone     uint64 // when ProbeRTT may end; 0 until it holds the small window
	probeRttRound    bool   // a round passed in ProbeRTT
	roundMinRtt      uint32 // least RTT sample of the current round (0: none)
	lastRoundMinRtt  uint32 // least RTT sample of the last complete round
	queueRounds      int    // rounds in a row that ended with a standing queue
	lossCut          uint64 // when competing last cut the estimate for a loss
	competeCap       uint64 // while competing: bound on rate samples, bytes/s (0: none)
	srtt             int32  // µs
	ackDelay         uint32 // µs the peer may hold an ACK (rateSample.ackDelay)
	ackEvery         uint32 // segments after which the peer ACKs at once (rateSample.ackEvery)

	// Startup
	fullBw      uint64
	fullBwCount int
	filledPipe  bool

	// ProbeBW
	cycleIdx   int
	cycleStamp uint64

	// ACK aggregation (the draft's extra_acked): bytes ACKed beyond what
	// the bandwidth explains, max over the last bbrBwRounds rounds
	extraSlot    [bbrBwRounds]uint64
	extraAcked   uint64
	aggStamp     uint64 // start of the current aggregation epoch
	aggDelivered uint64 // bytes ACKed in it
}

func newBBR(segBytes uint32, seed uint64) *bbr {
	b := &bbr{seg: uint64(max(segBytes, 1)), rng: seed | 1, cwnd: bbrInitCwnd}
	b.enterStartup()
	b.setPacing()
	return b
}

func (b *bbr) rand() uint64 {
	b.rng ^= b.rng << 13
	b.rng ^= b.rng >> 7
	b.rng ^= b.rng << 17
	return b.rng
}

func (b *bbr) window() uint32                           { return b.cwnd }
func (b *bbr) pacingRate() uint64                       { return b.pacing }
func (b *bbr) minRTT() uint32                           { return b.minRtt }
func (b *bbr) onSend(uint64, uint32, int, bool, uint32) {}

// onLoss: random loss lowers the delivery rate by its own share, which the
// model sees; it takes no other action (see the file comment), except
// while the flow competes with a sender that keeps a queue standing. That
// sender is loss-based: it backs off when the buffer overflows and takes
// the room back slowly, while a max filter ratchets this flow's estimate
// up to whatever the room let through. So while competing, a loss cuts the
// estimate to bbrCompeteBeta of itself, at most once a round, as that
// sender cuts its window; the probing phases take it back up.
func (b *bbr) onLoss(now uint64, _ uint32, _ int, _ uint32) {
	if b.state != bbrProbeBW || !b.competing() || now-b.lossCut < uint64(b.roundRtt()) {
		return
	}
	b.lossCut = now
	limit := uint64(float64(b.bw) * bbrCompeteBeta)
	for i := range b.bwSlot {
		b.bwSlot[i] = min(b.bwSlot[i], limit)
		b.measSlot[i] = min(b.measSlot[i], limit)
	}
	b.bw = min(b.bw, limit)
	b.competeCap = limit // until the round ends
	b.setPacing()
}

// onTimeout leaves the model alone: KCP backs off the segment's RTO, and
// the delivery rate falls by itself if the path has really slowed.
func (b *bbr) onTimeout(uint64, uint32, uint32) {}

// timeoutVerdict has nothing to undo: a timeout changed nothing.
func (b *bbr) timeoutVerdict(uint64, bool) {}

// bdp is gain × bandwidth × min RTT (at least the peer's ACK delay, see
// winRtt), in segments (the initial window before a model exists).
func (b *bbr) bdp(gain float64) uint32 { return b.bdpAt(gain, b.winRtt(b.minRtt)) }

// winRtt is the round-trip time windows and probing phases are sized by:
// rtt, plus when rtt is shorter than the peer's flush interval (loopback,
// a LAN) the time the peer holds an ACK (ackWait). On such a path the ACK,
// not the path, sets the pace of the rounds: a window of the min RTT's BDP
// alone would hold the flow to a few segments per ACK, which the peer
// sends late, so that the window never grows. (A longer rtt, such as the
// round of a flow that competes beside a standing queue, holds the ACK
// delay already.)
func (b *bbr) winRtt(rtt uint32) uint32 {
	if rtt >= b.ackDelay {
		return rtt
	}
	return rtt + b.ackWait()
}

// ackWait is how long a KCP receiver holds the ACK of a segment that
// arrives at the estimated rate: until its next flush (the interval), or
// until it has an mtu of ACKs to send (kcpx's receivers; the segments of
// that many ACKs arrive at the rate), whichever comes first.
func (b *bbr) ackWait() uint32 {
	if b.bw == 0 {
		return b.ackDelay
	}
	return uint32(min(uint64(b.ackDelay), uint64(b.ackEvery)*b.seg*1_000_000/b.bw))
}

// bdpAt is gain × bandwidth × rtt (µs), in segments.
func (b *bbr) bdpAt(gain float64, rtt uint32) uint32 {
	if b.bw == 0 || rtt == 0 {
		return bbrInitCwnd
	}
	bytes := float64(b.bw) * float64(rtt) / 1e6 * gain
	return uint32(bytes/float64(b.seg)) + 1
}

func (b *bbr) onAck(now uint64, rs *rateSample) {
	b.srtt = rs.srtt
	b.ackDelay, b.ackEvery = rs.ackDelay, rs.ackEvery
	b.updateRound(now, rs)
	b.updateBw(rs)
	b.updateMinRtt(now, rs)
	b.updateAckAggregation(now, rs)
	switch b.state {
	case bbrStartup:
		b.checkFullPipe(rs)
		if b.filledPipe {
			b.state, b.pacingGain = bbrDrain, bbrDrainGain
		}
	case bbrProbeBW:
		b.advanceCycle(now, rs)
	}
	if b.state == bbrDrain && rs.inflight <= b.bdp(1) {
		b.enterProbeBW(now)
	}
	b.checkProbeRTT(now, rs)
	b.setPacing()
	b.setCwnd(rs)
}

func (b *bbr) updateRound(now uint64, rs *rateSample) {
	b.roundStart, b.slotStart = false, false
	if rs.hasPrior && int32(rs.priorDelivered-b.nextRoundDelivered) >= 0 {
		b.nextRoundDelivered = rs.totalDelivered
		var roundRate uint64 // what the last round delivered over its length
		if b.roundStamp != 0 && now != b.roundStamp {
			roundRate = uint64(rs.totalDelivered-b.roundDelivered) * 1_000_000 / (now - b.roundStamp)
		}
		b.roundStamp, b.roundDelivered = now, rs.totalDelivered
		b.roundStart = true
		b.lastRoundMinRtt, b.roundMinRtt = b.roundMinRtt, 0
		if b.minRtt >= b.ackDelay || now-b.slotStamp >= uint64(b.ackDelay) {
			// A new slot of the filters. Rounds shorter than the
			// peer's ACK interval share one until it has passed: else
			// a path of a tenth of a ms would keep the bandwidth of the
			// last ms only, and one late wake-up of the sender (a busy
			// machine) would wipe its estimate.
			b.rounds++
			b.slotStamp, b.slotStart = now, true
			b.bwSlot[b.rounds%bbrBwRounds] = 0
			b.measSlot[b.rounds%bbrBwRounds] = 0
			b.extraSlot[b.rounds%bbrBwRounds] = 0
		}
		prev := b.bwSlot[(b.rounds+bbrBwRounds-1)%bbrBwRounds]
		if b.standingQueue() {
			b.queueRounds++
		} else {
			b.queueRounds = 0
		}
		b.competeCap = 0
		if b.state == bbrProbeBW && b.competing() && roundRate > 0 {
			// Beside a sender that keeps the buffer full, single
			// samples read high (ACKs bunched over a flush interval,
			// a token bucket's burst) and a max filter keeps the
			// highest: hold the estimate, and the samples of this
			// round, within a probing gain of what the last whole
			// round delivered.
			b.competeCap = roundRate + roundRate/8
			for i := range b.bwSlot {
				b.bwSlot[i] = min(b.bwSlot[i], b.competeCap)
			}
		} else if b.state == bbrProbeBW && b.yielding() && prev > 0 {
			// The link stayed saturated for a whole round, so the last
			// round's delivery rate is this flow's share of it now; older,
			// higher maxima are another sharing's and would keep the
			// queue standing.
			for i := range b.bwSlot {
				b.bwSlot[i] = min(b.bwSlot[i], prev)
			}
		}
		if b.state == bbrProbeBW && !b.yielding() && b.cycleIdx >= 2 && b.minRtt != 0 && b.bw != 0 && !rs.appLimited {
			// No standing queue: grow the estimate by half a segment per
			// round trip, the same for every flow. With the cut above
			// this is additive increase, multiplicative decrease, which
			// moves flows sharing a bottleneck toward equal shares. The
			// step is half a segment per round of this round's length
			// (which a queue another sender keeps makes longer than the
			// min RTT), and the increase builds on what was measured, not
			// on earlier increases: a flow its window holds back would
			// otherwise raise the estimate without bound.
			// While competing, every round's share is in the FIFO's
			// hands, so the increase starts from the measured rate
			// itself, else a round's probe would compound.
			rtt := max(b.minRtt, b.lastRoundMinRtt)
			base := b.measured()
			if !b.competing() {
				base += base / 4
			}
			b.bwSlot[b.rounds%bbrBwRounds] = min(b.bw, base) + b.seg*500_000/uint64(rtt)
		}
		b.bw = 0
		for _, v := range b.bwSlot {
			b.bw = max(b.bw, v)
		}
	}
}

// updateAckAggregation estimates how many bytes arrive acknowledged in one
// bunch beyond what the bandwidth accounts for: a KCP receiver ACKs once
// per flush interval (10..100 ms), which on a short path is many RTTs, so
// the window must hold that much more for the pacer to keep going.
func (b *bbr) updateAckAggregation(now uint64, rs *rateSample) {
	if b.bw == 0 {
		return
	}
	elapsed := min(now-b.aggStamp, bbrMinRTTWindow) // a long idle must not overflow
	expected := b.bw * elapsed / 1_000_000
	if b.aggStamp == 0 || b.aggDelivered <= expected {
		b.aggStamp, b.aggDelivered, expected = now, 0, 0
	}
	b.aggDelivered += uint64(rs.newlyAcked)
	extra := min(b.aggDelivered-expected, uint64(b.cwnd)*b.seg)
	slot := &b.extraSlot[b.rounds%bbrBwRounds]
	*slot = max(*slot, extra)
	b.extraAcked = 0
	for _, v := range b.extraSlot {
		b.extraAcked = max(b.extraAcked, v)
	}
}

func (b *bbr) updateBw(rs *rateSample) {
	if rs.interval == 0 || rs.deliveryRate == 0 {
		return
	}
	// An app-limited sample shows only what the application offered: it
	// counts only when it beats what this round's slot holds (as the
	// draft's filter, whose new slot starts empty). Compared with the
	// whole estimate, it would leave the slots of an app-limited stretch
	// empty, and once they were all empty the estimate would be gone.
	if rs.appLimited && rs.deliveryRate < b.bwSlot[b.rounds%bbrBwRounds] {
		return
	}
	rate := rs.deliveryRate
	if b.competeCap != 0 {
		rate = min(rate, b.competeCap)
	}
	slot := &b.bwSlot[b.rounds%bbrBwRounds]
	*slot = max(*slot, rate)
	meas := &b.measSlot[b.rounds%bbrBwRounds]
	*meas = max(*meas, rate)
	b.bw = 0
	for _, v := range b.bwSlot {
		b.bw = max(b.bw, v)
	}
}

// measured is the largest delivery rate measured in the last bbrBwRounds
// rounds, bytes/s.
func (b *bbr) measured() uint64 {
	m := uint64(0)
	for _, v := range b.measSlot {
		m = max(m, v)
	}
	return m
}

func (b *bbr) updateMinRtt(now uint64, rs *rateSample) {
	expired := now-b.probeRttMinStamp > bbrProbeRTTEvery
	if rs.rtt >= 0 {
		rtt := max(uint32(rs.rtt), 1)
		if b.roundMinRtt == 0 || rtt < b.roundMinRtt {
			b.roundMinRtt = rtt
		}
		if b.probeRttMin == 0 || rtt < b.probeRttMin || expired {
			b.probeRttMin, b.probeRttMinStamp = rtt, now
		}
	}
	if b.probeRttMin != 0 && (b.minRtt == 0 || b.probeRttMin < b.minRtt || now-b.minRttStamp > bbrMinRTTWindow) {
		b.minRtt, b.minRttStamp = b.probeRttMin, b.probeRttMinStamp
	}
}

func (b *bbr) enterStartup() {
	b.state, b.pacingGain, b.cwndGain = bbrStartup, bbrStartupGain, bbrCwndGain
}

// checkFullPipe ends Startup once three filter slots (rounds; see
// updateRound) in a row did not grow the bandwidth by a quarter
// (app-limited ones do not count), or, on a path at least as long as the
// peer's ACK interval, a round kept a standing queue.
func (b *bbr) checkFullPipe(rs *rateSample) {
	// Counted per filter slot: on a path shorter than the peer's ACK
	// interval a round may end before the ACKs of its growth came back.
	if b.filledPipe || !b.slotStart || rs.appLimited {
		return
	}
	if b.standingQueue() && b.minRtt >= b.ackDelay {
		// A queue that lasted a whole round: the pipe is full already,
		// whatever the bandwidth did (a delay signal, so random loss
		// cannot end Startup early, and a drop-tail buffer need not
		// overflow before it ends). On a path shorter than the peer's
		// ACK interval a small Startup window is ACKed on the peer's
		// timer, late by up to the interval and more on a busy
		// machine, so the delay says nothing yet: the bandwidth's
		// plateau alone ends Startup there.
		b.filledPipe = true
		return
	}
	if b.bw >= b.fullBw+b.fullBw/4 {
		b.fullBw, b.fullBwCount = b.bw, 0
		return
	}
	b.fullBwCount++
	if b.fullBwCount >= 3 {
		b.filledPipe = true
	}
}

func (b *bbr) enterProbeBW(now uint64) {
	b.state, b.cwndGain = bbrProbeBW, bbrCwndGain
	b.cycleIdx = 2 + int(b.rand()%6) // a random Cruise phase
	b.cycleStamp = now
	b.pacingGain = bbrCycle[b.cycleIdx]
}

// advanceCycle moves to the next ProbeBW phase after about one min RTT:
// Up lasts until what is in flight reached 1.25 BDP (at most three min
// RTTs), Down ends early once the queue it built is drained.
func (b *bbr) advanceCycle(now uint64, rs *rateSample) {
	rtt := b.winRtt(b.roundRtt())
	elapsed := now-b.cycleStamp > uint64(rtt)
	next := elapsed
	switch b.cycleIdx {
	case 0:
		next = elapsed && (rs.inflight >= b.bdpAt(1.25, rtt) || now-b.cycleStamp > 3*uint64(rtt))
	case 1:
		next = elapsed || rs.inflight <= b.bdpAt(1, rtt)
	}
	if next {
		b.cycleIdx = (b.cycleIdx + 1) % len(bbrCycle)
		b.cycleStamp = now
	}
	b.pacingGain = bbrCycle[b.cycleIdx]
	if b.cycleIdx >= 2 && b.yielding() {
		b.pacingGain = bbrQueueDrainGain
	}
}

// standingQueue reports that even the least RTT of the last whole round was
// well above the min RTT: a queue that did not drain for a round, which
// only flows whose estimates add up to more than the bottleneck keep up
// (the max filters of flows sharing it overlap). Cruising below the
// estimate then drains it; all flows see the same queue, so each gives up
// the same share.
// yielding reports that the flow answers a standing queue by draining it:
// only for bbrYieldRounds rounds in a row. A queue that outlives that is
// kept by a sender that does not react to delay (a loss-based TCP filling
// the buffer); yielding further would hand it the link, so the flow
// competes as plain BBR until a round passes without a standing queue.
func (b *bbr) yielding() bool {
	return b.standingQueue() && b.queueRounds <= bbrYieldRounds
}

// roundRtt is the RTT the model's rounds take: the min RTT, or while the
// flow competes with a sender that keeps a queue standing, the least RTT
// of the last round. That sender's queue hides the min RTT from every
// round trip; a window of the min RTT's BDP would hold this flow to a
// fraction of its share, and gain phases a min RTT long would end before
// their ACKs could show anything.
func (b *bbr) roundRtt() uint32 {
	if b.competing() {
		return max(b.minRtt, b.lastRoundMinRtt)
	}
	return b.minRtt
}

// competing reports that a standing queue outlived bbrYieldRounds: a
// sender that ignores delay keeps it, and the flow competes as plain BBR.
func (b *bbr) competing() bool {
	return b.standingQueue() && b.queueRounds > bbrYieldRounds
}

// standingQueue is described above yielding: the round's least RTT above
// the model's min RTT by more than max(minRTT/10, 2 ms). Widening that by
// the peer's ACK hold time (ackWait, up to its whole flush interval) on
// short paths hid a real 20 Mbit/s tbf queue from the test: beside TCP
// CUBIC BBR's share then swung 0.17..0.74 from run to run, against
// 0.47..0.69 without it, and loopback sinks keep ~100 % of nc=1 either way.
func (b *bbr) standingQueue() bool {
	slack := max(b.minRtt/10, 2000)
	return b.lastRoundMinRtt != 0 && b.minRtt != 0 && b.lastRoundMinRtt > b.minRtt+slack
}

func (b *bbr) probeRttCwnd() uint32 { return max(b.bdp(0.5), bbrMinCwnd) }

func (b *bbr) checkProbeRTT(now uint64, rs *rateSample) {
	if b.state != bbrProbeRTT && b.probeRttMin != 0 && now-b.probeRttMinStamp > bbrProbeRTTEvery {
		b.state, b.pacingGain, b.cwndGain = bbrProbeRTT, 1, 1
		b.priorCwnd = max(b.priorCwnd, b.cwnd)
		b.probeRttDone = 0
	}
	if b.state != bbrProbeRTT {
		return
	}
	switch {
	case b.probeRttDone == 0 && rs.inflight <= b.probeRttCwnd():
		b.probeRttDone = max(now+bbrProbeRTTTime, 1)
		b.probeRttRound = false
		b.nextRoundDelivered = rs.totalDelivered
	case b.probeRttDone != 0:
		if b.roundStart {
			b.probeRttRound = true
		}
		if b.probeRttRound && now >= b.probeRttDone {
			b.probeRttMinStamp = now
			b.cwnd = max(b.cwnd, b.priorCwnd)
			b.priorCwnd = 0
			if b.filledPipe {
				b.enterProbeBW(now)
			} else {
				b.enterStartup()
			}
		}
	}
}

func (b *bbr) setPacing() {
	if b.bw == 0 {
		rtt := uint64(100_000)
		if b.srtt > 0 {
			rtt = uint64(b.srtt)
		}
		b.pacing = uint64(b.pacingGain * float64(uint64(b.cwnd)*b.seg*1_000_000/rtt))
		return
	}
	rate := uint64(b.pacingGain * bbrPacingMargin * float64(b.bw))
	// In Startup the rate only grows, as the draft's filled-pipe rule.
	if b.state == bbrStartup && !b.filledPipe && rate < b.pacing {
		return
	}
	b.pacing = max(rate, 1)
}

func (b *bbr) setCwnd(rs *rateSample) {
	if b.state == bbrProbeRTT {
		b.cwnd = b.probeRttCwnd()
		return
	}
	gain := b.cwndGain
	if b.state == bbrProbeBW && b.yielding() {
		gain = bbrQueueCwndGain
	}
	rtt := b.minRtt
	if b.state == bbrProbeBW {
		rtt = b.roundRtt()
	}
	target := max(b.bdpAt(gain, b.winRtt(rtt)), bbrMinCwnd)
	if gain == bbrQueueCwndGain {
		// A queue stands, so the pipe stays full through bunched ACKs:
		// only the per-flow allowance goes on top.
		target += bbrQueueSegs
	} else {
		target += uint32(b.extraAcked / b.seg)
	}
	switch {
	case b.filledPipe:
		b.cwnd = min(b.cwnd+rs.newlyAckedSegs, target)
	case b.cwnd < target:
		// Startup grows by what was delivered while below the target.
		b.cwnd += rs.newlyAckedSegs
	}
	b.cwnd = max(b.cwnd, bbrMinCwnd)
}
