package kcp

// Session knobs and helpers for hostile networks (issue 13). The core does
// the work (kcp_proof.go, kcp.go); this file draws the per-session secret
// and exposes the settings.

import "time"

// sessionTsOffset draws the secret added to the ts of every PUSH a session
// sends (KCP.setTsOffset), from the same generator as the datagram nonces.
func sessionTsOffset() uint32 {
	var b [4]byte
	fillNonce(b[:])
	return le32(b[:])
}

// SetZeroWindowLimit sets how long the peer may keep its receive window at
// zero while data waits for it before the session gives up: the link is
// then dead, as after too many retransmissions (Read and Write return the
// dead-link error). A peer that never reads otherwise holds the session and
// its send buffers forever. d is rounded down to milliseconds; 0 or less
// waits forever (kcp-go's behaviour). Default 3 minutes. Safe for
// concurrent use; it takes effect at the next flush.
func (s *UDPSession) SetZeroWindowLimit(d time.Duration) {
	ms := uint32(0)
	if d > 0 {
		ms = uint32(min(d/time.Millisecond, 1<<31))
	}
	s.mu.Lock()
	s.kcp.setPersistLimit(ms)
	s.mu.Unlock()
}

// peerValidated reports whether the peer proved it receives at its address:
// an ACK echoed the ts of one of our PUSH segments (KCP.validated). Until
// then a listener session sends it at most ampFactor times what it received
// (amplify.go). Caller holds mu.
func (s *UDPSession) peerValidated() bool { return s.kcp.validated() }
