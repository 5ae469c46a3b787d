package kcp

// NAT rebinding (issue 13): a session with a kcpx peer under an AEAD cipher
// follows its client to a new source address once the client proves it
// receives there, as QUIC's PATH_CHALLENGE does (RFC 9000 §8.2, §9).
//
// The listener demultiplexes by source address. When a datagram that opens
// under the listener's AEAD key arrives from an address with no session,
// is not an opener, and carries the conv of exactly one live session, the
// listener creates nothing: it sends a path challenge (8 fresh random
// bytes, sealed) to that address, through the session's send path, and
// holds a few of the datagrams (pathHold) for the session. A kcpx client
// answers every challenge with a path response echoing the bytes, sealed,
// on its one socket. A response that arrives from the challenged address
// with the bytes of an outstanding challenge moves the session: the
// listener's map is re-keyed, RemoteAddr and the send path follow, what was
// in flight is sent again at once, and the held datagrams are delivered.
//
// What a replay or a forgery gets. A recorded datagram replayed from another
// address draws at most pathMaxChallenges challenges per candidate address
// (at most one per pathRetry, each at most the replay's size: within the
// 3x budget of an unproven address), sealed under the key; without the key
// nobody can read the bytes to echo, so the session never moves. Anyone
// holding the key can answer: with the static shared key of the compatible
// mode that is inherent (such a party can open sessions of its own and
// forge any datagram anyway). A session holds at most pathSlots candidate
// addresses at once; a candidate is replaced once older than pathSlotBusy,
// so a flood of replays from many addresses can delay a real rebinding
// (the client retransmits and is challenged again) but not redirect it. An
// on-path attacker that relays a challenge to the client and replays its
// response from an address of its own does move the session there; the
// client's next datagram, from its real address, draws a challenge only the
// client can answer, and the session moves back (an on-path attacker can
// drop the traffic anyway).
//
// Not covered, and what happens instead (the session does not move; the
// client's datagrams from its new address are dropped and counted, and both
// ends see a dead link after the retransmission limit, as before):
//   - ciphers that are not AEAD (CFB, Salsa20, XOR, none, no cipher): their
//     integrity check (CRC32) does not stop forgery, so a challenge could
//     not be trusted to come from the key's holder; no challenge is sent.
//   - kcp-go peers: they ignore a challenge (at 21 bytes it is shorter than
//     a KCP segment) and never answer.
//   - a conv held by more than one live session (fixed convs of NewConn3/4),
//     or a peer that is not a UDP address.

import (
	"crypto/subtle"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

const (
	// typePath marks the path signal (README, "Wire format"): seqid
	// 0xFFFFFFFF | type 0x00F5 | size 21 | conv | kind | data[8]. Like the
	// close signal it is shorter than a KCP segment, so kcp-go ignores it.
	typePath         = 0xf5
	pathSignalLen    = 21
	pathSigChallenge = 1
	pathSigResponse  = 2

	// pathSlots is how many candidate addresses a session tracks at once.
	pathSlots = 2
	// pathMaxChallenges bounds the challenges one candidate address draws
	// while it holds a slot; pathRetry is the least time between two.
	pathMaxChallenges = 4
	pathRetry         = 200 * time.Millisecond
	// pathSlotBusy is how long a candidate keeps its slot against another
	// address; pathTTL how long its challenge may be answered.
	pathSlotBusy = time.Second
	pathTTL      = 3 * time.Second
	// pathHold is how many datagrams of a candidate address are kept, to be
	// delivered if it is proven.
	pathHold = 4
)

// pathCand is an address a session's peer may have moved to: challenged,
// not yet proven. Guarded by Listener.mu.
type pathCand struct {
	ap    netip.AddrPort // invalid: the slot is free
	token [8]byte
	first time.Time // when the address was first heard
	last  time.Time // when the last challenge went out
	sends int
	amp   ampLimit // 3x budget of the unproven address
	held  [pathHold]heldDatagram
	nheld int
}

// heldDatagram is an opened datagram kept for delivery after a move.
type heldDatagram struct {
	buf     *[]byte
	n       int
	wireLen int
}

// sessRebind is a listener session's rebinding state. lkey and cands are
// guarded by Listener.mu; movedTo is read without locks.
type sessRebind struct {
	lkey    netip.AddrPort              // the session's key in Listener.sessions
	cands   *[pathSlots]pathCand        // nil until a candidate is heard: most sessions never need it
	movedTo atomic.Pointer[net.UDPAddr] // the peer's address after a move
	ctlTx   []outPacket                 // path challenges and window probes to send, unsealed; guarded by the session's mu
	ctlBufs []*[]byte
}

// rebindStats counts the listener's rebinding work (ListenerStats.Paths).
type rebindStats struct {
	challenges, moves, failures atomic.Uint64
}

// PathStats counts a listener's NAT rebinding work (AEAD ciphers, kcpx
// peers; see ListenerStats).
type PathStats struct {
	// Challenges is how many path challenges were sent to new addresses.
	Challenges uint64
	// Moves is how many sessions moved to a proven new address.
	Moves uint64
	// Failures counts path responses that matched no outstanding challenge
	// and challenged addresses given up unanswered.
	Failures uint64
}

// indexConvLocked records a new session under its conv. Caller holds
// Listener.mu.
func (l *Listener) indexConvLocked(s *UDPSession) {
	if l.crypt.aead == nil || !s.lkey.IsValid() {
		return
	}
	if l.convs == nil {
		l.convs = make(map[uint32][]*UDPSession)
	}
	l.convs[s.conv] = append(l.convs[s.conv], s)
}

// unindexConvLocked forgets a session's conv and its candidates. Caller
// holds Listener.mu.
func (l *Listener) unindexConvLocked(s *UDPSession) {
	l.dropCandsLocked(s)
	list := l.convs[s.conv]
	for i, o := range list {
		if o == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(l.convs, s.conv)
	} else {
		l.convs[s.conv] = list
	}
}

// dropCandsLocked frees every candidate of s. Caller holds Listener.mu.
func (l *Listener) dropCandsLocked(s *UDPSession) {
	if s.cands == nil {
		return
	}
	for i := range s.cands {
		l.dropCandLocked(&s.cands[i])
	}
	s.cands = nil
}

// dropCandLocked frees a candidate's slot, counting it failed if it was
// challenged and never proven.
func (l *Listener) dropCandLocked(c *pathCand) {
	if !c.ap.IsValid() {
		return
	}
	if c.sends > 0 {
		l.paths.failures.Add(1)
	}
	for i := 0; i < c.nheld; i++ {
		putBuffer(c.held[i].buf)
	}
	*c = pathCand{}
}

// rebindLocked takes a datagram from ap, which has no session, when the
// listener's cipher is an AEAD: a path response that proves ap for a
// session moves it there; a datagram of a live session's conv draws a
// challenge. It reports whether it took the datagram; if so it released
// Listener.mu, else the caller still holds it. p is the opened datagram.
func (l *Listener) rebindLocked(p []byte, wireLen int, ap netip.AddrPort, conv uint32, ok bool) bool {
	if len(p) >= pathSignalLen && binary.LittleEndian.Uint32(p) == 0xFFFFFFFF &&
		binary.LittleEndian.Uint16(p[4:]) == typePath {
		l.pathResponseLocked(p, ap)
		return true
	}
	if !ok || l.closed {
		return false
	}
	list := l.convs[conv]
	if len(list) != 1 {
		return false
	}
	s := list[0]
	now := time.Now()
	c := s.candLocked(ap, now)
	if c == nil {
		return false // every slot is busy with another address
	}
	c.amp.received(wireLen)
	if c.nheld < pathHold {
		b := getBuffer()
		h := &c.held[c.nheld]
		h.buf, h.n, h.wireLen = b, copy(*b, p), wireLen
		c.nheld++
	}
	size := l.crypt.overhead() + pathSignalLen
	send := c.sends < pathMaxChallenges && now.Sub(c.last) >= pathRetry &&
		now.Sub(c.first) < pathTTL && c.amp.allow(size)
	if send {
		if c.sends == 0 {
			fillNonce(c.token[:])
		}
		c.sends++
		c.last = now
		c.amp.charge(size)
	}
	token := c.token
	l.mu.Unlock()
	if send {
		l.paths.challenges.Add(1)
		s.queuePathChallenge(ap, token)
	}
	return true
}

// candLocked returns the candidate slot for ap, taking a free one or one
// older than pathSlotBusy; nil when every slot is busy. Caller holds
// Listener.mu.
func (s *UDPSession) candLocked(ap netip.AddrPort, now time.Time) *pathCand {
	if s.cands == nil {
		s.cands = new([pathSlots]pathCand)
	}
	var free *pathCand
	for i := range s.cands {
		c := &s.cands[i]
		if c.ap == ap {
			if now.Sub(c.first) < pathTTL {
				return c
			}
			free = c // expired: start over
			break
		}
		if free == nil && (!c.ap.IsValid() || now.Sub(c.first) >= pathSlotBusy) {
			free = c
		}
	}
	if free == nil {
		return nil
	}
	s.l.dropCandLocked(free)
	free.ap, free.first = ap, now
	return free
}

// pathResponseLocked handles a path signal from ap, which has no session:
// a response echoing an outstanding challenge to ap moves its session there.
// It releases Listener.mu.
func (l *Listener) pathResponseLocked(p []byte, ap netip.AddrPort) {
	var s *UDPSession
	var c *pathCand
	if binary.LittleEndian.Uint16(p[6:]) == pathSignalLen && p[12] == pathSigResponse && !l.closed {
		if list := l.convs[binary.LittleEndian.Uint32(p[8:])]; len(list) == 1 && list[0].cands != nil {
			for i := range list[0].cands {
				cand := &list[0].cands[i]
				if cand.ap == ap && cand.sends > 0 && time.Since(cand.first) < pathTTL &&
					subtle.ConstantTimeCompare(cand.token[:], p[13:21]) == 1 {
					s, c = list[0], cand
					break
				}
			}
		}
	}
	if s == nil {
		l.mu.Unlock()
		l.paths.failures.Add(1)
		return
	}
	// Proven: re-key the session and take what the address sent meanwhile.
	old := s.lkey
	delete(l.sessions, old)
	l.sessions[ap] = s
	l.guardForgetLocked(s)
	s.lkey = ap
	l.guard.countIPLocked(ap.Addr())
	held, nheld := c.held, c.nheld
	c.nheld = 0
	c.sends = 0 // not a failure
	l.dropCandsLocked(s)
	s.movedTo.Store(net.UDPAddrFromAddrPort(ap))
	l.paths.moves.Add(1)
	l.mu.Unlock()

	s.pathMoved(ap)
	for i := 0; i < nheld; i++ {
		h := held[i]
		s.input((*h.buf)[:h.n], h.wireLen)
		putBuffer(h.buf)
	}
}

// countIPLocked counts one more session for ip (MaxSessionsPerIP). Caller
// holds Listener.mu.
func (g *listenerGuard) countIPLocked(ip netip.Addr) {
	if g.perIP == nil {
		g.perIP = make(map[netip.Addr]int32)
	}
	g.perIP[ip]++
}
