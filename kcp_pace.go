package kcp

// Pacing of the core's output (UDPSession.SetRateLimit): a token bucket
// over the core's clock, consulted by flushData before it releases a
// segment.

// setPace limits what flush releases to rate bytes per second, each datagram
// that carries data costing its length plus extra (what the layers below
// add); rate 0 turns pacing off. The bucket holds 20 ms of the rate, at
// least 4 full datagrams, and starts full. A congestion controller's rate,
// when one is in use, is combined with it by ccApplyPace.
func (kcp *KCP) setPace(current, rate uint32, extra int) {
	kcp.cc.userPace = rate
	kcp.paceRate = rate
	kcp.paceExtra = int64(extra)
	kcp.paceBurst = max(int64(rate)*20, 4*(int64(kcp.mtu)+kcp.paceExtra)*1000)
	kcp.paceTokens = kcp.paceBurst
	kcp.paceLast = current
	if kcp.cc.ctl != nil {
		kcp.cc.ccPace = 0
		kcp.ccApplyPace(current)
	}
}

// ccApplyPace sets the pacer from the controller's rate, capped by the
// user's (setPace) rate. With a controller the bucket holds 2 ms of the
// rate, at least 4 full datagrams: bursts small enough not to fill a
// bottleneck's buffer, large enough for GSO and for a ms timer to keep up.
// Tokens already earned are kept. In the legacy modes the user's pacer is
// restored as setPace left it.
func (kcp *KCP) ccApplyPace(current uint32) {
	if kcp.cc.ctl == nil {
		if kcp.cc.ccPace != 0 || kcp.paceRate != kcp.cc.userPace {
			kcp.cc.ccPace = 0
			kcp.setPace(current, kcp.cc.userPace, int(kcp.paceExtra))
		}
		return
	}
	r := max(kcp.cc.ctl.pacingRate(), 1)
	if r == kcp.cc.ccPace {
		return
	}
	kcp.cc.ccPace = r
	if u := uint64(kcp.cc.userPace); u != 0 {
		r = min(r, u)
	}
	r = min(r, 1<<32-1)
	kcp.paceRefill(current)
	if kcp.paceRate == 0 {
		kcp.paceLast = current
		kcp.paceTokens = 0
	}
	kcp.paceRate = uint32(r)
	kcp.paceBurst = max(int64(r)*2, 4*(int64(kcp.mtu)+kcp.paceExtra)*1000)
	kcp.paceTokens = min(kcp.paceTokens, kcp.paceBurst)
}

// paceTokensAt is what the bucket holds at time current (milli-bytes).
func (kcp *KCP) paceTokensAt(current uint32) int64 {
	t := kcp.paceTokens
	if d := int32(current - kcp.paceLast); d > 0 {
		t = min(kcp.paceBurst, t+int64(d)*int64(kcp.paceRate))
	}
	return t
}

// paceRefill adds the tokens earned since the last refill.
func (kcp *KCP) paceRefill(current uint32) {
	if kcp.paceRate == 0 {
		return
	}
	kcp.paceTokens = kcp.paceTokensAt(current)
	kcp.paceLast = current
}

// paceOpen reports whether the pacer lets another segment out after the n
// bytes already assembled (and not yet charged).
func (kcp *KCP) paceOpen(n int) bool {
	return kcp.paceRate == 0 || kcp.paceTokens-int64(n)*1000 > 0
}

// paceWait is the ms until the pacer lets a segment out at time current (0:
// now), pending bytes being charged first. It does not refill.
func (kcp *KCP) paceWait(current uint32, pending int) uint32 {
	if kcp.paceRate == 0 {
		return 0
	}
	tokens := kcp.paceTokensAt(current) - int64(pending)*1000
	if tokens > 0 {
		return 0
	}
	return uint32(-tokens/int64(kcp.paceRate)) + 1
}
