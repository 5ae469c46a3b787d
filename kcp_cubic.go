package kcp

import "math"

// A CUBIC controller (RFC 9438) over the core's segments and µs clock: slow
// start to the first loss, then the cubic window growth with the
// Reno-friendly region, β = 0.7, C = 0.4, fast convergence, at most one
// reduction per smoothed RTT (KCP reports each retransmitted segment, and
// one loss episode must count once), and a window of one segment after a
// retransmission timeout. It paces, as Linux does, at twice cwnd per
// smoothed RTT in slow start and 1.2 times above it.

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
	recovery  uint64 // no further reduction before this time
	srtt      int32  // µs
	minRtt    uint32 // µs
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

func (c *cubic) onSend(uint64, uint32, int, bool, uint32) {}

func (c *cubic) onAck(now uint64, rs *rateSample) {
	if rs.srtt > 0 {
		c.srtt = rs.srtt
	}
	if rs.rtt >= 0 && (c.minRtt == 0 || uint32(rs.rtt) < c.minRtt) {
		c.minRtt = max(uint32(rs.rtt), 1)
	}
	acked := float64(rs.newlyAckedSegs)
	if acked == 0 || rs.appLimited {
		return // RFC 9438 section 5.8: no growth while the window is not used
	}
	if c.cwnd < c.ssthresh {
		c.cwnd = min(c.cwnd+acked, max(c.ssthresh, c.cwnd))
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

// reduce is the multiplicative decrease of one loss episode. The recovery
// time is on the 64-bit clock: compared by int32 difference, a recovery
// time 35.8 minutes old read as still ahead and swallowed every loss for
// the next 35.8 minutes.
func (c *cubic) reduce(now uint64) bool {
	if now < c.recovery {
		return false
	}
	c.recovery = now + uint64(max(c.srtt, 1))
	if c.cwnd < c.wMax {
		c.wMax = c.cwnd * (1 + cubicBeta) / 2 // fast convergence
	} else {
		c.wMax = c.cwnd
	}
	c.ssthresh = max(c.cwnd*cubicBeta, cubicMinCwnd)
	c.inEpoch = false
	return true
}

func (c *cubic) onLoss(now uint64, _ uint32, _ int, _ uint32) {
	if c.reduce(now) {
		c.cwnd = c.ssthresh
	}
}

func (c *cubic) onTimeout(now uint64, _ uint32, _ uint32) {
	if c.reduce(now) {
		c.cwnd = 1
	}
}
