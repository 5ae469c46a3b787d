package kcp

import "testing"

// Long-lived sessions and the congestion-control clock. kcptun's tunnels run
// for days, idle for hours; a µs clock of 32 bits wraps every 71.6 minutes,
// and a stamp compared by int32 difference reads as recent once it is 35.8
// minutes old. These tests idle a pair of cores for 40 minutes of virtual
// time (a jump of the ms clock, nothing runs meanwhile) and check that the
// controllers and the pacer see the idle for what it was. No real clock, no
// sleeps.

// idleMs is the virtual idle of the tests: more than 2^31 µs (35.8 min), less
// than 2^32 µs (71.6 min), where a 32-bit µs stamp read as in the future.
const idleMs = 40 * 60 * 1000

// clockLink is a one-flow link for the clock tests: no bottleneck, a one-way
// delay that the test may change, and hooks that drop data datagrams on
// the forward path and datagrams of any kind on the return path. Both cores
// are flushed every virtual ms.
type clockLink struct {
	snd, rcv *KCP
	now      uint32 // ms
	delay    uint32 // ms one way
	fwd, rev []clockPkt
	drop     func(data []byte) bool // forward data datagrams; nil: none dropped
	dropRev  func(data []byte) bool // return datagrams, as they arrive; nil: none dropped
	writing  bool                   // the sender's application writes while it may
	chunk    []byte
	rbuf     []byte
	read     int
}

// cutWatch wraps a controller and records what its loss signals did to
// the window: the signals, the cuts among them, and the last cut.
type cutWatch struct {
	controller
	losses, cuts   int
	cutFrom, cutTo uint32
}

func (w *cutWatch) onLoss(now uint64, sn uint32, bytes int, sndNxt uint32) {
	before := w.window()
	w.controller.onLoss(now, sn, bytes, sndNxt)
	w.losses++
	if after := w.window(); after < before {
		w.cuts++
		w.cutFrom, w.cutTo = before, after
	}
}

type clockPkt struct {
	at   uint32
	data []byte
}

func newClockLink(t *testing.T, cc string, delay uint32) *clockLink {
	t.Helper()
	l := &clockLink{delay: delay, chunk: make([]byte, 16<<10), rbuf: make([]byte, 1<<16)}
	l.snd, l.rcv = NewKCP(0xc1, nil), NewKCP(0xc1, nil)
	for _, k := range []*KCP{l.snd, l.rcv} {
		k.NoDelay(1, 10, 2, 1)
		k.WndSize(256, 256)
		k.setStream(true)
		if err := k.SetCongestionControl(cc); err != nil {
			t.Fatal(err)
		}
	}
	l.snd.output = func(buf []byte, size int) {
		if l.drop != nil && holdsPush(buf[:size]) && l.drop(buf[:size]) {
			return
		}
		l.fwd = append(l.fwd, clockPkt{at: l.now + l.delay, data: append([]byte(nil), buf[:size]...)})
	}
	l.rcv.output = func(buf []byte, size int) {
		l.rev = append(l.rev, clockPkt{at: l.now + l.delay, data: append([]byte(nil), buf[:size]...)})
	}
	return l
}

// run advances the link by ms virtual milliseconds.
func (l *clockLink) run(ms uint32) {
	for end := l.now + ms; l.now != end; l.now++ {
		for len(l.fwd) > 0 && int32(l.fwd[0].at-l.now) <= 0 {
			l.rcv.input(l.now, l.fwd[0].data, IKCP_PACKET_REGULAR, false)
			l.fwd = l.fwd[1:]
		}
		for len(l.rev) > 0 && int32(l.rev[0].at-l.now) <= 0 {
			if l.dropRev == nil || !l.dropRev(l.rev[0].data) {
				l.snd.input(l.now, l.rev[0].data, IKCP_PACKET_REGULAR, false)
			}
			l.rev = l.rev[1:]
		}
		for {
			n := l.rcv.Recv(l.rbuf)
			if n < 0 {
				break
			}
			l.read += n
		}
		for l.writing && l.snd.writable() {
			l.snd.Send(l.chunk)
		}
		l.snd.flush(l.now, IKCP_FLUSH_FULL)
		l.rcv.flush(l.now, IKCP_FLUSH_FULL)
	}
}

// quiesce stops the sender's application and runs until everything it
// wrote is acknowledged, then idles for ms: the clock jumps, nothing runs.
func (l *clockLink) quiesce(t *testing.T, ms uint32) {
	t.Helper()
	l.writing = false
	for range 100 {
		if l.snd.WaitSnd() == 0 && len(l.fwd) == 0 && len(l.rev) == 0 {
			l.now += ms
			return
		}
		l.run(100)
	}
	t.Fatalf("%d segments still unacknowledged after 10 s", l.snd.WaitSnd())
}

// dropOnce returns a drop hook that drops the first data datagram sent at or
// after ms time from (one loss episode).
func (l *clockLink) dropOnce(from uint32) func([]byte) bool {
	done := false
	return func([]byte) bool {
		if done || int32(l.now-from) < 0 {
			return false
		}
		done = true
		return true
	}
}

// TestCubicLossAfterLongQuiet: CUBIC cuts its window on a loss that comes
// 40 minutes after its last one. On the 32-bit µs clock the end of the
// recovery period (the loss's time plus an RTT) was compared by int32
// difference: 35.8 minutes on it read as still ahead, and every loss of the
// next 35.8 minutes was ignored; the window never shrank and the sender
// flooded a congested link.
func TestCubicLossAfterLongQuiet(t *testing.T) {
	l := newClockLink(t, CongestionCUBIC, 10)
	w := &cutWatch{controller: l.snd.cc.ctl}
	l.snd.cc.ctl = w
	l.writing = true
	l.drop = l.dropOnce(1000)
	l.run(3000)
	if w.losses == 0 || w.cuts == 0 {
		t.Fatalf("the first loss episode: %d loss signals, %d cuts", w.losses, w.cuts)
	}
	l.drop = nil
	l.quiesce(t, idleMs)

	l.writing = true
	l.run(1000)
	w.losses, w.cuts = 0, 0
	l.drop = l.dropOnce(l.now)
	l.run(2000)
	if w.losses == 0 {
		t.Fatal("the dropped datagram was not retransmitted fast")
	}
	if w.cuts == 0 {
		t.Fatalf("a loss %d min after the last left the window alone (%d segments)",
			idleMs/60_000, w.window())
	}
	// a multiplicative decrease by beta (0.7), give or take the rounding
	// of the window to whole segments
	if float64(w.cutTo) > cubicBeta*float64(w.cutFrom)+1 {
		t.Fatalf("window cut from %d to %d segments, want about %.0f", w.cutFrom, w.cutTo, cubicBeta*float64(w.cutFrom))
	}
	t.Logf("after %d min: window cut from %d to %d segments", idleMs/60_000, w.cutFrom, w.cutTo)
}

// TestBBRMinRTTAfterLongIdle: a BBR flow learns a min RTT of 20 ms, idles
// for 40 minutes, and comes back on a path whose RTT is 100 ms (a route
// change, a roaming client). Its min RTT filter spans 10 s, so the 20 ms is
// long expired and the first samples set the new one; 9 s of traffic later
// (still within one filter window) the model must hold the new path. On the
// 32-bit µs clock the stamps of the old min RTT read as recent after the
// idle, and the stale 20 ms stayed for up to 35.8 more minutes: windows and
// the pacing rate sized for a fifth of the real BDP.
func TestBBRMinRTTAfterLongIdle(t *testing.T) {
	l := newClockLink(t, CongestionBBR, 10)
	l.writing = true
	l.run(3000)
	if got := l.snd.cc.ctl.minRTT(); got < 20_000 || got > 25_000 {
		t.Fatalf("min RTT %d µs on the 20 ms path before the idle", got)
	}
	l.quiesce(t, idleMs)

	l.delay = 50
	l.writing = true
	l.run(9000)
	if got := l.snd.cc.ctl.minRTT(); got < 100_000 {
		t.Fatalf("min RTT %d µs 9 s after a %d min idle, on a 100 ms path", got, idleMs/60_000)
	}
	if l.read == 0 {
		t.Fatal("nothing was delivered")
	}
	t.Logf("min RTT %d µs after the idle, %d bytes read", l.snd.cc.ctl.minRTT(), l.read)
}

// TestPaceRefillsAfterLongIdle: a paced sender that emptied its bucket and
// idled for 40 minutes has a full bucket again. An int32 difference of the
// 32-bit µs clock read the idle as negative and earned nothing, so the
// first flush after it was held back as if no time had passed.
func TestPaceRefillsAfterLongIdle(t *testing.T) {
	sent := 0
	k := NewKCP(1, func(_ []byte, size int) { sent += size })
	k.NoDelay(1, 10, 2, 1)
	k.WndSize(1024, 1024)
	k.rmtWnd = 1024
	const rate = 1_000_000
	k.setPace(0, rate, 0)
	for range 64 {
		k.Send(make([]byte, 16<<10))
	}
	now := uint32(0)
	k.flush(now, IKCP_FLUSH_FULL)
	if k.paceWait(k.usAt(now), 0) == 0 {
		t.Fatal("the bucket is not empty after the first burst")
	}
	now += idleMs
	if w := k.paceWait(k.usAt(now), 0); w != 0 {
		t.Fatalf("after a %d min idle the pacer still waits %d ms", idleMs/60_000, w)
	}
	sent = 0
	k.flush(now, IKCP_FLUSH_FULL)
	// the bucket holds 20 ms of the rate
	if want := rate * 20 / 1000; sent < want {
		t.Fatalf("the first flush after the idle sent %d bytes, want a full bucket (%d)", sent, want)
	}
}

// TestCCClockExtendsMs: a bare KCP's µs clock is its ms clock times 1000,
// extended to 64 bits: monotonic across 2^32 µs (4,294,967 ms, where ms ×
// 1000 as a uint32 wrapped) and across the ms clock's own wrap at 2^32 ms,
// never running back when a caller's time steps back, and usAt (which
// check calls with any time) leaves it unchanged.
func TestCCClockExtendsMs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start uint64 // ms, as if the ms clock did not wrap
	}{
		{"us32", 4_294_967 - 3_000},
		{"ms32", 1<<32 - 3_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := NewKCP(1, nil)
			prev := uint64(0)
			for ms := tc.start; ms < tc.start+6_000; ms += 7 {
				got := uint64(k.ccNow(uint32(ms)))
				if got != ms*1000 || got <= prev {
					t.Fatalf("ccNow(%d) = %d µs after %d, want %d", uint32(ms), got, prev, ms*1000)
				}
				prev = got
				// a look ahead (check) moves nothing; a step back reads
				// as the last reading
				if ahead := uint64(k.usAt(uint32(ms + 5))); ahead != got+5000 {
					t.Fatalf("usAt(%d) = %d µs, want %d", uint32(ms+5), ahead, got+5000)
				}
				if back := uint64(k.ccNow(uint32(ms - 3))); back != got {
					t.Fatalf("ccNow stepped back to %d µs from %d", back, got)
				}
			}
		})
	}
}
