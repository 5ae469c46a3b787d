package kcp

import "math"

// A CUBIC controller (RFC 9438) over the core's segments and µs clock: slow
// start to the first loss, then the cubic window growth with the
// Reno-friendly region, β = 0.7, C = 0.4, fast convergence, at most one
// reduction per smoothed RTT (KCP reports each retransmitted segment, and
// one loss episode must count once), and a window of one segment after a
// retransmission timeout. It paces, as Linux does, at twice cwnd per
// smoothed RTT in slow start and 1.2 times above it.
//
// The window grows only while it bounds the sender (RFC 9438 section 5.8,
// Linux's tcp_is_cwnd_limited): in slow start up to twice the largest
// flight of the last round trip, above it while that flight reached it. A
// sender held back by the send window, the peer's window or the
// application leaves it where it is; grown regardless, it reached
// thousands of segments and each later reduction cut nothing the sender
// used. Time in which it did not grow (an idle spell, an application- or
// window-limited one) does not count in the growth epoch: the epoch start
// moves past it, as Linux moves it past an idle, so growth resumes on the
// curve where it stopped.

const (
	cubicBeta     = 0.7
	cubicC        = 0.4 // segments / s^3
	cubicInitCwnd = 10
	cubicMinCwnd  = 2
)

type cubic struct {
	seg       float64 // bytes of a full segment
	cwnd      float64 // segments
	ssthresh  float64
	wMax      float64 // window before the last reduction
	k         float64 // s from the epoch start to wMax
	epoch     uint64  // start of the current congestion-avoidance epoch
	inEpoch   bool
	wEst      float64 // Reno-friendly estimate
	cwndEpoch float64
	// A loss episode lasts until every segment sent before its cut is
	// acknowledged (recovering until una reaches recoverSn, the sndNxt of
	// the cut): the loss or timeout of such a segment belongs to it.
	recoverSn  uint32
	recovering bool
	srtt       int32  // µs
	minRtt     uint32 // µs

	// The flight the sender reached, for the cwnd-limited test: the most
	// segments in flight at a send in this round (a smoothed RTT from
	// roundStart) and in the previous one.
	flightPeak, prevPeak uint32
	roundStart           uint64
	// held: the window has not grown since heldSince (µs).
	held      bool
	heldSince uint64

	// The state before the first cut of a timeout whose verdict is
	// pending (saved), restored if the timeout proves spurious.
	prior cubicState
	saved bool
}

// cubicState is what a reduction changes.
type cubicState struct {
	cwnd, ssthresh, wMax, k, wEst, cwndEpoch float64
	epoch                                    uint64
	recoverSn                                uint32
	inEpoch, recovering                      bool
}

func (c *cubic) state() cubicState {
	return cubicState{c.cwnd, c.ssthresh, c.wMax, c.k, c.wEst, c.cwndEpoch, c.epoch, c.recoverSn, c.inEpoch, c.recovering}
}

func newCubic(segBytes uint32) *cubic {
	return &cubic{seg: float64(max(segBytes, 1)), cwnd: cubicInitCwnd, ssthresh: math.Inf(1)}
}

func (c *cubic) window() uint32 { return uint32(max(c.cwnd, cubicMinCwnd)) }
func (c *cubic) minRTT() uint32 { return c.minRtt }

func (c *cubic) pacingRate() uint64 {
	srtt := float64(100_000)
	if c.srtt > 0 {
		srtt = float64(c.srtt)
	}
	gain := 1.2
	if c.cwnd < c.ssthresh {
		gain = 2
	}
	return uint64(gain * c.cwnd * c.seg * 1e6 / srtt)
}

func (c *cubic) onSend(now uint64, _ uint32, _ int, _ bool, unacked uint32) {
	if now-c.roundStart >= uint64(c.rtt()) {
		c.prevPeak, c.flightPeak, c.roundStart = c.flightPeak, 0, now
	}
	c.flightPeak = max(c.flightPeak, unacked)
}

// rtt is the smoothed RTT in µs, 100 ms before the first sample.
func (c *cubic) rtt() int32 {
	if c.srtt > 0 {
		return c.srtt
	}
	return 100_000
}

// flight is the largest flight of this round and the last.
func (c *cubic) flight() uint32 { return max(c.flightPeak, c.prevPeak) }

// cwndLimited reports whether the window bounded the sender lately.
func (c *cubic) cwndLimited() bool {
	if c.cwnd < c.ssthresh {
		return c.cwnd < 2*float64(c.flight())
	}
	return c.flight() >= c.window()
}

// hold marks the start of a spell without growth.
func (c *cubic) hold(now uint64) {
	if !c.held {
		c.held, c.heldSince = true, now
	}
}

func (c *cubic) onAck(now uint64, rs *rateSample) {
	if rs.srtt > 0 {
		c.srtt = rs.srtt
	}
	if rs.rtt >= 0 && (c.minRtt == 0 || uint32(rs.rtt) < c.minRtt) {
		c.minRtt = max(uint32(rs.rtt), 1)
	}
	if c.recovering && int32(rs.una-c.recoverSn) >= 0 {
		c.recovering = false
	}
	acked := float64(rs.newlyAckedSegs)
	if acked == 0 || rs.appLimited || !c.cwndLimited() {
		c.hold(now) // no growth while the window is not what bounds the sender
		return
	}
	if c.held {
		c.held = false
		if c.inEpoch {
			c.epoch += now - c.heldSince
		}
	}
	if rs.inflight == 0 {
		c.hold(now) // the pipe is empty: what follows may be an idle spell
	}
	if c.cwnd < c.ssthresh {
		// at most twice the flight that let it grow
		c.cwnd = min(c.cwnd+acked, max(c.ssthresh, c.cwnd), max(2*float64(c.flight()), c.cwnd))
		if c.cwnd < c.ssthresh {
			return
		}
		acked = 0 // the rest waits for the next ACK, in congestion avoidance
	}
	if !c.inEpoch {
		c.inEpoch, c.epoch = true, now
		c.cwndEpoch = c.cwnd
		c.wMax = max(c.wMax, c.cwnd)
		c.k = math.Cbrt((c.wMax - c.cwndEpoch) / cubicC)
		c.wEst = c.cwnd
	}
	rtt := float64(max(c.srtt, 1)) / 1e6
	t := float64(now-c.epoch)/1e6 + rtt
	target := cubicC*math.Pow(t-c.k, 3) + c.wMax
	target = min(max(target, c.cwnd), 1.5*c.cwnd)
	// Reno-friendly region (RFC 9438 section 4.3)
	alpha := 3 * (1 - cubicBeta) / (1 + cubicBeta)
	if c.wEst >= c.wMax {
		alpha = 1
	}
	c.wEst += alpha * acked / c.cwnd
	if c.wEst > target {
		target = c.wEst
	}
	c.cwnd += (target - c.cwnd) / c.cwnd * acked
}

// reduce is the multiplicative decrease of one loss episode: sn is the
// segment found lost, sndNxt the next new sn. A segment sent before the
// last cut belongs to the episode that cut made (RFC 6582's recovery
// point, Linux's high_seq): its loss or timeout cuts nothing more. Bounded
// by time (an RTT after the cut), the segments of one flight whose timers
// fired one after another each cut again: in an outage ssthresh fell to
// 2 segments and W_max to 1, and the flow crawled back in congestion
// avoidance from there. No clock is involved, so a long idle cannot make
// an old episode look current.
func (c *cubic) reduce(sn, sndNxt uint32) bool {
	if c.recovering && int32(sn-c.recoverSn) < 0 {
		return false
	}
	c.recoverSn, c.recovering = sndNxt, true
	if c.cwnd < c.wMax {
		c.wMax = c.cwnd * (1 + cubicBeta) / 2 // fast convergence
	} else {
		c.wMax = c.cwnd
	}
	c.ssthresh = max(c.cwnd*cubicBeta, cubicMinCwnd)
	c.inEpoch = false
	return true
}

func (c *cubic) onLoss(_ uint64, sn uint32, _ int, sndNxt uint32) {
	if c.reduce(sn, sndNxt) {
		c.cwnd = c.ssthresh
		c.saved = false // a loss of its own: nothing before it to go back to
	}
}

func (c *cubic) onTimeout(_ uint64, sn uint32, sndNxt uint32) {
	prior := c.state()
	if c.reduce(sn, sndNxt) {
		c.cwnd = 1
		if !c.saved {
			c.prior, c.saved = prior, true
		}
	}
}

// timeoutVerdict undoes the cut of a spurious timeout (RFC 4015's
// response): the window and ssthresh go back to at least what they were,
// and the growth epoch resumes, as if the timeout had not fired.
func (c *cubic) timeoutVerdict(_ uint64, spurious bool) {
	if spurious && c.saved {
		p := c.prior
		cwnd, ssthresh := c.cwnd, c.ssthresh
		c.cwnd, c.ssthresh, c.wMax, c.k, c.wEst, c.cwndEpoch = p.cwnd, p.ssthresh, p.wMax, p.k, p.wEst, p.cwndEpoch
		c.epoch, c.recoverSn, c.inEpoch, c.recovering = p.epoch, p.recoverSn, p.inEpoch, p.recovering
		c.cwnd, c.ssthresh = max(c.cwnd, cwnd), max(c.ssthresh, ssthresh)
	}
	c.saved = false
}
