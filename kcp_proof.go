package kcp

// What the core knows about whether its peer is real (hostile input, issue
// 13). KCP's ts field is only ever echoed: the sender stamps each PUSH with
// its clock, the receiver copies that value into its ACK. Adding a secret,
// per-session offset to the clock we stamp changes nothing for the peer (C
// KCP, kcp-go and kcpx all echo without looking) but makes an echoed value
// a proof: only someone who received one of our PUSH segments can name a ts
// in [offset+start, offset+now]. The close signal (close.go) uses the same
// values as a token that binds a FIN to this conversation.

// setTsOffset sets the offset added to the ts our PUSH segments carry. Call
// it before anything is sent; sessions draw it at random, a bare KCP keeps 0
// (its bytes stay those of C KCP).
func (kcp *KCP) setTsOffset(off uint32) { kcp.tsOffset = off }

// plausibleTs reports whether ts, as echoed at time current (ms), is one our
// PUSH segments could have carried: at or after the first one, not in the
// future. The unsigned comparison handles the wrap of the 32-bit clock.
func (kcp *KCP) plausibleTs(current, ts uint32) bool {
	return kcp.tsSent && ts-kcp.tsOffset-kcp.tsStart <= current-kcp.tsStart
}

// validated reports whether the peer proved it receives at its address: an
// ACK echoed the ts of one of our PUSH segments.
func (kcp *KCP) validated() bool { return kcp.valid }

// notePeerTs records the ts of a PUSH from the peer, received at current.
func (kcp *KCP) notePeerTs(current, ts uint32) {
	if !kcp.peerTsSeen {
		kcp.peerTsSeen, kcp.peerTsFirst = true, ts
	} else if int32(ts-kcp.peerTsLast) <= 0 {
		return
	}
	kcp.peerTsLast, kcp.peerTsLastAt = ts, current
}

// closeTokenSlack is how far (ms) the peer's clock may run ahead of ours
// between two of its datagrams before its close token stops being
// believed: generous for clock rate differences and queueing, tiny beside
// the 2^32 values a stale token can take.
const closeTokenSlack = 60_000

// closeToken is the token a close signal we send at current carries: the
// last ts the peer stamped on a PUSH we received (echo true), which only
// the two ends of this conversation know; or, before any PUSH from the
// peer, our own stamp (offset + clock), which the peer checks against the
// stamps it saw from us.
func (kcp *KCP) closeToken(current uint32) (token uint32, echo bool) {
	if kcp.peerTsSeen {
		return kcp.peerTsLast, true
	}
	return current + kcp.tsOffset, false
}

// closeTokenOK reports whether a close signal's token, received at current,
// belongs to this conversation: an echo must be a ts we could have sent; an
// own stamp of the peer must continue the stamps its PUSH segments carried
// (not before the first, not further past the last than our clock moved
// since, plus closeTokenSlack).
func (kcp *KCP) closeTokenOK(current, token uint32, echo bool) bool {
	if echo {
		return kcp.plausibleTs(current, token)
	}
	if !kcp.peerTsSeen {
		return false
	}
	span := uint64(kcp.peerTsLast-kcp.peerTsFirst) + uint64(current-kcp.peerTsLastAt) + closeTokenSlack
	return uint64(token-kcp.peerTsFirst) <= span
}

// setPersistLimit sets how long (ms) a zero window may stay shut while data
// waits before the link is declared dead; 0 waits forever.
func (kcp *KCP) setPersistLimit(ms uint32) { kcp.persistLimit = ms }
