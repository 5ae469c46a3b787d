package kcp

import "testing"

// CUBIC's window must track what the sender uses (RFC 9438 section 5.8, RFC
// 7661): it grows only while it is the sender's bound, and an idle or
// app-limited spell does not count as time in the growth epoch. These run
// on clockLink's virtual clock.

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
	l := newClockLink(t, CongestionCUBIC, 10)
	l.snd.WndSize(1024, 1024)
	l.rcv.WndSize(1024, 1024)
	w := &cutWatch{controller: l.snd.cc.ctl}
	l.snd.cc.ctl = w
	l.writing = true
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
	l := newClockLink(t, CongestionCUBIC, 10)
	l.snd.WndSize(1024, 1024)
	l.rcv.WndSize(1024, 1024)
	l.writing = true
	l.drop = l.dropOnce(100) // into congestion avoidance
	l.run(1000)
	l.drop = nil
	before := l.snd.cc.ctl.window()
	timeouts := l.snd.stats.LostSegs
	l.delay = 150
	l.run(60)
	l.delay = 10
	l.run(400)
	if l.snd.stats.LostSegs == timeouts {
		t.Fatal("the delay spike fired no retransmission timeout")
	}
	after := l.snd.cc.ctl.window()
	t.Logf("window %d before the spike, %d 400 ms after it; %d segments timed out", before, after, l.snd.stats.LostSegs-timeouts)
	if after < before {
		t.Fatalf("window %d segments after a spurious timeout, %d before it", after, before)
	}
}
