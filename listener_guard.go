package kcp

// Admission control of a Listener on a hostile network (issue 13): which
// datagrams may create a session, how many sessions a listener and one
// source IP may hold, which replayed openers are refused, when quiet
// sessions are closed, and the counters that show what was refused.
//
// Who may create a session. A datagram that opens under the listener's
// key, comes from a source with no session, and whose first KCP segment is
// a PUSH with sn 0 and una 0 (the first thing every client sends) is an
// opener. It creates a session unless:
//   - its nonce was seen in an opener within replayTTL (replay cache);
//   - the conversation (source and conv) ended less than tombstoneTTL ago;
//   - the listener holds MaxSessions sessions, or the source IP holds
//     MaxSessionsPerIP, or the accept backlog (SetAcceptBacklog) is full.
//
// A datagram with another conv from the address of a live session creates
// and closes nothing: a restarted client (new conv, same port) and a replay
// of some other client's opener look alike, and nothing an attacker could
// have recorded may tear a live session down. The restarted client gets its
// new session once the old one is gone: closed by the application, its
// link dead (its data unacknowledged), or closed by SetIdleClose. kcp-go
// replaces the session at once; kcpx used to after 2 s of quiet, which let
// one replayed datagram close an idle live session.
//
// Replays. A replay cache is per listener and in memory: a listener started
// afresh with the same key accepts a replayed opener once (the session it
// makes receives the old request again, and sends its answer to the replay's
// source, within the 3x amplification budget; see amplify.go). Without a
// cipher there is no nonce and nothing to remember: anyone can forge an
// opener anyway, and only the caps, the pending TTL and the amplification
// budget bound what openers cost.

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultMaxSessions is the default cap on the sessions one Listener
	// holds (accepted and waiting for Accept); SetMaxSessions changes it.
	// A session that an opener forged from a spoofed source costs about
	// 25 KiB with an echoing application, so the default keeps such a flood
	// near 50 MiB; servers with more peers raise it.
	DefaultMaxSessions = 2048
	// DefaultMaxSessionsPerIP is the default cap on the sessions one source
	// IP address holds on a Listener; SetMaxSessionsPerIP changes it: half
	// the listener's default, enough for many clients behind one NAT (and
	// for kcp-go's 1,024-client loopback test), while one address alone
	// cannot take every slot.
	DefaultMaxSessionsPerIP = 1024

	// replayTTL is how long the nonce of an opener is remembered, and
	// replayCacheSize how many are: a nonce is forgotten after replayTTL or
	// once replayCacheSize newer openers arrived, whichever comes first. At
	// 32,768 entries (about 1.5 MiB when full) a listener admitting up to 54
	// new sessions a second keeps the full 10 minutes.
	replayTTL       = 10 * time.Minute
	replayCacheSize = 32768

	// badPublish is the longest a rejected datagram waits before it reaches
	// DefaultSnmp (InPkts, InBytes, InCsumErrors).
	badPublish = time.Second
)

// Reasons a listener rejects a datagram.
const (
	rejectCorrupt    = iota // failed the checksum or AEAD authentication
	rejectNotOpener         // no session for its source, and not an opener; or another conv from a live session's source
	rejectReplay            // an opener whose nonce was already seen
	rejectOverCap           // an opener beyond MaxSessions, MaxSessionsPerIP or the accept backlog
	rejectTombstoned        // an opener of a conversation that ended less than tombstoneTTL ago
	rejectReasons
)

// ListenerStats is a snapshot of a Listener's admission state.
type ListenerStats struct {
	// Sessions is how many sessions the listener holds, accepted or not.
	Sessions int
	// Pending is how many of them wait for Accept.
	Pending int
	// Rejected counts, per reason, the datagrams the listener dropped
	// without handing them to a session, since it started.
	Rejected ListenerRejects
	// Paths counts NAT rebinding work: challenges, moves, failures.
	Paths PathStats
}

// ListenerRejects counts rejected datagrams per reason.
type ListenerRejects struct {
	// Corrupt: failed the CRC32 check or AEAD authentication (a wrong key,
	// corruption, forgery). Also counted in Snmp.InCsumErrors.
	Corrupt uint64
	// NotOpener: from a source with no session, and not a conversation's
	// first datagram (a PUSH with sn 0 and una 0); or from the source of a
	// live session with another conv.
	NotOpener uint64
	// Replay: an opener whose nonce the listener saw within the replay
	// window.
	Replay uint64
	// OverCap: an opener refused by MaxSessions, MaxSessionsPerIP or the
	// accept backlog.
	OverCap uint64
	// Tombstoned: an opener of a conversation (source and conv) that ended
	// less than a minute ago.
	Tombstoned uint64
}

// listenerGuard is the admission state of a Listener.
type listenerGuard struct {
	rejected [rejectReasons]atomic.Uint64

	maxSessions atomic.Int64 // <= 0: no cap
	maxPerIP    atomic.Int64 // <= 0: no cap
	backlog     atomic.Int64 // > 0

	// Guarded by Listener.mu.
	perIP  map[netip.Addr]int32
	replay replayCache

	// badMu guards Listener.bad, which countBad fills and a timer publishes
	// within badPublish.
	badMu    sync.Mutex
	badArmed bool
	badTimer *time.Timer

	idleMu    sync.Mutex
	idleClose time.Duration // 0: off
	idleTimer *time.Timer
}

// init sets the defaults.
func (g *listenerGuard) init() {
	g.maxSessions.Store(DefaultMaxSessions)
	g.maxPerIP.Store(DefaultMaxSessionsPerIP)
	g.backlog.Store(acceptBacklog)
}

// SetMaxSessions caps the sessions the listener holds at once, accepted or
// waiting for Accept; an opener from a new source beyond it creates nothing
// and is counted (Stats().Rejected.OverCap). n <= 0 removes the cap.
// Default DefaultMaxSessions. Sessions already held stay. Safe for
// concurrent use.
func (l *Listener) SetMaxSessions(n int) { l.guard.maxSessions.Store(int64(n)) }

// SetMaxSessionsPerIP caps the sessions one source IP address holds (any
// port), as SetMaxSessions does for the whole listener. n <= 0 removes the
// cap. Default DefaultMaxSessionsPerIP. Sources that are not UDP addresses
// are not counted. Safe for concurrent use.
func (l *Listener) SetMaxSessionsPerIP(n int) { l.guard.maxPerIP.Store(int64(n)) }

// SetAcceptBacklog sets how many sessions may wait for Accept at once
// (created by a peer's first datagram, not yet returned by Accept). An
// opener from a new source beyond it creates nothing and is counted
// (Stats().Rejected.OverCap); its peer retransmits on its own timer, which
// backs off, so in a storm of new connections (a server restart with
// thousands of clients, an application whose Accept loop falls behind) a
// larger backlog avoids seconds of delay for the refused ones. Every
// waiting session still counts against SetMaxSessions and
// SetMaxSessionsPerIP and is closed if not accepted within 5 s, so the
// memory peers can make the listener hold stays bounded by those caps. n <= 0
// restores the default, 128 (kcp-go's fixed value). Safe for concurrent
// use; sessions already waiting stay.
func (l *Listener) SetAcceptBacklog(n int) {
	if n <= 0 {
		n = acceptBacklog
	}
	l.guard.backlog.Store(int64(n))
}

// SetIdleClose closes every session of the listener, accepted or not, that
// received nothing from its peer for d (checked every d/4, at least every
// 100 ms, so a session may live up to d + d/4): its Read and Write then
// return an error matching net.ErrClosed. Off (0) by default, as in kcp-go,
// whose sessions never expire. Recommended: a little more than the longest
// quiet period of the application's peers, for example 2 minutes for
// clients that send a keepalive every 30 s (kcptun: -keepalive 10 gives a
// datagram at least every 10 s). Without it a peer that vanishes while
// idle holds its session until the application closes it, and a client that
// restarts with the same source port waits for that too. d <= 0 turns it
// off. Safe for concurrent use.
func (l *Listener) SetIdleClose(d time.Duration) {
	g := &l.guard
	g.idleMu.Lock()
	defer g.idleMu.Unlock()
	g.idleClose = max(d, 0)
	if g.idleTimer != nil {
		g.idleTimer.Stop()
	}
	if g.idleClose > 0 {
		if g.idleTimer == nil {
			g.idleTimer = time.AfterFunc(idleSweepEvery(d), l.sweepIdle)
		} else {
			g.idleTimer.Reset(idleSweepEvery(d))
		}
	}
}

func idleSweepEvery(d time.Duration) time.Duration { return max(d/4, 100*time.Millisecond) }

// Stats returns the listener's sessions and rejection counters. The
// counters include rejections of the last moment: they are kept apart from
// DefaultSnmp, which sees them within a second. Every session admitted
// before a refusal the counters include is in Sessions. Safe for concurrent
// use.
func (l *Listener) Stats() ListenerStats {
	// The counters are read before the sessions: an opener is admitted or
	// refused under mu and a refusal counted after it, so the sessions read
	// later include every one admitted before a counted refusal. Read the
	// other way round, a burst of openers handled between the two reads
	// showed its refusals without its sessions.
	var st ListenerStats
	r := &l.guard.rejected
	st.Rejected = ListenerRejects{
		Corrupt:    r[rejectCorrupt].Load(),
		NotOpener:  r[rejectNotOpener].Load(),
		Replay:     r[rejectReplay].Load(),
		OverCap:    r[rejectOverCap].Load(),
		Tombstoned: r[rejectTombstoned].Load(),
	}
	st.Paths = PathStats{
		Challenges: l.paths.challenges.Load(),
		Moves:      l.paths.moves.Load(),
		Failures:   l.paths.failures.Load(),
	}
	if l.statsGap != nil {
		l.statsGap()
	}
	l.mu.Lock()
	st.Sessions = len(l.sessions) + len(l.others)
	st.Pending = len(l.pending)
	l.mu.Unlock()
	return st
}

// openerNonce copies the nonce of an opened datagram (its first bytes after
// open: the CFB/Salsa20/XOR/none nonce in clear, or the AEAD nonce), at most
// 16 bytes of it; ok is false without a cipher.
func (l *Listener) openerNonce(data []byte) (k [16]byte, ok bool) {
	n := min(l.crypt.headerSize(), len(k), len(data))
	if n == 0 {
		return k, false
	}
	copy(k[:], data[:n])
	return k, true
}

// admitLocked decides whether an opener of conv from ap (or key, for
// sources that are not UDP addresses) may create a session; it returns
// rejectReasons when it may. Caller holds Listener.mu.
func (l *Listener) admitLocked(ap netip.AddrPort, key string, conv uint32, nonce [16]byte, haveNonce bool, now time.Time) int {
	g := &l.guard
	if haveNonce && g.replay.seen(nonce, now) {
		return rejectReplay
	}
	if l.tombstonedLocked(tombKey{ap, key, conv}) {
		return rejectTombstoned
	}
	if int64(len(l.pending)) >= g.backlog.Load() {
		return rejectOverCap
	}
	if m := g.maxSessions.Load(); m > 0 && int64(len(l.sessions)+len(l.others)) >= m {
		return rejectOverCap
	}
	if m := g.maxPerIP.Load(); m > 0 && key == "" && int64(g.perIP[ap.Addr()]) >= m {
		return rejectOverCap
	}
	return rejectReasons
}

// admittedLocked records a session created for an opener. Caller holds
// Listener.mu.
func (l *Listener) admittedLocked(ap netip.AddrPort, key string, nonce [16]byte, haveNonce bool, now time.Time) {
	g := &l.guard
	if haveNonce {
		g.replay.add(nonce, now)
	}
	if key == "" {
		if g.perIP == nil {
			g.perIP = make(map[netip.Addr]int32)
		}
		g.perIP[ap.Addr()]++
	}
}

// guardForgetLocked undoes admittedLocked's count for a session the
// listener forgets. Caller holds Listener.mu.
func (l *Listener) guardForgetLocked(s *UDPSession) {
	if !s.lkey.IsValid() {
		return
	}
	ip := s.lkey.Addr()
	if n := l.guard.perIP[ip]; n > 1 {
		l.guard.perIP[ip] = n - 1
	} else {
		delete(l.guard.perIP, ip)
	}
}

// countBad counts a datagram the listener dropped, for the reason given,
// and makes sure DefaultSnmp sees it within badPublish.
func (l *Listener) countBad(wireLen int, reason int) {
	l.guard.rejected[reason].Add(1)
	g := &l.guard
	g.badMu.Lock()
	// As in kcp-go, InPkts and InBytes count only what reaches a session: a
	// datagram that fails to open is an InCsumError, any other refusal an
	// InErr.
	if reason == rejectCorrupt {
		l.bad.InCsumErrors++
	} else {
		l.bad.InErrs++
	}
	if l.bad.InCsumErrors+l.bad.InErrs >= badFlush {
		l.bad.commit(nil)
	} else if !g.badArmed {
		g.badArmed = true
		if g.badTimer == nil {
			g.badTimer = time.AfterFunc(badPublish, l.publishBad)
		} else {
			g.badTimer.Reset(badPublish)
		}
	}
	g.badMu.Unlock()
}

// publishBad adds the rejected datagrams counted so far to DefaultSnmp.
func (l *Listener) publishBad() {
	g := &l.guard
	g.badMu.Lock()
	g.badArmed = false
	if l.bad != (Snmp{}) {
		l.bad.commit(nil)
	}
	g.badMu.Unlock()
}

// sweepIdle closes the sessions that heard nothing for the idle-close
// time, then schedules itself again while the listener is open.
func (l *Listener) sweepIdle() {
	g := &l.guard
	g.idleMu.Lock()
	d := g.idleClose
	g.idleMu.Unlock()
	if d <= 0 || closedChan(l.die) {
		return
	}
	l.mu.Lock()
	all := make([]*UDPSession, 0, len(l.sessions)+len(l.others))
	for _, s := range l.sessions {
		all = append(all, s)
	}
	for _, s := range l.others {
		all = append(all, s)
	}
	l.mu.Unlock()
	for _, s := range all {
		s.mu.Lock()
		quiet := !s.released && time.Duration(s.kcp.clock()-s.lastRecv)*time.Millisecond > d
		s.mu.Unlock()
		if quiet {
			s.breakLink(errIdle)
			s.abort()
		}
	}
	g.idleMu.Lock()
	if g.idleClose > 0 && !closedChan(l.die) {
		g.idleTimer.Reset(idleSweepEvery(g.idleClose))
	}
	g.idleMu.Unlock()
}

// replayCache remembers the nonces of recent openers: a ring of at most
// replayCacheSize entries, oldest overwritten first, indexed by a map. It
// grows with use, so an idle listener pays nothing. Guarded by Listener.mu.
type replayCache struct {
	idx  map[[16]byte]int32
	ring []replayEntry
	next int
}

type replayEntry struct {
	nonce [16]byte
	at    int64 // unix ns when seen
}

// seen reports whether nonce was added within replayTTL before now.
func (c *replayCache) seen(nonce [16]byte, now time.Time) bool {
	i, ok := c.idx[nonce]
	return ok && now.UnixNano()-c.ring[i].at < int64(replayTTL)
}

// add remembers nonce as seen at now.
func (c *replayCache) add(nonce [16]byte, now time.Time) {
	if c.idx == nil {
		c.idx = make(map[[16]byte]int32)
	}
	if i, ok := c.idx[nonce]; ok {
		c.ring[i].at = now.UnixNano()
		return
	}
	e := replayEntry{nonce: nonce, at: now.UnixNano()}
	if len(c.ring) < replayCacheSize {
		c.idx[nonce] = int32(len(c.ring))
		c.ring = append(c.ring, e)
		return
	}
	old := &c.ring[c.next]
	if i, ok := c.idx[old.nonce]; ok && int(i) == c.next {
		delete(c.idx, old.nonce)
	}
	*old = e
	c.idx[nonce] = int32(c.next)
	c.next = (c.next + 1) % replayCacheSize
}
