package kcp

// Pacing of the core's output (UDPSession.SetRateLimit): a token bucket
// over the core's µs clock (usAt, 64 bits: a bucket idle for more than
// 35.8 minutes refills, where an int32 difference read the idle as
// negative and left it as it was), consulted by flushData before it
// releases a segment. Tokens are counted in micro-bytes, so a µs of a rate
// of r bytes/s earns r of them; a bare KCP, whose µs clock is its ms clock
// times 1000, paces exactly as it did over the ms clock.

// setPace limits what flush releases to rate bytes per second, each datagram
// that carries data costing its length plus extra (what the layers below
// add); rate 0 turns pacing off. current is the ms clock. The bucket holds
// 20 ms of the rate, at least 4 full datagrams, and starts full. A
// congestion controller's rate, when one is in use, is combined with it by
// ccApplyPace.
func (kcp *KCP) setPace(current, rate uint32, extra int) {
	kcp.setPaceUs(kcp.usAt(current), rate, extra)
}

// setPaceUs is setPace at µs time nowUs.
func (kcp *KCP) setPaceUs(nowUs uint64, rate uint32, extra int) {
	kcp.cc.userPace = rate
	kcp.paceRate = rate
	kcp.paceExtra = int64(extra)
	kcp.paceBurst = max(int64(rate)*20_000, 4*(int64(kcp.mtu)+kcp.paceExtra)*1_000_000)
	kcp.paceTokens = kcp.paceBurst
	kcp.paceLast = nowUs
	if kcp.cc.ctl != nil {
		kcp.cc.ccPace = 0
		kcp.ccApplyPace(nowUs)
	}
}

// ccApplyPace sets the pacer from the controller's rate at µs time nowUs,
// capped by the user's (setPace) rate. With a controller the bucket holds
// 2 ms of the rate, at least 4 full datagrams: bursts small enough not to
// fill a bottleneck's buffer, large enough for GSO and for a ms timer to
// keep up. Tokens already earned are kept. In the legacy modes the user's
// pacer is restored as setPace left it.
func (kcp *KCP) ccApplyPace(nowUs uint64) {
	if kcp.cc.ctl == nil {
		if kcp.cc.ccPace != 0 || kcp.paceRate != kcp.cc.userPace {
			kcp.cc.ccPace = 0
			kcp.setPaceUs(nowUs, kcp.cc.userPace, int(kcp.paceExtra))
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
	kcp.paceRefill(nowUs)
	if kcp.paceRate == 0 {
		kcp.paceLast = nowUs
		kcp.paceTokens = 0
	}
	kcp.paceRate = uint32(r)
	kcp.paceBurst = max(int64(r)*2_000, 4*(int64(kcp.mtu)+kcp.paceExtra)*1_000_000)
	kcp.paceTokens = min(kcp.paceTokens, kcp.paceBurst)
}

// paceTokensAt is what the bucket holds at µs time nowUs (micro-bytes).
// A time before the last refill (check asking about a ms the clock has
// passed) earns nothing.
func (kcp *KCP) paceTokensAt(nowUs uint64) int64 {
	t := kcp.paceTokens
	if nowUs > kcp.paceLast && kcp.paceRate > 0 {
		d := nowUs - kcp.paceLast
		if d > uint64((kcp.paceBurst-t)/int64(kcp.paceRate)) {
			return kcp.paceBurst // full (and d*rate could overflow)
		}
		t = min(kcp.paceBurst, t+int64(d)*int64(kcp.paceRate))
	}
	return t
}

// paceRefill adds the tokens earned by µs time nowUs.
func (kcp *KCP) paceRefill(nowUs uint64) {
	if kcp.paceRate == 0 {
		return
	}
	kcp.paceTokens = kcp.paceTokensAt(nowUs)
	kcp.paceLast = nowUs
}

// paceCharge takes the cost of a datagram of n bytes from the bucket.
func (kcp *KCP) paceCharge(n int) {
	kcp.paceTokens -= (int64(n) + kcp.paceExtra) * 1_000_000
}

// paceOpen reports whether the pacer lets another segment out after the n
// bytes already assembled (and not yet charged).
func (kcp *KCP) paceOpen(n int) bool {
	return kcp.paceRate == 0 || kcp.paceTokens-int64(n)*1_000_000 > 0
}

// paceWait is the ms until the pacer lets a segment out at µs time nowUs
// (0: now), pending bytes being charged first. It does not refill.
func (kcp *KCP) paceWait(nowUs uint64, pending int) uint32 {
	if kcp.paceRate == 0 {
		return 0
	}
	tokens := kcp.paceTokensAt(nowUs) - int64(pending)*1_000_000
	if tokens > 0 {
		return 0
	}
	return uint32(-tokens/int64(kcp.paceRate)/1000) + 1
}
