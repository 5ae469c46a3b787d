package kcp

// Anti-amplification (RFC 9000 §8.1, as in QUIC): until a peer proves it
// receives at its address, a session sends it at most ampFactor times the
// bytes it received from that address. Without the rule a spoofed source
// (or a replayed opener) turns a few bytes into megabytes toward a victim
// that never asked: a 61-byte replayed request for a 64 KiB download drew
// 22,323 times its size.
//
// The proof is the echo of a ts that only a receiver of our PUSH segments
// can name (kcp_proof.go: KCP.validated). ampLimit is the budget; the
// session charges every datagram it sends to the peer against it and
// stops (queueing, not dropping: ARQ resends later) while allow says no.
//
// Wiring, for the sender (issue 12): a listener session calls received
// with the wire length of every datagram from its peer (before or after it
// opens: an attacker's bytes count as much as anyone's, and a corrupt
// datagram still came from that address), validate once
// UDPSession.peerValidated reports true, and allow/charge around each
// datagram it hands to the socket. A dialled session needs no budget: it
// chose its peer.

// ampFactor is the most a session sends per byte received before the peer
// is validated: 3, RFC 9000 §8.1.
const ampFactor = 3

// ampLimit is the send budget toward an unvalidated peer: ampFactor times
// the bytes received from it, minus what was already sent. Once validate is
// called it allows everything. Counts are whole datagrams as they leave or
// arrive on the wire (cipher, FEC and UDP payload bytes; no IP/UDP header).
// The zero value is a budget of zero bytes, not yet validated. Not safe for
// concurrent use: the session guards it with its own lock.
type ampLimit struct {
	in, out uint64
	valid   bool
}

// received adds n bytes that arrived from the peer's address to the budget.
func (a *ampLimit) received(n int) {
	if n > 0 {
		a.in += uint64(n)
	}
}

// allow reports whether n more bytes may be sent now.
func (a *ampLimit) allow(n int) bool {
	return a.valid || a.out+uint64(max(n, 0)) <= ampFactor*a.in
}

// charge records n bytes sent. It does not check allow: a caller that sends
// anyway (a close signal, say) still has it counted.
func (a *ampLimit) charge(n int) {
	if n > 0 {
		a.out += uint64(n)
	}
}

// validate lifts the limit for good: the peer proved it receives.
func (a *ampLimit) validate() { a.valid = true }

// validated reports whether validate was called.
func (a *ampLimit) validated() bool { return a.valid }

// left is how many bytes allow would accept now (the largest uint64 once
// validated).
func (a *ampLimit) left() uint64 {
	if a.valid {
		return ^uint64(0)
	}
	if lim := ampFactor * a.in; lim > a.out {
		return lim - a.out
	}
	return 0
}

// ampProbeMax is how many window probes a session sends past its budget
// between two datagrams heard from an unvalidated peer.
const ampProbeMax = 4

// ampProbeLocked keeps a held session from waiting forever. A budget spent
// toward a peer whose every acknowledgement was lost holds the very
// retransmissions that would draw a new one: a client that sent a request,
// received the first datagram of the reply and lost its ACK has nothing
// more to send, and both ends wait until the link is declared dead (QUIC
// has the same deadlock, which its client's probe timeout breaks, RFC
// 9002 section 6.2.2.1). A kcp-go client has no such timer, so the
// session probes instead: a window probe (IKCP_CMD_WASK, one 24-byte
// segment), which every KCP peer answers with its window at its next
// flush, and that datagram heard is the credit the held reply needs. The
// probes go an RTO after the last datagram heard, then at twice the
// previous wait, at most ampProbeMax of them; each is a few dozen bytes
// beyond the budget, against the full datagram each heard datagram already
// earns. It returns the ms until the next probe may go (the update's
// timer). Caller holds mu (the session's update).
func (s *UDPSession) ampProbeLocked(now uint32) uint32 {
	const never = ^uint32(0)
	if !s.ampHeld || s.amp.validated() || s.ampProbes >= ampProbeMax {
		return never
	}
	if s.ampProbeAt == 0 {
		s.ampProbeAt = max(now+s.kcp.rxRto, 1)
	}
	if d := int32(s.ampProbeAt - now); d > 0 {
		return uint32(d)
	}
	s.ampProbes++
	wait := s.kcp.rxRto << s.ampProbes
	s.ampProbeAt = max(now+wait, 1)
	s.kcp.askWindow()
	s.ampProbing = true
	s.kcp.flush(now, IKCP_FLUSH_ACKONLY)
	s.ampProbing = false
	return wait
}

// queueProbe queues a probe datagram (ampProbeLocked) ahead of the held
// ones, outside the budget (charged all the same); with FEC it is a data
// shard, and parity the probe's group yields waits with the held ones.
// Caller holds mu.
func (s *UDPSession) queueProbe(p *[]byte, pkt []byte) {
	if s.released {
		putBuffer(p)
		return
	}
	s.amp.charge(len(pkt) + s.cryptTag)
	s.queueCtlLocked(outPacket{b: pkt, to: s.remoteAP, addr: s.remoteTx}, p)
}
