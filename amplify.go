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
