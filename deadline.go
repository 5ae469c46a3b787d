package kcp

import (
	"sync"
	"time"
)

// deadline is one direction's deadline (read, write or accept). Waiters
// select on the channel returned by wait, which is closed once the deadline
// has passed. Setting a new deadline reuses the channel while it is still
// open, so a blocked waiter keeps waiting on the right channel and wakes when
// the new deadline passes; a deadline in the past closes it at once.
//
// A timer callback only closes the channel of the generation it was armed
// for, so a callback that lost the race with set never closes a channel that
// belongs to a later deadline.
type deadline struct {
	mu    sync.Mutex
	gen   uint64
	timer *time.Timer
	done  chan struct{}
}

// newDeadline returns an unset deadline. Its channel is made when first
// needed (wait or set), so a direction nobody waits on costs none.
func newDeadline() deadline { return deadline{} }

// chanLocked returns done, making it first if need be. Caller holds mu.
func (d *deadline) chanLocked() chan struct{} {
	if d.done == nil {
		d.done = make(chan struct{})
	}
	return d.done
}

func closedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// set arms the deadline for t; the zero time disables it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.disarmLocked()
	expired := closedChan(d.chanLocked())
	if t.IsZero() {
		if expired {
			d.done = make(chan struct{})
		}
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		if !expired {
			close(d.done)
		}
		return
	}
	if expired {
		d.done = make(chan struct{})
	}
	gen, done := d.gen, d.done
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		if d.gen == gen && !closedChan(done) {
			close(done)
		}
		d.mu.Unlock()
	})
}

// wait returns the channel that is closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.chanLocked()
}

// expired reports whether the deadline has passed (never while no channel
// was made: an unset deadline makes none).
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done != nil && closedChan(d.done)
}

// stop releases the timer, for a session or listener being torn down.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.disarmLocked()
}

// disarmLocked stops the timer; a callback already running sees the new
// generation and does nothing. Caller holds mu.
func (d *deadline) disarmLocked() {
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
