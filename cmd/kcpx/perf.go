package main

// kcpx perf: iperf for KCP.
//
// The client opens a session and sends a 16-byte hello: "KCPXPERF", a
// version byte, a flags byte (1: reverse, the server sends), two zero bytes
// and the duration in ms (u32, little-endian). The sender then writes frames
// of a u32 length and that many bytes for the duration, and a frame of
// length 0. The receiver answers the end frame with its report (a u32
// length and a JSON perfReport), the sender replies with its own, and both
// close. Each side samples its session once per interval for the live line.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	kcp "github.com/kcpx/kcp"
)

const (
	perfMagic   = "KCPXPERF"
	perfVersion = 1
	perfHello   = 16
	flagReverse = 1
	maxReport   = 1 << 20
)

// perfConfig is the perf command's flags.
type perfConfig struct {
	linkConfig
	server   string
	client   string
	once     bool
	Duration time.Duration `json:"duration_ns"`
	Interval time.Duration `json:"interval_ns"`
	Reverse  bool          `json:"reverse"`
	Len      int           `json:"len"`
	json     bool
	plot     string
}

func (c *perfConfig) flags(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kcpx perf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	fs.StringVar(&c.server, "s", "", "run the server on this address (\":4000\")")
	fs.StringVar(&c.client, "c", "", "run the client against this server (\"host:4000\")")
	fs.BoolVar(&c.once, "1", false, "server: handle one client, then exit")
	fs.DurationVar(&c.Duration, "t", 10*time.Second, "client: how long to send")
	fs.DurationVar(&c.Interval, "i", time.Second, "interval between live lines")
	fs.BoolVar(&c.Reverse, "R", false, "client: the server sends, the client receives")
	fs.IntVar(&c.Len, "len", 32<<10, "bytes per write")
	fs.BoolVar(&c.json, "json", false, "client: print the result as JSON on stdout (live lines go to stderr)")
	fs.StringVar(&c.plot, "plot", "", "client: write throughput, RTT and retransmissions over time to this SVG file")
	return fs
}

func perfMain(args []string, stdout, stderr io.Writer) int {
	var c perfConfig
	fs := c.flags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.check(); err != nil {
		fmt.Fprintln(stderr, "kcpx perf:", err)
		return 2
	}
	if (c.server == "") == (c.client == "") {
		fmt.Fprintln(stderr, "kcpx perf: give -s ADDR (server) or -c ADDR (client)")
		return 2
	}
	if c.Len <= 0 || c.Interval <= 0 || c.Duration <= 0 {
		fmt.Fprintln(stderr, "kcpx perf: -len, -i and -t must be positive")
		return 2
	}
	if c.server != "" {
		block, err := c.block()
		if err != nil {
			fmt.Fprintln(stderr, "kcpx perf:", err)
			return 1
		}
		l, err := kcp.ListenWithOptions(c.server, block, c.DataShards, c.Parity)
		if err != nil {
			fmt.Fprintln(stderr, "kcpx perf:", err)
			return 1
		}
		defer l.Close()
		fmt.Fprintf(stdout, "kcpx perf server on %s (%s)\n", l.Addr(), c.String())
		if err := perfServe(l, &c, stdout, c.once); err != nil {
			fmt.Fprintln(stderr, "kcpx perf:", err)
			return 1
		}
		return 0
	}
	res, err := perfClient(&c, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kcpx perf:", err)
		return 1
	}
	if err := c.output(res, stdout); err != nil {
		fmt.Fprintln(stderr, "kcpx perf:", err)
		return 1
	}
	return 0
}

// output prints the table (or JSON) and writes the plot.
func (c *perfConfig) output(res *perfResult, stdout io.Writer) error {
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.table(stdout)
	}
	if c.plot != "" {
		f, err := os.Create(c.plot)
		if err != nil {
			return err
		}
		if err := writeSVG(f, res); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

// perfReport is what each side tells the other at the end.
type perfReport struct {
	Role    string           `json:"role"` // "client" or "server"
	Sender  bool             `json:"sender"`
	Bytes   uint64           `json:"bytes"`   // payload bytes sent or received in frames
	Seconds float64          `json:"seconds"` // from the first to the last data byte
	Stats   kcp.SessionStats `json:"stats"`
}

// sample is one live line.
type sample struct {
	T       float64 `json:"t"`        // seconds since the start
	MBps    float64 `json:"mbps"`     // megabytes (10^6) per second in the interval
	RTTms   float64 `json:"rtt_ms"`   // smoothed RTT
	Cwnd    uint32  `json:"cwnd"`     // segments
	Retrans uint64  `json:"retrans"`  // segments retransmitted in the interval
	LossPct float64 `json:"loss_pct"` // retransmitted / sent in the interval, percent
}

// perfResult is the outcome of a client run: the -json output.
type perfResult struct {
	Config    *perfConfig `json:"config"`
	Link      string      `json:"link"`
	Remote    string      `json:"remote"`
	Bytes     uint64      `json:"bytes"`
	Seconds   float64     `json:"seconds"`
	MBps      float64     `json:"mbps"`
	Intervals []sample    `json:"intervals"`
	Sender    perfReport  `json:"sender"`
	Receiver  perfReport  `json:"receiver"`
}

// monitor samples a session once per interval and prints a live line.
type monitor struct {
	s        *kcp.UDPSession
	sender   bool
	out      io.Writer
	prefix   string
	interval time.Duration
	start    time.Time

	mu      sync.Mutex
	samples []sample
	prev    kcp.SessionStats
	stop    chan struct{}
	done    chan struct{}
}

func newMonitor(s *kcp.UDPSession, sender bool, out io.Writer, prefix string, interval time.Duration) *monitor {
	m := &monitor{s: s, sender: sender, out: out, prefix: prefix, interval: interval,
		start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	m.prev = s.Stats()
	go m.loop()
	return m
}

func (m *monitor) loop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	last := m.start
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.tick(now.Sub(last), now.Sub(m.start))
			last = now
		}
	}
}

// tick records and prints the interval just ended (dt long, ending at).
func (m *monitor) tick(dt, at time.Duration) {
	st := m.s.Stats()
	var moved uint64
	if m.sender {
		moved = st.BytesDelivered - m.prev.BytesDelivered
	} else {
		moved = st.BytesReceived - m.prev.BytesReceived
	}
	retrans := st.SegmentsRetransmitted - m.prev.SegmentsRetransmitted
	sent := st.DataSegmentsSent - m.prev.DataSegmentsSent + retrans
	smp := sample{
		T:       at.Seconds(),
		MBps:    float64(moved) / 1e6 / dt.Seconds(),
		RTTms:   float64(st.SmoothedRTT.Microseconds()) / 1000,
		Cwnd:    st.Cwnd,
		Retrans: retrans,
	}
	if sent > 0 {
		smp.LossPct = 100 * float64(retrans) / float64(sent)
	}
	m.prev = st
	m.mu.Lock()
	m.samples = append(m.samples, smp)
	m.mu.Unlock()
	fmt.Fprintf(m.out, "%s[%6.1fs] %9.2f MB/s  rtt %7.2f ms  cwnd %5d  retrans %6d  loss %5.2f%%\n",
		m.prefix, smp.T, smp.MBps, smp.RTTms, smp.Cwnd, smp.Retrans, smp.LossPct)
}

// finish stops the monitor, records the last partial interval when it
// spans at least a tenth of an interval, and returns the samples.
func (m *monitor) finish() []sample {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	var last time.Duration
	if n := len(m.samples); n > 0 {
		last = time.Duration(m.samples[n-1].T * float64(time.Second))
	}
	m.mu.Unlock()
	if at := time.Since(m.start); at-last >= m.interval/10 {
		m.tick(at-last, at)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples
}

// perfClient runs the client side and returns its result.
func perfClient(c *perfConfig, live, stderr io.Writer) (*perfResult, error) {
	if c.json {
		live = stderr
	}
	block, err := c.block()
	if err != nil {
		return nil, err
	}
	s, err := kcp.DialWithOptions(c.client, block, c.DataShards, c.Parity)
	if err != nil {
		return nil, err
	}
	w, err := c.watch(s, "client")
	if err != nil {
		s.Close()
		return nil, err
	}
	defer closeAndWait(s, w)
	if err := c.apply(s); err != nil {
		return nil, err
	}
	fmt.Fprintf(live, "kcpx perf %s -> %s, %s, %v, %s\n", s.LocalAddr(), s.RemoteAddr(), c.String(), c.Duration,
		map[bool]string{false: "client sends", true: "server sends (-R)"}[c.Reverse])

	var hello [perfHello]byte
	copy(hello[:], perfMagic)
	hello[8] = perfVersion
	if c.Reverse {
		hello[9] = flagReverse
	}
	binary.LittleEndian.PutUint32(hello[12:], uint32(c.Duration/time.Millisecond))
	if _, err := s.Write(hello[:]); err != nil {
		return nil, err
	}
	mine, theirs, samples, err := runTransfer(s, !c.Reverse, "client", c.Duration, c.Len, live, "", c.Interval)
	if err != nil {
		return nil, err
	}
	res := &perfResult{Config: c, Link: c.String(), Remote: s.RemoteAddr().String(), Intervals: samples}
	if mine.Sender {
		res.Sender, res.Receiver = *mine, *theirs
	} else {
		res.Sender, res.Receiver = *theirs, *mine
	}
	res.Bytes, res.Seconds = res.Receiver.Bytes, res.Receiver.Seconds
	if res.Seconds > 0 {
		res.MBps = float64(res.Bytes) / 1e6 / res.Seconds
	}
	return res, nil
}

// perfServe accepts perf clients until the listener fails (or, with once,
// serves one).
func perfServe(l *kcp.Listener, c *perfConfig, out io.Writer, once bool) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var outMu sync.Mutex
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return err
		}
		handle := func() {
			lw := &lockedWriter{mu: &outMu, w: out}
			if err := perfServeOne(s, c, lw); err != nil {
				fmt.Fprintf(lw, "[%s] %v\n", s.RemoteAddr(), err)
			}
		}
		if once {
			handle()
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle()
		}()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

func perfServeOne(s *kcp.UDPSession, c *perfConfig, out io.Writer) error {
	w, err := c.watch(s, "server")
	if err != nil {
		s.Close()
		return err
	}
	defer closeAndWait(s, w)
	if err := c.apply(s); err != nil {
		return err
	}
	var hello [perfHello]byte
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(s, hello[:]); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	s.SetReadDeadline(time.Time{})
	if string(hello[:8]) != perfMagic || hello[8] != perfVersion {
		return errors.New("not a kcpx perf client")
	}
	reverse := hello[9]&flagReverse != 0
	d := time.Duration(binary.LittleEndian.Uint32(hello[12:])) * time.Millisecond
	prefix := fmt.Sprintf("[%s] ", s.RemoteAddr())
	fmt.Fprintf(out, "%sclient connected, %v, %s\n", prefix, d,
		map[bool]string{false: "receiving", true: "sending (-R)"}[reverse])
	mine, theirs, _, err := runTransfer(s, reverse, "server", d, c.Len, out, prefix, c.Interval)
	if err != nil {
		return err
	}
	rx := mine
	if mine.Sender {
		rx = theirs
	}
	fmt.Fprintf(out, "%sdone: %s in %.2f s, %.2f MB/s\n", prefix, humanBytes(rx.Bytes), rx.Seconds, float64(rx.Bytes)/1e6/math.Max(rx.Seconds, 1e-9))
	return nil
}

// runTransfer moves data for d (sending when sender), then exchanges the
// reports. It returns this side's report, the peer's and the live samples.
func runTransfer(s *kcp.UDPSession, sender bool, role string, d time.Duration, chunk int,
	live io.Writer, prefix string, interval time.Duration) (*perfReport, *perfReport, []sample, error) {
	mon := newMonitor(s, sender, live, prefix, interval)
	mine := &perfReport{Role: role, Sender: sender}
	var err error
	if sender {
		err = sendFrames(s, d, chunk, mine)
	} else {
		err = recvFrames(s, mine)
	}
	samples := mon.finish()
	if err != nil {
		return nil, nil, nil, err
	}
	s.SetReadDeadline(time.Now().Add(60 * time.Second))
	var theirs perfReport
	if sender {
		// The receiver speaks first; its report arrives once our data did.
		if err := readReport(s, &theirs); err != nil {
			return nil, nil, nil, err
		}
		mine.Stats = s.Stats()
		err = writeReport(s, mine)
	} else {
		mine.Stats = s.Stats()
		if err = writeReport(s, mine); err == nil {
			err = readReport(s, &theirs)
		}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return mine, &theirs, samples, nil
}

// sendFrames writes frames for d, then the end frame.
func sendFrames(s *kcp.UDPSession, d time.Duration, chunk int, rep *perfReport) error {
	buf := make([]byte, 4+chunk)
	for i := range buf[4:] {
		buf[4+i] = byte(i * 7)
	}
	binary.LittleEndian.PutUint32(buf, uint32(chunk))
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		s.SetWriteDeadline(end)
		n, err := s.Write(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if n > 0 {
				// A large Write queues in steps, so the deadline may cut
				// a frame: finish it, or the receiver loses the framing.
				s.SetWriteDeadline(time.Time{})
				if _, err := s.Write(buf[n:]); err != nil {
					return err
				}
				rep.Bytes += uint64(chunk)
			}
			break
		}
		rep.Bytes += uint64(chunk)
	}
	s.SetWriteDeadline(time.Time{})
	var zero [4]byte
	if _, err := s.Write(zero[:]); err != nil {
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	return nil
}

// recvFrames reads frames up to the end frame.
func recvFrames(s *kcp.UDPSession, rep *perfReport) error {
	buf := make([]byte, 64<<10)
	var hdr [4]byte
	var start time.Time
	for {
		s.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			return fmt.Errorf("data: %w", err)
		}
		if start.IsZero() {
			start = time.Now()
		}
		n := int(binary.LittleEndian.Uint32(hdr[:]))
		if n == 0 {
			rep.Seconds = time.Since(start).Seconds()
			return nil
		}
		for n > 0 {
			m, err := s.Read(buf[:min(n, len(buf))])
			if err != nil {
				return fmt.Errorf("data: %w", err)
			}
			n -= m
			rep.Bytes += uint64(m)
		}
	}
}

func writeReport(s *kcp.UDPSession, r *perfReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
	_, err = s.Write(append(out, b...))
	return err
}

func readReport(s *kcp.UDPSession, r *perfReport) error {
	var hdr [4]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > maxReport {
		return fmt.Errorf("report of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s, b); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return json.Unmarshal(b, r)
}

// table prints the summary.
func (r *perfResult) table(w io.Writer) {
	fmt.Fprintf(w, "\n%s, %s in %.2f s: %.2f MB/s (%.1f Mbit/s)\n", r.Remote, humanBytes(r.Bytes), r.Seconds, r.MBps, r.MBps*8)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	snd, rcv := &r.Sender.Stats, &r.Receiver.Stats
	fmt.Fprintf(tw, "\tsender (%s)\treceiver (%s)\t\n", r.Sender.Role, r.Receiver.Role)
	row := func(name string, f func(st *kcp.SessionStats) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, f(snd), f(rcv))
	}
	u := func(v uint64) string { return fmt.Sprint(v) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	row("bytes written", func(st *kcp.SessionStats) string { return humanBytes(st.BytesSent) })
	row("bytes read", func(st *kcp.SessionStats) string { return humanBytes(st.BytesReceived) })
	row("datagrams sent", func(st *kcp.SessionStats) string { return u(st.DatagramsSent) })
	row("datagrams received", func(st *kcp.SessionStats) string { return u(st.DatagramsReceived) })
	row("segments sent", func(st *kcp.SessionStats) string { return u(st.SegmentsSent) })
	row("data segments", func(st *kcp.SessionStats) string { return u(st.DataSegmentsSent) })
	row("retransmitted", func(st *kcp.SessionStats) string { return u(st.SegmentsRetransmitted) })
	row("  fast", func(st *kcp.SessionStats) string { return u(st.SegmentsFastRetransmitted) })
	row("  early", func(st *kcp.SessionStats) string { return u(st.SegmentsEarlyRetransmitted) })
	row("  lost (RTO)", func(st *kcp.SessionStats) string { return u(st.SegmentsLost) })
	row("loss rate", func(st *kcp.SessionStats) string { return fmt.Sprintf("%.3f%%", 100*st.LossRate()) })
	row("duplicates received", func(st *kcp.SessionStats) string { return u(st.DuplicateSegments) })
	row("FEC recovered", func(st *kcp.SessionStats) string { return u(st.FECRecovered) })
	row("RTT min", func(st *kcp.SessionStats) string { return ms(st.MinRTT) })
	row("RTT smoothed", func(st *kcp.SessionStats) string { return ms(st.SmoothedRTT) })
	row("RTT variance", func(st *kcp.SessionStats) string { return ms(st.RTTVar) })
	row("RTO", func(st *kcp.SessionStats) string { return ms(st.RTO) })
	row("cwnd (segments)", func(st *kcp.SessionStats) string { return u(uint64(st.Cwnd)) })
	tw.Flush()
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// selfTest runs a short perf over loopback with the default knobs and
// prints the live lines and the table.
func selfTest(stdout, stderr io.Writer) int {
	var c perfConfig
	fs := c.flags(stderr)
	fs.Parse(nil)
	c.Duration = 3 * time.Second
	block, err := c.block()
	if err != nil {
		fmt.Fprintln(stderr, "kcpx:", err)
		return 1
	}
	l, err := kcp.ListenWithOptions("127.0.0.1:0", block, c.DataShards, c.Parity)
	if err != nil {
		fmt.Fprintln(stderr, "kcpx:", err)
		return 1
	}
	defer l.Close()
	fmt.Fprintf(stdout, "kcpx self-test over loopback (%s); \"kcpx -h\" for the commands\n", c.String())
	srvErr := make(chan error, 1)
	go func() { srvErr <- perfServe(l, &c, io.Discard, true) }()
	c.client = l.Addr().String()
	res, err := perfClient(&c, stdout, stderr)
	if err == nil {
		err = <-srvErr
	}
	if err != nil {
		fmt.Fprintln(stderr, "kcpx:", err)
		return 1
	}
	res.table(stdout)
	if res.Bytes == 0 {
		fmt.Fprintln(stderr, "kcpx: self-test moved no data")
		return 1
	}
	return 0
}
