// Command bench measures kcpx against kcp-go v5.6.72, the kernel's TCP and
// quic-go side by side, with kcpx's secure mode (Noise IK, AES-256-GCM) as
// a fifth column, in one process, alternating the implementations round by
// round, and prints one table with every figure and kcpx's ratios to kcp-go
// and to TCP.
//
// Run it from the interop directory:
//
//	go run ./bench
//
// Every session measure uses the same implementation at both ends (kcpx to
// kcpx, kcp-go to kcp-go, ...) over loopback and starts its clock at the
// first byte delivered, so kcp-go's 32-segment initial window on listener
// sessions and quic-go's handshake and flow-control start cost none of them.
// The KCP libraries run with both windows 1024, nodelay 1,10,2,1, stream
// mode and 4 MiB socket buffers; TCP with Go's defaults (TCP_NODELAY, the
// kernel's buffer autotuning); quic-go with its default Config, one stream
// per connection, TLS 1.3 with a self-signed certificate made at start. TCP
// and quic-go take part in the plain measures only (no KCP cipher or FEC),
// and so does secure mode (its AEAD is part of the mode). Connection setup
// times Dial to the first echoed byte: handshakes included.
// Allocation and CPU figures cover the whole process, so both ends of the
// transfer. Microbenchmarks come from `go test -bench` in this module,
// medians of -count runs.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kcp "github.com/kcpx/kcp"
	"github.com/kcpx/kcp/interop"
)

var (
	rounds      = flag.Int("rounds", 3, "rounds per session measure; each round runs both libraries, order alternating")
	sinkMiB     = flag.Int("sink-mib", 64, "MiB per sink transfer")
	echoMiB     = flag.Int("echo-mib", 32, "MiB per echo transfer")
	pings       = flag.Int("pings", 2000, "64-byte round trips per latency measure")
	setups      = flag.Int("setups", 200, "connections opened per connection-setup measure")
	sessions    = flag.Bool("sessions", true, "run the session measures")
	micro       = flag.Bool("micro", true, "run the microbenchmarks (go test -bench)")
	microN      = flag.Int("micro-count", 5, "go test -count for the microbenchmarks")
	microTime   = flag.String("micro-benchtime", "200ms", "go test -benchtime for the paired microbenchmarks")
	tags        = flag.String("tags", "", "build tags for go test (layers not yet merged)")
	idle        = flag.String("idle", "1000,5000", "idle-session counts for the many-sessions measure (empty to skip)")
	bulkN       = flag.Int("bulk-sessions", 64, "sessions sinking at once into one listener (0 to skip)")
	bulkMiB     = flag.Int("bulk-mib", 8, "MiB each of the -bulk-sessions sessions sends")
	idleFor     = flag.Duration("idle-for", 30*time.Second, "duration of each many-sessions measure")
	idleEvery   = flag.Duration("idle-every", time.Second, "interval between one idle session's pings")
	idleLean    = flag.Bool("idle-lean", false, "idle clients of kcpx and kcp-go as raw KCP conversations served by one epoll loop per process (Linux), so 100,000 fit beside the server on a small machine; the session clients otherwise")
	idlePerProc = flag.Int("idle-per-proc", 18000, "idle clients per process; more go to child processes (the open-file limit is per process)")
	clientOf    = flag.String("client-of", "", "internal: the idle-client child's implementation")
	clientAddr  = flag.String("client-addr", "", "internal: the idle-client child's server address")
	clientN     = flag.Int("client-n", 0, "internal: the idle-client child's session count")
	clientIP    = flag.String("client-ip", "", "internal: the idle-client child's local address")
	only        = flag.String("only", "", "session measures to run, comma-separated (sink, echo, rtt, setup, load, many); empty runs all")
	role        = flag.String("role", "", "internal: run as the many-sessions server (kcpx, kcp-go, TCP or quic-go)")
	implList    = flag.String("impls", "kcpx,kcp-go,tcp,quic-go,kcpx-secure", "implementations to measure, in order (kcpx, kcp-go, tcp, quic-go, kcpx-secure); TCP, quic-go and kcpx secure mode take the plain measures only")
)

var pass = interop.KcptunPass("kcpx interop bench")

func main() {
	flag.Parse()
	raiseFileLimit()
	if *role == "idle-client" {
		idleClientProcess()
		return
	}
	if *role != "" {
		idleServer(*role)
		return
	}
	if path := os.Getenv("KCPX_BENCH_CPUPROFILE"); path != "" {
		// Profile the whole driver run, both ends of every session measure
		// (the idle servers profile themselves, into path.<name>).
		f, err := os.Create(path)
		if err != nil {
			fail("%v", err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if path := os.Getenv("KCPX_BENCH_TRACE"); path != "" {
		// An execution trace of the whole run (go tool trace; -pprof=sched
		// shows where goroutines waited to run). Keep the run short: the
		// trace grows by tens of MB a second under bulk load.
		f, err := os.Create(path)
		if err != nil {
			fail("%v", err)
		}
		if err := trace.Start(f); err != nil {
			fail("%v", err)
		}
		defer func() { trace.Stop(); f.Close() }()
	}
	cs := contenders(*implList)
	for _, c := range cs {
		columns = append(columns, c.name)
	}
	machine()
	if *sessions {
		sessionMeasures(cs)
	}
	if *idle != "" {
		idleMeasures(cs)
	}
	if *micro {
		printTable("Microbenchmarks (go test -bench Paired: both libraries timed in alternating ~50 µs blocks; median of runs)", microbenchmarks())
	}
}

// columns are the table's implementation columns, in -impls order.
var columns []string

func sessionMeasures(cs []contender) {
	var rows []row

	null, _ := interop.CipherByName("null")
	aes, _ := interop.CipherByName("aes")
	salsa, _ := interop.CipherByName("salsa20")
	gcm, _ := interop.CipherByName("aes-256-gcm")
	chacha, _ := interop.CipherByName("chacha20-poly1305")
	// The AEAD rows have no FEC: the table of issue 18 compares them with
	// the plain sink and with secure mode (AES-256-GCM, no FEC). Both kcp-go
	// lines (v5.6.72 and v5.7.6) have NewAESGCMCrypt and NewAEADCrypt.
	sinks := []struct {
		name   string
		c      interop.Cipher
		ds, ps int
	}{
		{"plain", null, 0, 0},
		{"AES + FEC 10/3", aes, 10, 3},
		{"Salsa20 + FEC 10/3", salsa, 10, 3},
		{"AES-GCM (NewAESGCMCrypt)", gcm, 0, 0},
		{"ChaCha20-Poly1305 (NewAEADCrypt)", chacha, 0, 0},
	}
	for i, s := range sinks {
		if !want("sink") {
			break
		}
		who := cs
		if i > 0 {
			who = kcpOnly(cs)
		}
		res := alternate(who, func(ct contender) transfer {
			return sink(ct, s.c, s.ds, s.ps, *sinkMiB<<20)
		})
		rows = append(rows,
			pick(res, "sink throughput, "+s.name, "MB/s", true, func(t transfer) float64 { return t.mbps }),
			pick(res, "  allocations per MiB delivered, "+s.name, "allocs", false, func(t transfer) float64 { return t.allocsPerMiB }),
			pick(res, "  bytes allocated per MiB delivered, "+s.name, "KB", false, func(t transfer) float64 { return t.bytesPerMiB / 1e3 }),
			pick(res, "  CPU seconds per GiB (both ends), "+s.name, "s", false, func(t transfer) float64 { return t.cpuPerGiB }),
		)
	}
	echoes := []struct {
		name             string
		c                interop.Cipher
		ds, ps, lds, lps int
	}{
		{"plain", null, 0, 0, 0, 0},
		{"Salsa20, FEC 10/3 dialer, 10/1 listener (kcp-go's BenchmarkEchoSpeed)", salsa, 10, 3, 10, 1},
	}
	for i, e := range echoes {
		if !want("echo") {
			break
		}
		who := cs
		if i > 0 {
			who = kcpOnly(cs)
		}
		res := alternate(who, func(ct contender) transfer {
			return echoSpeed(ct, e.c, e.ds, e.ps, e.lds, e.lps, *echoMiB<<20)
		})
		rows = append(rows,
			pick(res, "echo throughput, "+e.name, "MB/s", true, func(t transfer) float64 { return t.mbps }),
			pick(res, "  allocations per MiB echoed", "allocs", false, func(t transfer) float64 { return t.allocsPerMiB }),
			pick(res, "  CPU seconds per GiB echoed", "s", false, func(t transfer) float64 { return t.cpuPerGiB }),
		)
	}
	if want("rtt") {
		lat := alternate(cs, func(ct contender) transfer { return latency(ct, *pings) })
		rows = append(rows,
			pick(lat, "64 B round trip p50 (plain)", "µs", false, func(t transfer) float64 { return t.p50 }),
			pick(lat, "64 B round trip p99 (plain)", "µs", false, func(t transfer) float64 { return t.p99 }),
			pick(lat, "  allocations per round trip", "allocs", false, func(t transfer) float64 { return t.allocsPerOp }),
		)
	}
	if *setups > 0 && want("setup") {
		set := alternate(cs, func(ct contender) transfer { return connSetup(ct, *setups) })
		rows = append(rows,
			pick(set, "connection setup, dial to first 1-byte echo, p50", "µs", false, func(t transfer) float64 { return t.p50 }),
			pick(set, "connection setup, dial to first 1-byte echo, p99", "µs", false, func(t transfer) float64 { return t.p99 }),
			pick(set, "  CPU per connection, open and close (both ends)", "ms", false, func(t transfer) float64 { return t.cpuPerConn }),
		)
	}
	for _, load := range []struct {
		name string
		rate float64
	}{{"bulk data", 0}, {"100 MB/s of bulk data", 100e6}} {
		if !want("load") {
			break
		}
		loaded := alternate(cs, func(ct contender) transfer { return latencyUnderLoad(ct, *pings, load.rate) })
		rows = append(rows,
			pick(loaded, "64 B round trip p50 while another session of the listener sinks "+load.name, "µs", false, func(t transfer) float64 { return t.p50 }),
			pick(loaded, "64 B round trip p99 while another session of the listener sinks "+load.name, "µs", false, func(t transfer) float64 { return t.p99 }),
			pick(loaded, "  bulk throughput meanwhile", "MB/s", true, func(t transfer) float64 { return t.mbps }),
		)
	}
	if *bulkN > 0 && want("many") {
		many := alternate(cs, func(ct contender) transfer { return manySinks(ct, *bulkN, *bulkMiB<<20) })
		rows = append(rows,
			pick(many, fmt.Sprintf("%d sessions sinking into one listener: aggregate", *bulkN), "MB/s", true, func(t transfer) float64 { return t.mbps }),
			pick(many, "  CPU seconds per GiB (both ends)", "s", false, func(t transfer) float64 { return t.cpuPerGiB }),
		)
	}
	printTable("Sessions over loopback", rows)
}

// want reports whether -only selects the session measure m.
func want(m string) bool {
	if *only == "" {
		return true
	}
	for _, f := range strings.Split(*only, ",") {
		if strings.TrimSpace(f) == m {
			return true
		}
	}
	return false
}

// plainListener listens on loopback with ct: for KCP no cipher, no FEC,
// 4 MiB socket buffers.
func plainListener(ct contender) server {
	null, _ := interop.CipherByName("null")
	l, err := ct.listen(null, 0, 0)
	if err != nil {
		fail("%s Listen: %v", ct.name, err)
	}
	return l
}

// manySinks opens n sessions to one listener (plain) and has each send
// total bytes at once; it reports the aggregate rate from the first byte
// in to the last, and the CPU both ends spent per GiB.
func manySinks(ct contender, n, total int) transfer {
	runtime.GC()
	null, _ := interop.CipherByName("null")
	l := plainListener(ct)
	defer l.Close()
	clis := make([]peer, n)
	srvs := make([]peer, n)
	for i := range n {
		clis[i], srvs[i] = connect(ct, l, null, 0, 0)
		deadline := time.Now().Add(5 * time.Minute)
		clis[i].SetDeadline(deadline)
		srvs[i].SetDeadline(deadline)
		defer clis[i].Close()
		defer srvs[i].Close()
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			chunk := make([]byte, 64<<10)
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := clis[i].Write(chunk[:min(len(chunk), total-sent)]); err != nil {
					fail("%s many-sink Write: %v", ct.name, err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for got := 0; got < total; {
				m, err := srvs[i].Read(buf)
				if err != nil {
					fail("%s many-sink Read after %d bytes: %v", ct.name, got, err)
				}
				got += m
			}
		}()
	}
	from := sample()
	close(start)
	wg.Wait()
	var t transfer
	t.fill(from, sample(), n*total)
	return t
}

func idleMeasures(cs []contender) {
	var idleRows []row
	for _, f := range strings.Split(*idle, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fail("bad -idle %q", *idle)
		}
		r := map[string][]transfer{}
		for _, ct := range cs {
			if n > *idlePerProc && ct.dialFrom == nil {
				fmt.Fprintf(os.Stderr, "bench: %s skips %d idle sessions: it cannot dial from a chosen local address\n", ct.name, n)
				continue
			}
			r[ct.name] = append(r[ct.name], idleSessions(ct, n, *idleFor))
		}
		every := "1 ping/s each"
		if *idleEvery != time.Second {
			every = "a ping every " + idleEvery.String() + " each"
		}
		idleRows = append(idleRows,
			pick(r, fmt.Sprintf("%d sessions, %s: server CPU", n, every), "% core", false, func(t transfer) float64 { return t.cpuShare }),
			pick(r, fmt.Sprintf("%d sessions, %s: server RSS", n, every), "MiB", false, func(t transfer) float64 { return t.rssMiB }),
			pick(r, "  sessions with no echo while measured", "sessions", false, func(t transfer) float64 { return t.silent }),
			pick(r, "  pings unanswered within 5 s", "pings", false, func(t transfer) float64 { return t.lost }),
		)
	}
	printTable("Many idle sessions on one listener (server in its own process)", idleRows)
}

// transfer is what one run of a measure found.
type transfer struct {
	mbps, allocsPerMiB, bytesPerMiB, cpuPerGiB float64
	p50, p99, allocsPerOp                      float64
	cpuShare, rssMiB                           float64
	cpuPerConn                                 float64
	silent, lost                               float64
}

// row is one line of the table: a figure for each implementation measured.
type row struct {
	name, unit   string
	higherBetter bool
	vals         map[string]float64
}

// alternate runs each contender once per round, the order reversed every
// other round.
func alternate(cs []contender, run func(contender) transfer) map[string][]transfer {
	out := map[string][]transfer{}
	for r := range *rounds {
		order := slices.Clone(cs)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, ct := range order {
			out[ct.name] = append(out[ct.name], run(ct))
		}
	}
	return out
}

func pick(res map[string][]transfer, name, unit string, higherBetter bool, f func(transfer) float64) row {
	med := func(ts []transfer) float64 {
		v := make([]float64, len(ts))
		for i, t := range ts {
			v[i] = f(t)
		}
		return median(v)
	}
	r := row{name: name, unit: unit, higherBetter: higherBetter, vals: map[string]float64{}}
	for n, ts := range res {
		r.vals[n] = med(ts)
	}
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// printTable prints rows with a column for each implementation any row
// has a figure for, then kcpx's ratio to kcp-go and to TCP.
func printTable(title string, rows []row) {
	var cols []string
	for _, c := range columns {
		for _, r := range rows {
			if _, ok := r.vals[c]; ok {
				cols = append(cols, c)
				break
			}
		}
	}
	var ratios []string
	for _, c := range []string{"kcp-go", "TCP"} {
		if slices.Contains(cols, "kcpx") && slices.Contains(cols, c) {
			ratios = append(ratios, c)
		}
	}
	fmt.Printf("\n### %s\n\n", title)
	head, rule := "| measure | unit |", "|---|---|"
	for _, c := range cols {
		head += " " + c + " |"
		rule += "---:|"
	}
	for _, c := range ratios {
		head += " kcpx / " + c + " |"
		rule += "---:|"
	}
	fmt.Println(head)
	fmt.Println(rule)
	for _, r := range rows {
		line := "| " + r.name + " | " + r.unit + " |"
		for _, c := range cols {
			if v, ok := r.vals[c]; ok {
				line += " " + num(v) + " |"
			} else {
				line += " – |"
			}
		}
		for _, c := range ratios {
			line += " " + ratio(r, c) + " |"
		}
		fmt.Println(line)
	}
}

// ratio is kcpx's figure over other's, and whether that is better.
func ratio(r row, other string) string {
	x, okx := r.vals["kcpx"]
	o, oko := r.vals[other]
	if !okx || !oko || o == 0 {
		return "–"
	}
	if other == "TCP" && (r.unit == "allocs" || r.unit == "KB") {
		return "–" // TCP allocates next to nothing in Go: no ratio worth printing
	}
	q := x / o
	better := "better"
	if (q > 1) != r.higherBetter {
		better = "worse"
	}
	if q > 0.97 && q < 1.03 {
		better = "same"
	}
	if q < 0.1 {
		return fmt.Sprintf("%.3f× (%s)", q, better)
	}
	return fmt.Sprintf("%.2f× (%s)", q, better)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func machine() {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = " " + strings.TrimSpace(string(b))
	}
	deps := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/xtaci/kcp-go/v5" || d.Path == "github.com/quic-go/quic-go" {
				deps += "; " + d.Path[strings.IndexByte(d.Path, '/')+1:] + " " + d.Version
			}
		}
	}
	fmt.Printf("Machine: %s, %d CPUs, %s%s, %s%s; %s\n",
		model, runtime.NumCPU(), runtime.GOOS, kernel, runtime.Version(), deps, time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("Settings: KCP windows 1024/1024, nodelay 1,10,2,1, stream mode, MTU 1400, 4 MiB socket buffers, kcpx accept backlog 4,096 (the kernel TCP listen backlog here; kcp-go: 128); TCP with Go's defaults; quic-go's default Config, one stream, TLS 1.3 (AES-128-GCM); kcpx-secure: Noise IK, pinned server key, AES-256-GCM, KCP settings as above; medians of %d rounds, implementations alternating\n", *rounds)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func fast(s interop.Session) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetStreamMode(true)
	s.SetReadBuffer(4 << 20)
	s.SetWriteBuffer(4 << 20)
}

// pair opens a listener and a client of ct and returns both ends.
func pair(ct contender, c interop.Cipher, cds, cps, sds, sps int) (cli, srv peer, closeAll func()) {
	l, err := ct.listen(c, sds, sps)
	if err != nil {
		fail("%s Listen: %v", ct.name, err)
	}
	cli, srv = connect(ct, l, c, cds, cps)
	deadline := time.Now().Add(5 * time.Minute)
	cli.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	return cli, srv, func() { cli.Close(); srv.Close(); l.Close() }
}

// connect dials l with ct, tuned on both ends (KCP: fast), and returns the
// client and the accepted server end once one byte has crossed (a KCP
// listener creates the session on the first datagram, a quic-go peer sees
// the stream on its first frame).
func connect(ct contender, l server, c interop.Cipher, ds, ps int) (cli, srv peer) {
	cli, err := ct.dial(l.Addr().String(), c, ds, ps)
	if err != nil {
		fail("%s Dial: %v", ct.name, err)
	}
	ct.tune(cli)
	if _, err := cli.Write([]byte{0}); err != nil {
		fail("%s Write: %v", ct.name, err)
	}
	srv, err = accept(l)
	if err != nil {
		fail("%s Accept: %v", ct.name, err)
	}
	ct.tune(srv)
	if _, err := io.ReadFull(srv, make([]byte, 1)); err != nil {
		fail("%s Read: %v", ct.name, err)
	}
	return cli, srv
}

// usage samples process CPU time and allocation counters.
type usage struct {
	cpu            time.Duration
	mallocs, bytes uint64
	at             time.Time
}

func sample() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{
		cpu:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		mallocs: ms.Mallocs, bytes: ms.TotalAlloc, at: time.Now(),
	}
}

func (t *transfer) fill(from, to usage, delivered int) {
	mib := float64(delivered) / (1 << 20)
	secs := to.at.Sub(from.at).Seconds()
	t.mbps = float64(delivered) / secs / 1e6
	t.allocsPerMiB = float64(to.mallocs-from.mallocs) / mib
	t.bytesPerMiB = float64(to.bytes-from.bytes) / mib
	t.cpuPerGiB = (to.cpu - from.cpu).Seconds() / (mib / 1024)
}

// sink sends total bytes one way and times them from the first byte in.
func sink(ct contender, c interop.Cipher, ds, ps, total int) transfer {
	runtime.GC()
	cli, srv, closeAll := pair(ct, c, ds, ps, ds, ps)
	defer closeAll()
	done := make(chan transfer)
	go func() { done <- readTimed(ct, "sink", srv, total) }()
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < total; sent += len(chunk) {
		if _, err := cli.Write(chunk[:min(len(chunk), total-sent)]); err != nil {
			fail("%s sink Write: %v", ct.name, err)
		}
	}
	return <-done
}

// echoSpeed echoes 1 MiB writes back through a dialer with FEC ds/ps and a
// listener with lds/lps (kcp-go's BenchmarkEchoSpeed: Salsa20, 10/3, 10/1).
func echoSpeed(ct contender, c interop.Cipher, ds, ps, lds, lps, total int) transfer {
	runtime.GC()
	cli, srv, closeAll := pair(ct, c, ds, ps, lds, lps)
	defer closeAll()
	go func() {
		buf := make([]byte, 512<<10)
		for {
			n, err := srv.Read(buf)
			if err != nil {
				return
			}
			if _, err := srv.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	go func() {
		msg := make([]byte, 1<<20)
		for sent := 0; sent < total; sent += len(msg) {
			if _, err := cli.Write(msg); err != nil {
				return
			}
		}
	}()
	return readTimed(ct, "echo", cli, total)
}

// readTimed reads total bytes from r and times them from the first byte in,
// so neither implementation's start-up (window probes, handshakes) counts.
func readTimed(ct contender, what string, r io.Reader, total int) transfer {
	buf := make([]byte, 1<<20)
	first, err := r.Read(buf)
	if err != nil {
		fail("%s %s Read: %v", ct.name, what, err)
	}
	from := sample()
	got := first
	for got < total {
		n, err := r.Read(buf)
		if err != nil {
			fail("%s %s Read after %d bytes: %v", ct.name, what, got, err)
		}
		got += n
	}
	var t transfer
	t.fill(from, sample(), got-first)
	return t
}

// latency measures 64-byte round trips with no cipher and no FEC.
func latency(ct contender, count int) transfer {
	runtime.GC()
	null, _ := interop.CipherByName("null")
	cli, srv, closeAll := pair(ct, null, 0, 0, 0, 0)
	defer closeAll()
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			if _, err := srv.Write(buf); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	rtt := func() time.Duration {
		start := time.Now()
		if _, err := cli.Write(msg); err != nil {
			fail("%s ping Write: %v", ct.name, err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil {
			fail("%s ping Read: %v", ct.name, err)
		}
		return time.Since(start)
	}
	for range 200 {
		rtt()
	}
	samples := make([]float64, count)
	from := sample()
	for i := range samples {
		samples[i] = float64(rtt().Microseconds())
	}
	to := sample()
	sort.Float64s(samples)
	return transfer{
		p50:         samples[len(samples)/2],
		p99:         samples[len(samples)*99/100],
		allocsPerOp: float64(to.mallocs-from.mallocs) / float64(count),
	}
}

// latencyUnderLoad measures 64-byte round trips (plain) on one session
// while a second session to the same listener carries a bulk transfer
// (plain, written as fast as the window allows), and the bulk rate meanwhile.
func latencyUnderLoad(ct contender, count int, bulkRate float64) transfer {
	runtime.GC()
	null, _ := interop.CipherByName("null")
	l := plainListener(ct)
	defer l.Close()
	open := func() (cli, srv peer) { return connect(ct, l, null, 0, 0) }
	pingCli, pingSrv := open()
	bulkCli, bulkSrv := open()
	defer pingCli.Close()
	defer pingSrv.Close()
	defer bulkCli.Close()
	defer bulkSrv.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(pingSrv, buf); err != nil {
				return
			}
			if _, err := pingSrv.Write(buf); err != nil {
				return
			}
		}
	}()
	var received atomic.Int64
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := bulkSrv.Read(buf)
			if err != nil {
				return
			}
			received.Add(int64(n))
		}
	}()
	stop := make(chan struct{})
	go func() {
		chunk := make([]byte, 64<<10)
		start, sent := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			if bulkRate > 0 {
				// The application paces itself: the same offered load for
				// both libraries.
				if d := time.Until(start.Add(time.Duration(float64(sent) / bulkRate * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
			}
			if _, err := bulkCli.Write(chunk); err != nil {
				return
			}
			sent += len(chunk)
		}
	}()
	defer close(stop)
	msg, buf := make([]byte, 64), make([]byte, 64)
	deadline := time.Now().Add(time.Minute)
	pingCli.SetDeadline(deadline)
	rtt := func() time.Duration {
		start := time.Now()
		if _, err := pingCli.Write(msg); err != nil {
			fail("%s ping Write: %v", ct.name, err)
		}
		if _, err := io.ReadFull(pingCli, buf); err != nil {
			fail("%s ping Read: %v", ct.name, err)
		}
		return time.Since(start)
	}
	time.Sleep(300 * time.Millisecond) // the bulk transfer reaches its pace
	for range 200 {
		rtt()
	}
	samples := make([]float64, count)
	t0, r0 := time.Now(), received.Load()
	for i := range samples {
		samples[i] = float64(rtt().Microseconds())
	}
	// The bulk rate over at least half a second: TCP's round trips are
	// over in a few milliseconds, shorter than its bursts.
	if rest := t0.Add(500 * time.Millisecond).Sub(time.Now()); rest > 0 {
		time.Sleep(rest)
	}
	rate := float64(received.Load()-r0) / time.Since(t0).Seconds() / 1e6
	sort.Float64s(samples)
	return transfer{p50: samples[len(samples)/2], p99: samples[len(samples)*99/100], mbps: rate}
}

// connSetup opens count connections to one listener of ct, one after the
// other, each until one byte has gone to an echoing server and back: the
// handshake where the protocol has one (TCP's, TLS 1.3's, secure mode's
// Noise IK) and the first round trip. It reports the time from Dial to
// the echo and the CPU both ends spent per connection, closing included.
func connSetup(ct contender, count int) transfer {
	runtime.GC()
	l := plainListener(ct)
	defer l.Close()
	var served sync.WaitGroup
	go func() {
		for {
			finish, err := l.acceptConn()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				s, err := finish()
				if err != nil {
					return
				}
				ct.tune(s)
				s.SetDeadline(time.Now().Add(time.Minute))
				b := make([]byte, 1)
				if _, err := io.ReadFull(s, b); err == nil {
					s.Write(b)
					s.Read(b) // until the client closes (or the deadline)
				}
				s.Close()
			}()
		}
	}()
	null, _ := interop.CipherByName("null")
	samples := make([]float64, 0, count)
	from := sample()
	b := make([]byte, 1)
	for range count {
		t0 := time.Now()
		c, err := ct.dial(l.Addr().String(), null, 0, 0)
		if err != nil {
			fail("%s Dial: %v", ct.name, err)
		}
		ct.tune(c)
		c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := c.Write(b); err != nil {
			fail("%s setup Write: %v", ct.name, err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			fail("%s setup Read: %v", ct.name, err)
		}
		samples = append(samples, float64(time.Since(t0).Microseconds()))
		c.Close()
	}
	l.Close()
	served.Wait()
	to := sample()
	sort.Float64s(samples)
	return transfer{
		p50:        samples[len(samples)/2],
		p99:        samples[len(samples)*99/100],
		cpuPerConn: (to.cpu - from.cpu).Seconds() * 1e3 / float64(count),
	}
}

// idleSessions starts a server process of ct, opens n client sessions to
// it, sends a 64-byte ping per second on each for d, and reports the
// server's CPU share over d and its resident set at the end.
func idleSessions(ct contender, n int, d time.Duration) transfer {
	self, err := os.Executable()
	if err != nil {
		fail("%v", err)
	}
	if ct.name == quicContender.name {
		tlsConfigs() // the certificate, in tlsEnv for the server
	}
	if ct.name == secureContender.name {
		secureKeys() // the server's key pair, in secureKeyEnv for the server
	}
	cmd := exec.Command(self, "-role", ct.name)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail("%v", err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		fail("%v", err)
	}
	if err := cmd.Start(); err != nil {
		fail("start server: %v", err)
	}
	rd := bufio.NewReader(out)
	addrLine, err := rd.ReadString('\n')
	if err != nil {
		fail("server address: %v", err)
	}
	addr := strings.TrimSpace(addrLine)
	// Clients: in this process up to *idlePerProc sessions; beyond, child
	// processes of *idlePerProc each (the open-file limit is per process and
	// one address has about 28,000 ephemeral ports), each from its own
	// address 127.0.0.2, 127.0.0.3, ...
	var fleets []idleFleet
	if n <= *idlePerProc {
		fleets = append(fleets, idleClients(ct, addr, n, nil))
	} else {
		for j := 0; j**idlePerProc < n; j++ {
			fleets = append(fleets, spawnIdleClients(self, ct, addr, min(*idlePerProc, n-j**idlePerProc), j))
		}
	}
	for _, f := range fleets {
		f.ready()
	}
	// Let every session open and settle, then measure.
	time.Sleep(3 * time.Second)
	for _, f := range fleets {
		f.measure()
	}
	cpu0 := procCPU(cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(d)
	cpu1 := procCPU(cmd.Process.Pid)
	rss := procRSS(cmd.Process.Pid)
	share := (cpu1 - cpu0).Seconds() / time.Since(t0).Seconds() * 100
	if os.Getenv("KCPX_BENCH_MEMPROFILE") != "" || os.Getenv("KCPX_BENCH_STATS") != "" {
		// The server's heap while every session is still open.
		fmt.Fprintln(in, "heap")
		rd.ReadString('\n')
	}
	for _, f := range fleets {
		f.halt()
	}
	silent, lost := 0, 0
	for _, f := range fleets {
		s, l := f.finish()
		silent, lost = silent+s, lost+l
	}
	in.Close()
	cmd.Wait()
	return transfer{cpuShare: share, rssMiB: rss, silent: float64(silent), lost: float64(lost)}
}

// idleFleet is a group of idle clients, in this process or a child.
type idleFleet struct {
	ready   func()                    // returns once every session is open
	measure func()                    // start counting echoes
	halt    func()                    // stop counting
	finish  func() (silent, lost int) // close everything, report the counts
}

// idleClients opens the idle clients of one process: lean ones (-idle-lean)
// for the raw-KCP servers, sessions of ct otherwise.
func idleClients(ct contender, addr string, n int, ip net.IP) idleFleet {
	if *idleLean && ct.kcp != nil {
		return startLeanClients(addr, n, ip)
	}
	return startIdleClients(ct, addr, n, ip)
}

// startIdleClients opens n sessions of ct to addr (from local address ip
// unless nil) and pings on each every -idle-every.
func startIdleClients(ct contender, addr string, n int, ip net.IP) idleFleet {
	null, _ := interop.CipherByName("null")
	sessions := make([]peer, 0, n)
	for i := range n {
		var s peer
		var err error
		if ip == nil {
			s, err = ct.dial(addr, null, 0, 0)
		} else {
			s, err = ct.dialFrom(ip, addr)
		}
		if err != nil {
			fail("%s Dial %d: %v", ct.name, i, err)
		}
		sessions = append(sessions, s)
	}
	stop := make(chan struct{})
	var measuring atomic.Bool
	var lost atomic.Int64
	echoed := make([]atomic.Bool, n)
	ping := make([]byte, 64)
	for i, s := range sessions {
		go func() {
			// Spread the pings over the interval.
			time.Sleep(time.Duration(i) * *idleEvery / time.Duration(n))
			tick := time.NewTicker(*idleEvery)
			defer tick.Stop()
			buf := make([]byte, 64)
			for {
				if _, err := s.Write(ping); err != nil {
					return
				}
				s.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err := io.ReadFull(s, buf)
				if measuring.Load() {
					if err != nil {
						lost.Add(1)
					} else {
						echoed[i].Store(true)
					}
				}
				select {
				case <-tick.C:
				case <-stop:
					return
				}
			}
		}()
	}
	return idleFleet{
		ready:   func() {},
		measure: func() { measuring.Store(true) },
		halt:    func() { measuring.Store(false) },
		finish: func() (int, int) {
			silent := 0
			for i := range echoed {
				if !echoed[i].Load() {
					silent++
					if silent <= 3 && os.Getenv("KCPX_BENCH_STATS") != "" {
						var p any = sessions[i]
						if oc, ok := p.(ownedConn); ok {
							p = oc.Session
						}
						if st, ok := p.(interface{ Stats() kcp.SessionStats }); ok {
							fmt.Fprintf(os.Stderr, "bench: silent session %d: %+v\n", i, st.Stats())
						}
					}
				}
			}
			close(stop)
			closeAll(sessions)
			return silent, int(lost.Load())
		},
	}
}

// closeAll closes every peer, 256 at a time: a KCP Close waits for its
// close handshake (a round trip and the peer's update tick), which one
// after the other would take minutes for thousands of sessions.
func closeAll(ps []peer) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, p := range ps {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.Close()
		}()
	}
	wg.Wait()
}

// spawnIdleClients runs n idle clients of ct in a child process (-role
// idle-client), from 127.0.0.(2+j).
func spawnIdleClients(self string, ct contender, addr string, n, j int) idleFleet {
	if ct.dialFrom == nil {
		fail("%s cannot dial from a chosen local address", ct.name)
	}
	cmd := exec.Command(self, "-role", "idle-client", "-client-of", ct.name, "-client-addr", addr,
		"-client-n", strconv.Itoa(n), "-client-ip", fmt.Sprintf("127.0.0.%d", 2+j), "-idle-every", idleEvery.String(),
		"-idle-lean="+strconv.FormatBool(*idleLean))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail("%v", err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		fail("%v", err)
	}
	if err := cmd.Start(); err != nil {
		fail("start clients: %v", err)
	}
	rd := bufio.NewReader(out)
	line := func() string {
		l, err := rd.ReadString('\n')
		if err != nil {
			fail("idle client %d: %v", j, err)
		}
		return strings.TrimSpace(l)
	}
	return idleFleet{
		ready:   func() { line() },
		measure: func() { fmt.Fprintln(in, "measure") },
		halt:    func() { fmt.Fprintln(in, "halt") },
		finish: func() (int, int) {
			fmt.Fprintln(in, "finish")
			var silent, lost int
			fmt.Sscan(line(), &silent, &lost)
			in.Close()
			cmd.Wait()
			return silent, lost
		},
	}
}

// idleClientProcess is the -role idle-client child: it opens its clients,
// says so, and follows the driver's "measure" and "finish" lines.
func idleClientProcess() {
	f := idleClients(byName(*clientOf), *clientAddr, *clientN, net.ParseIP(*clientIP))
	f.ready()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "measure":
			f.measure()
		case "halt":
			f.halt()
		case "finish":
			silent, lost := f.finish()
			fmt.Println(silent, lost)
			return
		}
	}
}

// idleServer is the many-sessions server: an echo listener that prints its
// address and runs until stdin closes.
func idleServer(name string) {
	if os.Getenv("KCPX_BENCH_MEMPROFILE") != "" {
		runtime.MemProfileRate = 4096 // per-session objects are small
	}
	ct := byName(name)
	null, _ := interop.CipherByName("null")
	l, err := ct.listen(null, 0, 0)
	if err != nil {
		fail("%v", err)
	}
	if path := os.Getenv("KCPX_BENCH_CPUPROFILE"); path != "" {
		// Profile the server for the measure's duration (until stdin closes).
		f, err := os.Create(path + "." + name)
		if err != nil {
			fail("%v", err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	fmt.Println(l.Addr().String())
	go func() {
		for {
			finish, err := l.acceptConn()
			if err != nil {
				return
			}
			go func() {
				s, err := finish()
				if err != nil {
					return
				}
				defer s.Close()
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(s, buf); err != nil {
						return
					}
					if _, err := s.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	// Until stdin closes, a line "heap" asks for the heap profile and figures
	// while every session is still open; the answer is a line on stdout.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "heap" {
			continue
		}
		// One GC leaves sync.Pool contents in the victim cache, a second
		// drops them: the two figures bound what idle sessions hold.
		runtime.GC()
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		runtime.GC()
		if path := os.Getenv("KCPX_BENCH_MEMPROFILE"); path != "" {
			if f, err := os.Create(path + "." + name); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
		if os.Getenv("KCPX_BENCH_STATS") != "" {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(os.Stderr, "bench: %s heap: HeapAlloc %d KiB (%d KiB after one GC, pools kept), HeapInuse %d KiB, StackInuse %d KiB, Sys %d KiB, goroutines %d\n",
				name, ms.HeapAlloc>>10, ms1.HeapAlloc>>10, ms.HeapInuse>>10, ms.StackInuse>>10, ms.Sys>>10, runtime.NumGoroutine())
		}
		fmt.Println("heap")
	}
	if os.Getenv("KCPX_BENCH_STATS") != "" {
		// The listener's own view (kcpx): admissions refused and why, I/O.
		var inner any = l
		if ks, ok := l.(kcpServer); ok {
			inner = ks.Listener
		}
		if st, ok := inner.(interface{ Stats() kcp.ListenerStats }); ok {
			fmt.Fprintf(os.Stderr, "bench: %s listener: %+v\n", name, st.Stats())
		}
		if st, ok := inner.(interface{ IOStats() kcp.IOStats }); ok {
			fmt.Fprintf(os.Stderr, "bench: %s I/O: %+v\n", name, st.IOStats())
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "bench: %s memory: heap in use %.1f MiB (%d objects), stacks %.1f MiB, goroutines %d, GC sys %.1f MiB, total from OS %.1f MiB\n",
			name, float64(ms.HeapInuse)/(1<<20), ms.HeapObjects, float64(ms.StackInuse)/(1<<20), runtime.NumGoroutine(), float64(ms.GCSys)/(1<<20), float64(ms.Sys)/(1<<20))
	}
	l.Close()
}

// raiseFileLimit lifts the open-file limit as far as the process may (root:
// to a million), for the idle measure's one socket per client.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	want := lim
	want.Max = max(lim.Max, 1<<20)
	want.Cur = want.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want.Max, want.Cur = lim.Max, lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
}

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field overall, stime the 15th, in clock ticks (100 per second).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return time.Duration((ut + st) * float64(time.Second) / 100)
}

func procRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

var (
	pairedLine  = regexp.MustCompile(`^BenchmarkPaired/(\S+?)-\d+\s`)
	kcpxMetric  = regexp.MustCompile(`([\d.]+) kcpx-ns/op`)
	kcpgoMetric = regexp.MustCompile(`([\d.]+) kcpgo-ns/op`)
	allocsLine  = regexp.MustCompile(`^Benchmark(\S+?)/(kcpgo|kcpx)-\d+\s.*\s(\d+) allocs/op`)
)

// microbenchmarks runs this module's BenchmarkPaired (kcpx and kcp-go timed
// in alternating blocks) for the time figures and the per-library benchmarks
// once for allocations, and pairs each kcpx figure with its kcp-go twin.
func microbenchmarks() []row {
	paired := goTest("-bench", "^BenchmarkPaired$", "-count", strconv.Itoa(*microN), "-benchtime", *microTime)
	single := goTest("-bench", "^Benchmark(Flush|Input|Cipher|SealOpen|FECEncode|FECDecode)$", "-benchmem", "-count", "1", "-benchtime", "2000x")
	var names []string
	x, g := map[string][]float64{}, map[string][]float64{}
	for _, l := range paired {
		m := pairedLine.FindStringSubmatch(l)
		mx, mg := kcpxMetric.FindStringSubmatch(l), kcpgoMetric.FindStringSubmatch(l)
		if m == nil || mx == nil || mg == nil {
			continue
		}
		if _, seen := x[m[1]]; !seen {
			names = append(names, m[1])
		}
		vx, _ := strconv.ParseFloat(mx[1], 64)
		vg, _ := strconv.ParseFloat(mg[1], 64)
		x[m[1]] = append(x[m[1]], vx)
		g[m[1]] = append(g[m[1]], vg)
	}
	allocs := map[string]map[string]float64{}
	for _, l := range single {
		m := allocsLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if allocs[m[1]] == nil {
			allocs[m[1]] = map[string]float64{}
		}
		allocs[m[1]][m[2]], _ = strconv.ParseFloat(m[3], 64)
	}
	var rows []row
	for _, n := range names {
		rows = append(rows, row{name: n, unit: "ns/op", vals: map[string]float64{"kcpx": median(x[n]), "kcp-go": median(g[n])}})
		if a := allocs[n]; a != nil && (a["kcpx"] != 0 || a["kcpgo"] != 0) {
			rows = append(rows, row{name: "  " + n + " allocations", unit: "allocs/op", vals: map[string]float64{"kcpx": a["kcpx"], "kcp-go": a["kcpgo"]}})
		}
	}
	return rows
}

// goTest runs go test in this module with no tests, the given benchmark
// flags and -tags, and returns its output lines.
func goTest(flags ...string) []string {
	args := append([]string{"test", "-run", "^$"}, flags...)
	if *tags != "" {
		args = append(args, "-tags", *tags)
	}
	args = append(args, ".")
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fail("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}
