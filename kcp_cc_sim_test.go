package kcp

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// A bottleneck link for the congestion controllers: senders share one
// drop-tail FIFO served at a fixed rate (20 Mbit/s), with a buffer of one
// BDP, then 20 ms of propagation to their receivers; ACKs come back over an
// uncongested 20 ms path. Random loss, when set, drops data datagrams
// before the bottleneck (the forward path; ACKs are not lost, so every
// retransmission answers a real loss). Time runs on a virtual clock: the
// link in µs, the KCPs in ms, as a session's timers would drive them.
// Nothing reads the real clock or sleeps.

const (
	bnRate      = 2_500_000                   // bytes/s: 20 Mbit/s
	bnDelay     = 20                          // ms one way
	bnBuffer    = bnRate * 2 * bnDelay / 1000 // bytes: one BDP of the 40 ms base RTT
	bnUDPHeader = 28                          // IPv4 + UDP bytes each datagram carries on the link
	bnWindow    = 512                         // send and receive windows of every flow, segments
)

type bnPacket struct {
	at   uint64 // µs of arrival at the far end
	flow int
	data []byte
}

type bnFlow struct {
	snd, rcv  *KCP
	nextSnd   uint32 // ms the sender's next flush is due
	nextRcv   uint32
	chunk     []byte
	written   uint64
	read      uint64 // bytes the receiving application read
	readAt    uint64 // read at the start of the measurement
	fresh     uint64 // payload bytes of data segments that reached the receiver for the first time
	freshAt   uint64 // fresh at the start of the measurement
	rcvdSn    []bool // sns that reached the receiver (index sn)
	rbuf      []byte
	sentSn    []bool // sns sent at least once (index sn)
	lastEmit  uint32 // ms of the last data datagram after the warm-up
	burst     int    // data datagrams emitted in that ms
	maxBurst  int    // most data datagrams emitted in one ms after the warm-up
	emitMs    int    // ms after the warm-up in which data left
	lostBytes uint64 // bytes of data segments dropped on the link
	retxBytes uint64 // bytes of data segments sent more than once
	series    []bnPoint
}

// bnPoint is one sample of a flow's state for the plot.
type bnPoint struct {
	t     uint32 // ms
	bytes uint64 // new payload bytes that reached the receiver so far
	rtt   int32  // smoothed RTT, ms
	cwnd  uint32 // segments
}

type bnResult struct {
	goodput  float64 // share of the link's rate carrying new application bytes in the window
	p95Queue float64 // ms, 95th percentile of the time data waited in the bottleneck buffer
	maxQueue float64 // ms
	lost     uint64  // bytes of data segments dropped (random loss and overflow)
	retx     uint64  // bytes of data segments sent again
	fairness float64 // Jain's index over the flows' goodput (1 for one flow)
	flows    []*bnFlow
}

type bnConfig struct {
	cc       string
	mixed    []string // per-flow controllers, overriding cc (len flows)
	stagger  uint32   // ms between the starts of successive flows
	flows    int
	loss     float64
	duration uint32 // ms
	warmup   uint32 // ms before the measurement starts
	seed     uint64
	sample   uint32 // ms between series points; 0: none
	userRate uint32 // SetRateLimit's cap on every sender, bytes/s; 0: none
}

// runBottleneck runs cfg.flows bulk transfers through the bottleneck.
func runBottleneck(t testing.TB, cfg bnConfig) bnResult {
	rng := rand.New(rand.NewPCG(cfg.seed, uint64(cfg.flows)<<8|uint64(cfg.loss*1000)))
	var (
		now      uint32 // ms
		busy     uint64 // µs at which the bottleneck finishes what it holds
		fwd, rev []bnPacket
		pool     [][]byte
		queueUs  []uint32
		res      bnResult
	)
	nowUs := func() uint64 { return uint64(now) * 1000 }
	copyOf := func(b []byte) []byte {
		var p []byte
		if n := len(pool); n > 0 {
			p, pool = pool[n-1][:0], pool[:n-1]
		}
		return append(p, b...)
	}
	flows := make([]*bnFlow, cfg.flows)
	for i := range flows {
		f := &bnFlow{rbuf: make([]byte, 1<<16), chunk: make([]byte, 16<<10)}
		for j := range f.chunk {
			f.chunk[j] = byte(j*7 + i)
		}
		f.snd = NewKCP(uint32(0xb0+i), nil)
		f.rcv = NewKCP(uint32(0xb0+i), nil)
		for _, k := range []*KCP{f.snd, f.rcv} {
			k.NoDelay(1, 10, 2, 0)
			k.WndSize(bnWindow, bnWindow)
			k.setStream(true)
			cc := cfg.cc
			if cfg.mixed != nil {
				cc = cfg.mixed[i]
			}
			if err := k.SetCongestionControl(cc); err != nil {
				t.Fatal(err)
			}
		}
		if cfg.userRate != 0 {
			f.snd.setPace(0, cfg.userRate, bnUDPHeader)
		}
		flow := i
		f.snd.output = func(buf []byte, size int) {
			data := buf[:size]
			push := pushBytes(data, func(sn uint32, n int) {
				for int(sn) >= len(f.sentSn) {
					f.sentSn = append(f.sentSn, make([]bool, 1024)...)
				}
				if f.sentSn[sn] {
					f.retxBytes += uint64(n)
				}
				f.sentSn[sn] = true
			})
			if push > 0 && now >= cfg.warmup {
				if now != f.lastEmit || f.emitMs == 0 {
					f.lastEmit, f.burst = now, 0
					f.emitMs++
				}
				f.burst++
				f.maxBurst = max(f.maxBurst, f.burst)
			}
			if push > 0 && rng.Float64() < cfg.loss {
				f.lostBytes += uint64(push)
				return
			}
			at := nowUs()
			start := max(at, busy)
			wire := uint64(size + bnUDPHeader)
			if (start-at)*bnRate/1_000_000+wire > bnBuffer {
				f.lostBytes += uint64(push)
				return
			}
			if push > 0 && now >= cfg.warmup {
				queueUs = append(queueUs, uint32(start-at))
			}
			busy = start + wire*1_000_000/bnRate
			fwd = append(fwd, bnPacket{at: busy + bnDelay*1000, flow: flow, data: copyOf(data)})
		}
		f.rcv.output = func(buf []byte, size int) {
			rev = append(rev, bnPacket{at: nowUs() + bnDelay*1000, flow: flow, data: copyOf(buf[:size])})
		}
		flows[i] = f
	}

	for ; now < cfg.duration; now++ {
		if now == cfg.warmup {
			for _, f := range flows {
				f.readAt, f.freshAt = f.read, f.fresh
			}
		}
		// arrivals due by the end of this ms
		for len(fwd) > 0 && fwd[0].at <= nowUs() {
			p := fwd[0]
			fwd = fwd[1:]
			f := flows[p.flow]
			pushBytes(p.data, func(sn uint32, n int) {
				for int(sn) >= len(f.rcvdSn) {
					f.rcvdSn = append(f.rcvdSn, make([]bool, 1024)...)
				}
				if !f.rcvdSn[sn] {
					f.fresh += uint64(n - IKCP_OVERHEAD)
				}
				f.rcvdSn[sn] = true
			})
			f.rcv.input(now, p.data, IKCP_PACKET_REGULAR, false)
			pool = append(pool, p.data)
		}
		for len(rev) > 0 && rev[0].at <= nowUs() {
			p := rev[0]
			rev = rev[1:]
			flows[p.flow].snd.input(now, p.data, IKCP_PACKET_REGULAR, false)
			pool = append(pool, p.data)
		}
		for i, f := range flows {
			// the receiving application reads and checks everything
			for {
				n := f.rcv.Recv(f.rbuf)
				if n < 0 {
					break
				}
				for j, c := range f.rbuf[:n] {
					off := (f.read + uint64(j)) % uint64(len(f.chunk))
					if c != f.chunk[off] {
						t.Fatalf("flow data corrupt at byte %d", f.read+uint64(j))
					}
				}
				f.read += uint64(n)
			}
			// the sending application writes while the core lets it
			wrote := false
			for now >= uint32(i)*cfg.stagger && f.snd.writable() {
				off := int(f.written % uint64(len(f.chunk)))
				f.snd.Send(f.chunk[off:])
				f.written += uint64(len(f.chunk) - off)
				wrote = true
			}
			if wrote {
				f.nextSnd = now
			}
			if int32(now-f.nextSnd) >= 0 {
				f.nextSnd = now + f.snd.flush(now, IKCP_FLUSH_FULL)
			}
			if int32(now-f.nextRcv) >= 0 {
				f.nextRcv = now + f.rcv.flush(now, IKCP_FLUSH_FULL)
			}
			if cfg.sample > 0 && now%cfg.sample == 0 {
				cwnd, _, _, _ := f.snd.ccState()
				f.series = append(f.series, bnPoint{t: now, bytes: f.fresh, rtt: f.snd.rxSrtt, cwnd: cwnd})
			}
		}
	}

	secs := float64(cfg.duration-cfg.warmup) / 1000
	var sum, sumSq float64
	for _, f := range flows {
		// Goodput counts each data byte once, when it first crosses the
		// link: what the receiving application reads lags by what waits
		// behind a hole, which would blur a window's edges.
		g := float64(f.fresh - f.freshAt)
		sum += g
		sumSq += g * g
		res.lost += f.lostBytes
		res.retx += f.retxBytes
	}
	res.goodput = sum / secs / bnRate
	if sumSq > 0 {
		res.fairness = sum * sum / (float64(len(flows)) * sumSq)
	}
	if len(queueUs) > 0 {
		slices.Sort(queueUs)
		res.p95Queue = float64(queueUs[len(queueUs)*95/100]) / 1000
		res.maxQueue = float64(queueUs[len(queueUs)-1]) / 1000
	}
	res.flows = flows
	return res
}

// pushBytes calls fn with the sn and bytes (header and payload) of each data
// segment in a datagram and returns their total.
func pushBytes(d []byte, fn func(sn uint32, n int)) int {
	total := 0
	for len(d) >= IKCP_OVERHEAD {
		n := IKCP_OVERHEAD + int(binary.LittleEndian.Uint32(d[20:]))
		if n > len(d) {
			break
		}
		if d[4] == IKCP_CMD_PUSH {
			fn(binary.LittleEndian.Uint32(d[12:]), n)
			total += n
		}
		d = d[n:]
	}
	return total
}

// bnDuration is the virtual length of each bottleneck run: 12 s by
// default, 60 s with KCPX_FULL set.
func bnDuration() (duration, warmup uint32) {
	if os.Getenv("KCPX_FULL") != "" {
		return 60_000, 5_000
	}
	return 12_000, 2_000
}

// TestBottleneck runs every controller through the 20 Mbit/s bottleneck
// with one and four flows at 0, 1, 5 and 10% random loss, logs the table,
// and holds BBR to the targets of issue 16: goodput >= 90% of the link at
// 0-1% loss and >= 75% at 5%, p95 queueing delay <= half the 40 ms min
// RTT, retransmitted bytes <= 1.5 x lost bytes, and Jain fairness >= 0.95
// across four flows.
func TestBottleneck(t *testing.T) {
	duration, warmup := bnDuration()
	losses := []float64{0, 0.01, 0.05, 0.10}
	var table strings.Builder
	fmt.Fprintf(&table, "\n20 Mbit/s bottleneck, 1 BDP drop-tail buffer, 40 ms RTT; %d s measured after %d s\n",
		(duration-warmup)/1000, warmup/1000)
	fmt.Fprintf(&table, "| cc    | flows | loss | goodput | p95 queue | max queue | lost KB | retx KB | retx/lost | fairness |\n")
	fmt.Fprintf(&table, "|-------|------:|-----:|--------:|----------:|----------:|--------:|--------:|----------:|---------:|\n")
	// Each run is a pure simulation on its own virtual clock: the runs go
	// in parallel (on the race detector they cost seconds of CPU each),
	// and the table is logged once all are done, in their order.
	ccs := []string{CongestionBBR, CongestionCUBIC, CongestionKCP, CongestionNone}
	rows := make([]string, 0, len(ccs)*2*len(losses)) // never grows: runs hold pointers into it
	t.Cleanup(func() {
		if raceEnabled {
			table.WriteString("(race detector: rows other than bbr ran a quarter as long)\n")
		}
		for _, row := range rows {
			table.WriteString(row)
		}
		t.Log(table.String())
	})
	for _, cc := range ccs {
		for _, flows := range []int{1, 4} {
			for _, loss := range losses {
				name := fmt.Sprintf("%s/%dflow/loss%02d", cc, flows, int(loss*100))
				rows = append(rows, "")
				row := &rows[len(rows)-1]
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					d, w := duration, warmup
					if raceEnabled && cc != CongestionBBR {
						// Only BBR's rows are held to targets; the others
						// are logged, and under the race detector (which
						// finds nothing in one goroutine's simulation) run
						// a quarter as long.
						d, w = duration/4, warmup/4
					}
					r := runBottleneck(t, bnConfig{cc: cc, flows: flows, loss: loss, duration: d, warmup: w, seed: 16})
					ratio := math.NaN()
					if r.lost > 0 {
						ratio = float64(r.retx) / float64(r.lost)
					}
					*row = fmt.Sprintf("| %-5s | %5d | %3.0f%% | %6.1f%% | %6.1f ms | %6.1f ms | %7d | %7d | %9.2f | %8.3f |\n",
						cc, flows, loss*100, r.goodput*100, r.p95Queue, r.maxQueue, r.lost/1000, r.retx/1000, ratio, r.fairness)
					if cc != CongestionBBR {
						return
					}
					want := 0.90
					if loss >= 0.05 {
						want = 0.75
					}
					if loss <= 0.05 && r.goodput < want {
						t.Errorf("goodput %.1f%% of the link, want >= %.0f%%", r.goodput*100, want*100)
					}
					if r.p95Queue > 0.5*2*bnDelay {
						t.Errorf("p95 queueing delay %.1f ms, want <= %d ms", r.p95Queue, bnDelay)
					}
					if float64(r.retx) > 1.5*float64(r.lost) {
						t.Errorf("retransmitted %d B for %d B lost, want <= 1.5x", r.retx, r.lost)
					}
					if flows > 1 && r.fairness < 0.95 {
						t.Errorf("Jain fairness %.3f, want >= 0.95", r.fairness)
					}
				})
			}
		}
	}
}

// TestBBRModel: after a run alone on the bottleneck, BBR's model holds the
// path: its delivery-rate samples near the link's rate, its min RTT the
// 40 ms base RTT (plus a datagram's serialisation, within the ms clock), a
// window between one and three BDPs; and its pacer released data in small
// bursts spread over most milliseconds, not in one burst per flush tick.
func TestBBRModel(t *testing.T) {
	r := runBottleneck(t, bnConfig{cc: CongestionBBR, flows: 1, duration: 6000, warmup: 2000, seed: 3})
	f := r.flows[0]
	cwnd, pacing, rate, minRTT := f.snd.ccState()
	bdp := float64(bnRate) * 2 * bnDelay / 1000 / float64(f.snd.mtu)
	t.Logf("cwnd %d segments (BDP %.0f), pacing %d B/s, delivery rate %d B/s, min RTT %d ms; bursts of at most %d datagrams, data left in %d of %d ms",
		cwnd, bdp, pacing, rate, minRTT, f.maxBurst, f.emitMs, 4000)
	if rate < bnRate*8/10 || rate > bnRate*11/10 {
		t.Errorf("delivery rate %d B/s, link %d B/s", rate, bnRate)
	}
	if minRTT < 2*bnDelay || minRTT > 2*bnDelay+2 {
		t.Errorf("min RTT %d ms, want %d..%d", minRTT, 2*bnDelay, 2*bnDelay+2)
	}
	if float64(cwnd) < bdp || float64(cwnd) > 3*bdp {
		t.Errorf("cwnd %d segments, BDP %.0f", cwnd, bdp)
	}
	// The bucket holds 2 ms of the rate, at least 4 datagrams: with a ms
	// of refill and one datagram of overrun, a burst stays under 8.
	if f.maxBurst > 8 {
		t.Errorf("a burst of %d datagrams in one ms", f.maxBurst)
	}
	if f.emitMs < 4000/2 {
		t.Errorf("data left in only %d of 4000 ms", f.emitMs)
	}
}

// TestRateLimitCapsController: SetRateLimit's rate caps the controller's
// pacing rate: BBR alone on a 20 Mbit/s link, capped at 1 MB/s, sends no
// faster than the cap and still close to it.
func TestRateLimitCapsController(t *testing.T) {
	const limit = 1_000_000
	for _, cc := range []string{CongestionBBR, CongestionCUBIC} {
		t.Run(cc, func(t *testing.T) {
			r := runBottleneck(t, bnConfig{cc: cc, flows: 1, duration: 8000, warmup: 2000, seed: 5, userRate: limit})
			_, pacing, _, _ := r.flows[0].snd.ccState()
			got := r.goodput * bnRate
			t.Logf("%s capped at %d B/s: goodput %.0f B/s, pacing %d B/s", cc, limit, got, pacing)
			if pacing > limit {
				t.Errorf("pacing at %d B/s above the %d B/s limit", pacing, limit)
			}
			if got > limit || got < 0.85*limit {
				t.Errorf("goodput %.0f B/s with a %d B/s limit", got, limit)
			}
		})
	}
}

// TestBottleneckMixed: BBR beside CUBIC on the bottleneck (the simulated
// counterpart of the kernel test against TCP CUBIC: BBR must get between
// 0.5 and 2 times its fair share), beside KCP's own window, and a BBR flow
// joining three that already share the link. No flow may be starved (less
// than a fifth of its fair share).
func TestBottleneckMixed(t *testing.T) {
	duration, warmup := bnDuration()
	for _, tc := range []struct {
		name    string
		mixed   []string
		stagger uint32
	}{
		{"bbr+cubic", []string{CongestionBBR, CongestionCUBIC}, 0},
		{"bbr+kcp", []string{CongestionBBR, CongestionKCP}, 0},
		{"3bbr+late bbr", []string{CongestionBBR, CongestionBBR, CongestionBBR, CongestionBBR}, warmup / 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a pure simulation on its own virtual clock
			r := runBottleneck(t, bnConfig{mixed: tc.mixed, flows: len(tc.mixed), stagger: tc.stagger, duration: duration, warmup: warmup, seed: 9})
			fair := r.goodput * bnRate / float64(len(tc.mixed))
			line := fmt.Sprintf("%s: goodput %.1f%%, p95 queue %.1f ms, Jain %.3f; share of fair:", tc.name, r.goodput*100, r.p95Queue, r.fairness)
			secs := float64(duration-warmup) / 1000
			for i, f := range r.flows {
				got := float64(f.fresh-f.freshAt) / secs
				line += fmt.Sprintf(" %s %.2f", tc.mixed[i], got/fair)
				if got < fair/5 {
					t.Errorf("flow %d (%s) starved: %.0f B/s of a fair %.0f", i, tc.mixed[i], got, fair)
				}
				if tc.name == "bbr+cubic" && tc.mixed[i] == CongestionBBR && (got < fair/2 || got > 2*fair) {
					t.Errorf("BBR beside CUBIC got %.2f of its fair share, want 0.5..2", got/fair)
				}
			}
			t.Log(line)
		})
	}
}
