package kcp

import (
	"testing"
)

// A fast, short path for the congestion controllers: 1 Gbit/s, 60 µs one
// way, a drop-tail buffer of 512 KB, one bulk flow. Its round trip is a
// tenth of a ms, shorter than the receiver's ACK interval (10 ms), as on
// loopback or a LAN. Time runs on a virtual clock in steps of fpStep µs;
// the cores get both clocks from it, the ms one (their timers and wire ts)
// and, unless msOnly, the µs one a session gives them. Nothing reads the
// real clock or sleeps.

const (
	fpRate   = 125_000_000 // bytes/s: 1 Gbit/s
	fpDelay  = 60          // µs one way
	fpBuffer = 512 << 10   // bytes
	fpStep   = 10          // µs per step
	fpWindow = 1024        // send and receive windows, segments
)

type fpResult struct {
	goodput float64 // share of the link's rate carrying new application bytes after the warm-up
	lost    uint64  // data datagrams dropped at the bottleneck
	cwnd    uint32
	minRTT  uint32 // µs, the controller's
	pacing  uint64
}

// runFastPath moves data one way over the fast path with controller cc for
// durationUs, measuring after warmupUs.
func runFastPath(t testing.TB, cc string, msOnly bool, durationUs, warmupUs uint64) fpResult {
	type pkt struct {
		at   uint64
		data []byte
	}
	var (
		nowUs    uint64
		busy     uint64
		fwd, rev []pkt
		pool     [][]byte
		res      fpResult
		fresh    uint64
		freshAt  uint64
		rcvdSn   []bool
	)
	ms := func() uint32 { return uint32(nowUs / 1000) }
	copyOf := func(b []byte) []byte {
		var p []byte
		if n := len(pool); n > 0 {
			p, pool = pool[n-1][:0], pool[:n-1]
		}
		return append(p, b...)
	}
	snd, rcv := NewKCP(0xfa, nil), NewKCP(0xfa, nil)
	for _, k := range []*KCP{snd, rcv} {
		k.NoDelay(1, 10, 2, 1)
		k.WndSize(fpWindow, fpWindow)
		k.setStream(true)
		if !msOnly {
			k.cc.clockUs = func() uint64 { return nowUs }
		}
	}
	if err := snd.SetCongestionControl(cc); err != nil {
		t.Fatal(err)
	}
	snd.output = func(buf []byte, size int) {
		start := max(nowUs, busy)
		wire := uint64(size + bnUDPHeader)
		if (start-nowUs)*fpRate/1_000_000+wire > fpBuffer {
			res.lost++
			return
		}
		busy = start + wire*1_000_000/fpRate
		fwd = append(fwd, pkt{at: busy + fpDelay, data: copyOf(buf[:size])})
	}
	rcv.output = func(buf []byte, size int) {
		rev = append(rev, pkt{at: nowUs + fpDelay, data: copyOf(buf[:size])})
	}
	chunk := make([]byte, 64<<10)
	rbuf := make([]byte, 1<<20)
	var nextSnd, nextRcv uint64 // µs
	for ; nowUs < durationUs; nowUs += fpStep {
		if nowUs == warmupUs {
			freshAt = fresh
		}
		for len(fwd) > 0 && fwd[0].at <= nowUs {
			p := fwd[0]
			fwd = fwd[1:]
			pushBytes(p.data, func(sn uint32, n int) {
				for int(sn) >= len(rcvdSn) {
					rcvdSn = append(rcvdSn, make([]bool, 4096)...)
				}
				if !rcvdSn[sn] {
					fresh += uint64(n - IKCP_OVERHEAD)
				}
				rcvdSn[sn] = true
			})
			rcv.input(ms(), p.data, IKCP_PACKET_REGULAR, false)
			pool = append(pool, p.data)
		}
		for len(rev) > 0 && rev[0].at <= nowUs {
			p := rev[0]
			rev = rev[1:]
			snd.input(ms(), p.data, IKCP_PACKET_REGULAR, false)
			pool = append(pool, p.data)
		}
		for rcv.Recv(rbuf) > 0 {
		}
		// The sender writes while the core lets it and, like a session's
		// Write, flushes at once; otherwise at the time flush asked for
		// (a session's timer, in whole ms).
		wrote := false
		for snd.writable() {
			snd.Send(chunk)
			wrote = true
		}
		if wrote || nowUs >= nextSnd {
			nextSnd = (uint64(ms()) + uint64(snd.flush(ms(), IKCP_FLUSH_FULL))) * 1000
		}
		if nowUs >= nextRcv {
			nextRcv = (uint64(ms()) + uint64(rcv.flush(ms(), IKCP_FLUSH_FULL))) * 1000
		}
	}
	res.goodput = float64(fresh-freshAt) / (float64(durationUs-warmupUs) / 1e6) / fpRate
	res.cwnd, res.pacing, _, _ = snd.ccState()
	if snd.cc.ctl != nil {
		res.minRTT = snd.cc.ctl.minRTT()
	}
	return res
}

// TestFastPathControllers: on a path whose round trip is a tenth of a ms,
// BBR fills a 1 Gbit/s link (nc=1, unpaced with a window of 1024, floods
// the buffer and loses a third of what it sends) without a loss, and its
// model holds the path: the min RTT is the 0.12 ms base RTT (plus
// serialisation and pacing), and the window covers the BDP and the mtu of
// ACKs a receiver batches before it answers, not the BDP of the min RTT
// alone (a dozen segments), nor the 10 ms the receiver may hold an ACK
// (which would overflow the buffer). On the ms clock alone (msOnly: the
// sampler and controllers on ms × 1000, as a bare KCP runs them and as all
// ran before the µs clock) a round trip reads as 0 or 1 ms and rate
// samples quantize; those runs, and CUBIC's, are logged for comparison.
func TestFastPathControllers(t *testing.T) {
	const duration, warmup = 1_500_000, 500_000
	none := runFastPath(t, CongestionNone, false, duration, warmup)
	t.Logf("none: goodput %.1f%% of 1 Gbit/s, %d datagrams dropped", none.goodput*100, none.lost)
	for _, cc := range []string{CongestionBBR, CongestionCUBIC} {
		r := runFastPath(t, cc, false, duration, warmup)
		coarse := runFastPath(t, cc, true, duration, warmup)
		t.Logf("%s: goodput %.1f%% (%.1f%% on the ms clock alone), %d dropped, cwnd %d, pacing %d B/s, min RTT %d µs",
			cc, r.goodput*100, coarse.goodput*100, r.lost, r.cwnd, r.pacing, r.minRTT)
		if cc != CongestionBBR {
			continue
		}
		if r.goodput < 0.9 {
			t.Errorf("goodput %.1f%% of the link, want >= 90%%", r.goodput*100)
		}
		if r.lost > 0 {
			t.Errorf("%d datagrams dropped at the bottleneck", r.lost)
		}
		if r.minRTT < 2*fpDelay || r.minRTT > 2*fpDelay+200 {
			t.Errorf("min RTT %d µs, base %d µs", r.minRTT, 2*fpDelay)
		}
		bdp := uint32(fpRate * 2 * fpDelay / 1_000_000 / IKCP_MTU_DEF)
		batch := uint32(IKCP_MTU_DEF / IKCP_OVERHEAD)
		maxWnd := uint32((fpBuffer + fpRate*2*fpDelay/1_000_000) / IKCP_MTU_DEF)
		if r.cwnd < bdp+batch || r.cwnd > maxWnd {
			t.Errorf("cwnd %d segments, want %d..%d (BDP %d and an ACK batch of %d; BDP and buffer)", r.cwnd, bdp+batch, maxWnd, bdp, batch)
		}
	}
}
