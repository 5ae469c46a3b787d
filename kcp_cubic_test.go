package kcp

import (
	"encoding/binary"
	"testing"
)

// CUBIC's window must track what the sender uses (RFC 9438 section 5.8, RFC
// 7661): it grows only while it is the sender's bound, and an idle or
// app-limited spell does not count as time in the growth epoch. These run
// on clockLink's virtual clock.

// newCubicLink is a CUBIC flow on clockLink with a 10 ms one-way delay and
// windows of 1024 segments, so that the congestion window alone bounds
// it; its application writes from the start.
func newCubicLink(t *testing.T) *clockLink {
	t.Helper()
	l := newClockLink(t, CongestionCUBIC, 10)
	l.snd.WndSize(1024, 1024)
	l.rcv.WndSize(1024, 1024)
	l.writing = true
	return l
}

// TestCubicWindowFollowsUse: a CUBIC sender bounded by its send window (32
// segments, below the path's BDP, no loss) must not grow a window it never
// fills. Grown without bound, a window of thousands of segments made every
// later multiplicative decrease a no-op: two loss episodes left the flight
// at the send window, as if there were no congestion control.
func TestCubicWindowFollowsUse(t *testing.T) {
	l := newClockLink(t, CongestionCUBIC, 40)
	const sndWnd = 32
	l.snd.WndSize(sndWnd, 256)
	w := &cutWatch{controller: l.snd.cc.ctl}
	l.snd.cc.ctl = w
	l.writing = true
	l.run(10_000)
	if got := w.window(); got > 2*sndWnd {
		t.Fatalf("window %d segments after 10 s bounded by a send window of %d", got, sndWnd)
	}
	for episode := range 2 {
		l.drop = l.dropOnce(l.now)
		l.run(500)
		if w.cuts != episode+1 {
			t.Fatalf("loss episode %d: %d cuts", episode+1, w.cuts)
		}
		t.Logf("episode %d: window cut %d -> %d", episode+1, w.cutFrom, w.cutTo)
	}
	if w.cutTo >= sndWnd {
		t.Fatalf("the second loss episode cut the window to %d segments, the flight still bounded only by the send window (%d)", w.cutTo, sndWnd)
	}
}

// TestCubicIdleShiftsEpoch: a CUBIC sender in congestion avoidance idles for
// 10 s, then sends again. The idle is no time in the epoch (Linux moves the
// epoch start past it): the window resumes the slow concave growth toward
// W_max it had. Counted, the idle put t far past K, and the window grew
// by half per round trip, as in slow start, into a path whose capacity
// nothing had measured for 10 s.
func TestCubicIdleShiftsEpoch(t *testing.T) {
	l := newCubicLink(t)
	w := &cutWatch{controller: l.snd.cc.ctl}
	l.snd.cc.ctl = w
	l.drop = l.dropOnce(60)
	l.run(400)
	if w.cuts != 1 {
		t.Fatalf("%d cuts on the loss", w.cuts)
	}
	l.drop = nil
	before := w.window()
	l.quiesce(t, 10_000)
	l.writing = true
	l.run(200)
	after := w.window()
	c := w.controller.(*cubic)
	t.Logf("cut %d -> %d, window %d before the idle, %d after 200 ms of sending (K %.1f s)", w.cutFrom, w.cutTo, before, after, c.k)
	// In 200 ms the window may gain what it gained in the 340 ms between
	// the cut and the idle (the Reno-friendly rate, as t is far below K).
	if after-before > before-w.cutTo+2 {
		t.Fatalf("window grew from %d to %d segments in 200 ms (10 round trips) after a 10 s idle", before, after)
	}
}

// TestCubicUndoesSpuriousTimeout: the path's delay jumps from 10 to 150 ms
// one way for 60 ms (a radio link's handover, a loaded host that holds
// the ACKs back), so the retransmission timer fires for segments that were
// not lost. Their ACKs come back echoing the first transmission's ts, which
// proves the timeout spurious (RFC 3522's test with KCP's ts echo), and
// the window returns to what it was before the timeout (RFC 4015's
// response). Kept, the cut to one segment and an ssthresh of 0.7 W held
// the flow below its old rate for seconds after a delay spike that lost
// nothing.
func TestCubicUndoesSpuriousTimeout(t *testing.T) {
	l := newCubicLink(t)
	l.drop = l.dropOnce(100) // into congestion avoidance
	l.run(1000)
	l.drop = nil
	before := l.snd.cc.ctl.window()
	timedOut := l.delaySpike(t)
	after := l.snd.cc.ctl.window()
	t.Logf("window %d before the spike, %d 400 ms after it; %d segments timed out", before, after, timedOut)
	if after < before {
		t.Fatalf("window %d segments after a spurious timeout, %d before it", after, before)
	}
}

// delaySpike raises the one-way delay from 10 to 150 ms for 60 ms and runs
// 400 ms more; the spike must fire a retransmission timeout. It returns
// how many segments timed out.
func (l *clockLink) delaySpike(t *testing.T) uint64 {
	t.Helper()
	timeouts := l.snd.stats.LostSegs
	l.delay = 150
	l.run(60)
	l.delay = 10
	l.run(400)
	if l.snd.stats.LostSegs == timeouts {
		t.Fatal("the delay spike fired no retransmission timeout")
	}
	return l.snd.stats.LostSegs - timeouts
}

// outage loses every data datagram sent in the next ms.
func (l *clockLink) outage(ms uint32) {
	l.drop = func([]byte) bool { return true }
	l.run(ms)
	l.drop = nil
}

// verdictWatch wraps a controller and records the window each timeout
// verdict left.
type verdictWatch struct {
	controller
	spurious []bool
	after    []uint32
}

func (w *verdictWatch) timeoutVerdict(now uint64, spurious bool) {
	w.controller.timeoutVerdict(now, spurious)
	w.spurious = append(w.spurious, spurious)
	w.after = append(w.after, w.window())
}

// TestCubicTimeoutVerdictLost: a 60 ms outage loses everything sent in
// it, and every ACK of each timeout's witness is lost on the way back as
// well, so no ACK answers a witness and the episode ends with no verdict
// from one; a spurious timeout 500 ms later (a delay spike) is undone, and
// the window must return to what it was before that spike. Left pending,
// the first episode's snapshot was kept and restored instead: the window
// and growth epoch of more than half a second before.
func TestCubicTimeoutVerdictLost(t *testing.T) {
	l := newCubicLink(t)
	w := &verdictWatch{controller: l.snd.cc.ctl}
	l.snd.cc.ctl = w
	l.drop = l.dropOnce(100) // into congestion avoidance
	l.run(1500)
	first := w.window()
	cc := &l.snd.cc
	l.dropRev = func(d []byte) bool {
		return cc.rtoArmed && anySeg(d, func(h []byte) bool {
			return h[4] == IKCP_CMD_ACK && binary.LittleEndian.Uint32(h[12:]) == cc.rtoSn
		})
	}
	timeouts := l.snd.stats.LostSegs
	l.outage(60)
	l.run(400)
	l.dropRev = nil
	if l.snd.stats.LostSegs == timeouts {
		t.Fatal("the outage fired no retransmission timeout")
	}
	for _, spurious := range w.spurious {
		if spurious {
			t.Fatalf("verdicts %v after an outage", w.spurious)
		}
	}
	l.run(100)
	before := w.window()
	l.delaySpike(t)
	t.Logf("window %d before the outage, %d before the spike; verdicts %v leaving %v", first, before, w.spurious, w.after)
	if len(w.spurious) == 0 || !w.spurious[len(w.spurious)-1] {
		t.Fatalf("the spike's timeout was not found spurious (verdicts %v)", w.spurious)
	}
	if got := w.after[len(w.after)-1]; got < before || got > before+before/10 {
		t.Fatalf("the spurious verdict restored a window of %d segments; it was %d before the spike (%d before the outage)", got, before, first)
	}
}

// TestCubicOutageCutsOnce: a 200 ms outage loses a whole flight, and the
// timers of its segments fire one after another over the next round
// trips. They are one loss episode (all sent before its cut): one
// multiplicative decrease, ssthresh 0.7 W, W_max at least 0.85 W (RFC 5681's rule
// for a segment timed out again, Linux's high_seq). Bounded by an RTT of
// time instead, each timer an RTT after the first cut again: ssthresh fell
// to 2 segments and W_max to 1, and after the outage the flow crept up
// from 2 segments in congestion avoidance.
func TestCubicOutageCutsOnce(t *testing.T) {
	l := newCubicLink(t)
	l.drop = l.dropOnce(100) // into congestion avoidance
	l.run(1500)
	c := l.snd.cc.ctl.(*cubic)
	before := c.cwnd
	l.outage(200)
	l.run(300)
	t.Logf("window %.0f before the outage; after it ssthresh %.1f, W_max %.1f, window %.0f 300 ms later", before, c.ssthresh, c.wMax, c.cwnd)
	// W_max: the window at the cut, or less by fast convergence.
	if want, wMax := before*cubicBeta, before*(1+cubicBeta)/2; c.ssthresh < want-1 || c.wMax < wMax-1 {
		t.Fatalf("after one outage ssthresh %.1f, W_max %.1f; want %.1f and %.1f or more (one cut from %.1f)", c.ssthresh, c.wMax, want, wMax, before)
	}
}
