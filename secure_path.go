package kcp

// Secure-mode path validation (docs/SECURE.md §5): which address a session
// sends to, when a packet from another address draws a challenge, and the 3×
// amplification budget towards an address not yet proven.

import (
	"crypto/rand"
	"net/netip"
	"time"
)

// Path validation bounds.
const (
	// amplificationFactor bounds the bytes sent to an unproven address as a
	// multiple of the bytes received from it (RFC 9000 §8.1).
	amplificationFactor = 3
	// pathChallengeRetry is the earliest a challenge to the same candidate
	// is sent again, when another packet arrives from it.
	pathChallengeRetry = time.Second
	// ctlPathLen is the length of a path challenge or response plaintext.
	ctlPathLen = 1 + 8
)

// securePath tracks a session's proven peer address and at most one
// candidate. Not safe for concurrent use (its owner locks).
type securePath struct {
	proven    netip.AddrPort
	cand      netip.AddrPort // zero when none
	challenge [8]byte
	sentAt    time.Time // zero: no challenge pending
	candRecv  int       // bytes received from cand
	candSent  int       // bytes sent to cand
}

// authenticated is called for every packet from src that opened and passed
// the replay window, of n bytes on the wire. When a challenge to src is due
// it returns its plaintext and true; the caller must still ask allowSend
// before sending it.
func (p *securePath) authenticated(src netip.AddrPort, n int, now time.Time) (out [ctlPathLen]byte, due bool) {
	if src == p.proven {
		return out, false
	}
	if src != p.cand {
		p.cand, p.candRecv, p.candSent, p.sentAt = src, 0, 0, time.Time{}
	}
	p.candRecv += n
	if !p.sentAt.IsZero() && now.Sub(p.sentAt) < pathChallengeRetry {
		return out, false
	}
	rand.Read(p.challenge[:])
	p.sentAt = now
	out[0] = ctlPathChallenge
	copy(out[1:], p.challenge[:])
	return out, true
}

// allowSend reports whether size bytes may go to dst now and, if so,
// charges them to dst's budget. The proven address has no budget.
func (p *securePath) allowSend(dst netip.AddrPort, size int) bool {
	if dst == p.proven {
		return true
	}
	if dst != p.cand || p.candSent+size > amplificationFactor*p.candRecv {
		return false
	}
	p.candSent += size
	return true
}

// responded handles an authenticated path response from src. It reports
// whether src is now the proven address.
func (p *securePath) responded(src netip.AddrPort, body []byte) bool {
	if p.sentAt.IsZero() || src != p.cand || len(body) != 8 || [8]byte(body) != p.challenge {
		return false
	}
	p.proven, p.cand, p.sentAt = src, netip.AddrPort{}, time.Time{}
	return true
}

// pathResponse builds the answer to a challenge plaintext (kind included);
// ok false when it is not a well-formed challenge.
func pathResponse(challenge []byte) (out [ctlPathLen]byte, ok bool) {
	if len(challenge) != ctlPathLen || challenge[0] != ctlPathChallenge {
		return out, false
	}
	out[0] = ctlPathResponse
	copy(out[1:], challenge[1:])
	return out, true
}
