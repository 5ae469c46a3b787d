package kcp

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// sessState describes where a session's send path stands, for failure
// messages of tests that stall: the core's queues and windows, the update
// chain (parked, the run it waits for, the updates the scheduler holds for
// it), the sender's side (txq, ready-list membership, the 3x budget) and
// the close machine. A stalled session with data to send and no pending
// update, or datagrams queued but off the ready list, shows it here.
func sessState(s *UDPSession) string {
	if s == nil {
		return "-"
	}
	pending, due := schedPending(SystemTimedSched, s.updateFn)
	s.mu.Lock()
	k := s.kcp
	now := k.clock()
	core := fmt.Sprintf("snd_queue %d snd_buf %d rcv_queue %d rcv_buf %d acks %d probe %d una %d nxt %d rcv_nxt %d wnd snd %d rmt %d cwnd %d rto %d state %d",
		k.sndQueue.len(), k.sndBuf.len(), k.rcvQueue.len(), k.rcvBuf.count, len(k.acklist), k.probe,
		k.sndUna, k.sndNxt, k.rcvNxt, k.sndWnd, k.rmtWnd, k.cwnd, k.rxRto, k.state)
	upd := fmt.Sprintf("parked %t schedAt %+dms pending updates %d (first due %v)",
		s.parked.Load(), int32(s.schedAt-now), pending, due)
	tx := fmt.Sprintf("txq %d txReady %t ampHeld %t ampCredit %t validated %t amp left %d ctlTx %d",
		len(s.txq)-s.txHead, s.txReady, s.ampHeld, s.ampCredit, s.amp.validated(), s.amp.left(), len(s.ctlTx))
	cl := fmt.Sprintf("closing %t finSent %t finAcked %t peerFin %t settled %t released %t broken %v heard %t lastRecv %dms ago",
		s.closing, s.finSent, s.finAcked, s.peerFin, s.settledDone, s.released, s.brokenErr, s.heard, int32(now-s.lastRecv))
	s.mu.Unlock()
	q := s.sq
	q.mu.Lock()
	onReady := 0
	for _, r := range q.ready {
		if r == s {
			onReady++
		}
	}
	closing := q.closing
	q.mu.Unlock()
	token := "held"
	if q.busy.TryLock() {
		token = "free"
		q.busy.Unlock()
	}
	return fmt.Sprintf("core: %s\n  update: %s\n  send: %s; on ready list %d times, queue closing %t, drain token %s\n  close: %s",
		core, upd, tx, onReady, closing, token, cl)
}

// schedPending counts the tasks ts holds whose function is f (the same
// func value: a session's updateFn is bound once) and the earliest one's due
// time from now.
func schedPending(ts *TimedSched, f func()) (int, time.Duration) {
	id := funcID(f)
	n, first := 0, time.Duration(-1)
	now := schedClock(time.Now())
	for _, w := range ts.workers {
		w.mu.Lock()
		for i := range w.tasks {
			if funcID(w.tasks[i].f) == id {
				n++
				if d := w.tasks[i].due - now; first < 0 || d < first {
					first = d
				}
			}
		}
		w.mu.Unlock()
	}
	return n, first
}

// funcID is the identity of a func value: the pointer to its closure.
func funcID(f func()) uintptr { return *(*uintptr)(unsafe.Pointer(&f)) }

// TestSessStateDescribes: the stall diagnostic finds a live session's
// update in the scheduler (a running update is not pending, so look again
// for a while) and names its state.
func TestSessStateDescribes(t *testing.T) {
	p := newRelPair(t, relOpts{hello: true})
	for _, s := range []*UDPSession{p.cli, p.srv} {
		if !eventually(5*time.Second, func() bool { n, _ := schedPending(SystemTimedSched, s.updateFn); return n > 0 }) {
			t.Errorf("a live session's update is not seen in the scheduler")
		}
		if d := sessState(s); !strings.Contains(d, "released false") || !strings.Contains(d, "txq ") {
			t.Errorf("state: %s", d)
		}
	}
}
