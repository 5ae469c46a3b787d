package kcp

import "time"

// Parking: cheaper timers for idle sessions.
//
// A session's update runs once per flush interval (10..100 ms) while the
// core has work: data queued or in flight, ACKs or a window probe pending,
// datagrams held back by the rate limit, the close handshake. When none of
// that holds, update parks the session: it schedules its next run parkMax
// later (sooner when the idle timeout or the Accept deadline falls due
// first) instead of one interval later. A thousand idle sessions then cost
// a thousand updates a second, not ten or a hundred thousand.
//
// Anything that gives the session work goes through wake (input) or push
// (Write, Close, SendOOB, a window report), and both unpark: they schedule an
// update one interval ahead, as an active session would have had. The parked run
// stays in the scheduler (it cannot be withdrawn); schedAt tells it apart
// when it fires: update runs that are early for schedAt return at once, so
// one chain of updates survives.
//
// Parking also trims the core (kcp_trim.go): an idle session holds no
// payload buffers, segment rings, reorder slots or flush buffer.

// parkMax bounds how long a parked session sleeps between updates (ms):
// a safety net for settings changed while parked (SetIdleTimeout, SetNoDelay)
// which do not wake it.
const parkMax = 1000

// parkLocked decides, at the end of update, whether the session parks, and
// returns the delay (ms) until its next update: next when it stays active.
// It records the run's due time in schedAt. Caller holds mu.
func (s *UDPSession) parkLocked(now, next uint32, expirable bool) uint32 {
	park := false
	if !s.closing && len(s.txq) == 0 && s.kcp.quiet() {
		d := uint32(parkMax)
		if s.idleTimeout > 0 {
			left := int64(s.idleTimeout/time.Millisecond) - int64(now-s.lastRecv) + 1
			d = uint32(min(int64(d), max(left, int64(next))))
		}
		if expirable {
			left := int64(s.l.pendingTTL/time.Millisecond) - int64(now-s.created) + 1
			d = uint32(min(int64(d), max(left, int64(next))))
		}
		if d > next {
			next, park = d, true
		}
	}
	if park && !s.parked.Load() {
		// Going to sleep: the quiet core gives back its working memory
		// (kcp_trim.go); it takes it again from shared pools on waking.
		s.kcp.trim()
	}
	s.parked.Store(park)
	s.schedAt = now + next
	return next
}

// staleLocked reports an update run that is not the session's current one:
// a parked run superseded by unpark fires early for schedAt. Caller holds
// mu.
func (s *UDPSession) staleLocked(now uint32) bool {
	return int32(now-s.schedAt) < 0
}

// unpark schedules the next update one interval ahead for a parked session.
func (s *UDPSession) unpark() {
	s.mu.Lock()
	if !s.parked.Load() || s.released {
		s.mu.Unlock()
		return
	}
	s.parked.Store(false)
	iv := s.kcp.intervalMs()
	s.schedAt = s.kcp.clock() + iv
	s.mu.Unlock()
	SystemTimedSched.Put(s.updateFn, time.Now().Add(time.Duration(iv)*time.Millisecond))
}
