package kcp

// A garbage flood from another process over real loopback sockets, so the
// flooder's work is not charged to the listener's process and its datagrams
// cross the kernel like an attacker's would. The test binary runs itself as
// the flooder (TestMain sees kcpxFloodEnv); it binds sources on 127.77.x.y,
// addresses of the loopback interface that nothing else uses.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

const kcpxFloodEnv = "KCPX_FLOODER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(kcpxFloodEnv); spec != "" {
		sent, err := runFlooder(spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flooder:", err)
			os.Exit(2)
		}
		fmt.Println("sent", sent)
		os.Exit(0)
	}
	flag.Parse()
	parallelDefault(4)
	os.Exit(m.Run())
}

// parallelDefault sets -test.parallel to n unless the command line set it.
// The tests that call parallelTest mostly wait on timers (RTOs, linger,
// quiet periods): more of them than the two cores of a small CI box can
// wait at once.
func parallelDefault(n int) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", strconv.Itoa(n))
	}
}

// floodSpec is what the flooder process is told: where, how many, how fast
// (datagrams per second, 0 for as fast as the kernel takes them), from how
// many source addresses, and the seed of its garbage.
type floodSpec struct {
	target       netip.AddrPort
	n, pps, srcs int
	seed         uint64
}

func (f floodSpec) String() string {
	return fmt.Sprintf("%s %d %d %d %d", f.target, f.n, f.pps, f.srcs, f.seed)
}

func parseFloodSpec(s string) (f floodSpec, err error) {
	var target string
	if _, err = fmt.Sscanf(s, "%s %d %d %d %d", &target, &f.n, &f.pps, &f.srcs, &f.seed); err != nil {
		return f, err
	}
	f.target, err = netip.ParseAddrPort(target)
	return f, err
}

// runFlooder sends the garbage in batches of 64 per sendmmsg, spreading the
// batches over its sources, and returns how many datagrams the kernel took.
func runFlooder(spec string) (int, error) {
	f, err := parseFloodSpec(spec)
	if err != nil {
		return 0, err
	}
	conns := make([]*ipv4.PacketConn, f.srcs)
	for i := range conns {
		src := netip.AddrFrom4([4]byte{127, 77, byte(i >> 8), byte(i + 1)})
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = ipv4.NewPacketConn(c)
	}
	r := rand.New(rand.NewPCG(f.seed, 5))
	const batch = 64
	dst := net.UDPAddrFromAddrPort(f.target)
	msgs := make([]ipv4.Message, 1024)
	for i := range msgs {
		msgs[i] = ipv4.Message{Buffers: [][]byte{relGarbage(i, r)}, Addr: dst}
	}
	start := time.Now()
	sent := 0
	for b := 0; sent < f.n; b++ {
		if f.pps > 0 {
			// Hold the schedule: batch b may leave at b*batch/pps.
			if d := time.Until(start.Add(time.Duration(float64(sent) / float64(f.pps) * float64(time.Second)))); d > 0 {
				time.Sleep(d) // pacing the flood, not synchronising
			}
		}
		off := (b * batch) % len(msgs)
		k := min(batch, f.n-sent, len(msgs)-off)
		// A full receive buffer drops at the listener, not here: an error
		// is real, and ends the flood.
		n, err := conns[b%len(conns)].WriteBatch(msgs[off:off+k], 0)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// floodProcess starts the flooder and returns a function that waits for it
// and reports how many datagrams it sent.
func floodProcess(t *testing.T, f floodSpec, bound time.Duration) func() int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), kcpxFloodEnv+"="+f.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() int {
		defer cancel()
		sent := -1
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "sent "); ok {
				sent, _ = strconv.Atoi(v)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("flooder: %v", err)
		}
		return sent
	}
}

// TestHostileGarbageFloodProcess: an encrypted listener on loopback takes
// garbage from 256 source addresses sent by another process, while a real
// client echoes through it. No session is made, every datagram that reached
// the listener is counted as corrupt, memory stays flat, and every echo is
// byte-exact. The echo time during the flood against the quiet one is
// reported. The full tier sends 10^6 datagrams at 100,000 a second (about
// 0.6 Gbit/s of garbage) and holds the echo to at most twice its quiet time;
// then 10^6 as fast as the flooder can, reported only: on a 2-core host the
// flooder itself takes one of the cores the quiet echo used.
func TestHostileGarbageFloodProcess(t *testing.T) {
	rates := relPick([]int{100_000}, []int{100_000, 0})
	for _, pps := range rates {
		name := fmt.Sprintf("%d/s", pps)
		if pps == 0 {
			name = "unpaced"
		}
		t.Run(name, func(t *testing.T) { floodEcho(t, pps) })
	}
}

// floodEcho is TestHostileGarbageFloodProcess at pps datagrams a second (0:
// as fast as the flooder can).
func floodEcho(t *testing.T, pps int) {
	leakCheckSlack(t, 2, 15*time.Second)
	n := relPick(100_000, 1_000_000)
	echoSize := relPick(256<<10, 1<<20)
	l, err := ListenWithOptions("127.0.0.1:0", relCFB.block(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	relEchoServer(t, l, relFast)
	cli, err := DialWithOptions(l.Addr().String(), relCFB.block(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	quiet := relEchoClient(t, cli, echoSize, 7)

	heap0 := relHeap()
	csum0 := DefaultSnmp.Copy().InCsumErrors
	spec := floodSpec{target: l.Addr().(*net.UDPAddr).AddrPort(), n: n, pps: pps, srcs: 256, seed: impSeed(t)}
	wait := floodProcess(t, spec, 120*time.Second)
	var loadedRuns []time.Duration
	finished := make(chan int, 1)
	go func() { finished <- wait() }()
	sent := -1
	for sent < 0 {
		loadedRuns = append(loadedRuns, relEcho(t, cli, uint64(len(loadedRuns)+10), echoSize))
		select {
		case sent = <-finished:
		default:
		}
	}
	// The counters are published in batches and at the listener's close.
	sessions, pending := relListenerLoad(l)
	heap1 := relHeap()
	drops, dropsErr := udpDrops(spec.target.Port())
	l.Close()
	rejected := DefaultSnmp.Copy().InCsumErrors - csum0
	loaded := relMedian(loadedRuns)
	ratio := float64(loaded) / float64(quiet)
	t.Logf("flood of %d datagrams (%d sent) at %d/s from %d sources: %d counted corrupt, sessions %d, pending %d, heap %+.1f MiB; echo of %d B: median %v quiet, %v during the flood (%d echoes), %.2f×",
		n, sent, spec.pps, spec.srcs, rejected, sessions, pending, (float64(heap1)-float64(heap0))/(1<<20),
		echoSize, quiet.Round(time.Microsecond), loaded.Round(time.Microsecond), len(loadedRuns), ratio)
	if sent != n {
		t.Errorf("flooder sent %d of %d", sent, n)
	}
	if sessions != 1 || pending != 0 {
		t.Errorf("listener holds %d sessions and %d pending; want only the real client's", sessions, pending)
	}
	// What overflowed the listener's socket buffer the kernel dropped and
	// counted; every other garbage datagram was read, opened, and counted
	// by us (the kernel's count may include a few of the client's).
	if dropsErr != nil {
		t.Error(dropsErr)
	} else if rejected > uint64(n) || rejected+drops < uint64(n) {
		t.Errorf("%d of %d garbage datagrams counted as corrupt, %d dropped by the kernel", rejected, n, drops)
	} else {
		t.Logf("kernel dropped %d datagrams at the listener's socket", drops)
	}
	if heap1 > heap0+8<<20 {
		t.Errorf("heap grew by %d bytes during the flood", heap1-heap0)
	}
	if relFull() && pps != 0 && ratio > 2 {
		t.Errorf("echo took %.2f× its quiet time during the flood, want at most 2×", ratio)
	}
}

// udpDrops is the kernel's drop count for the UDP sockets bound to port (the
// last column of /proc/net/udp or udp6).
func udpDrops(port uint16) (uint64, error) {
	// A listener may hold the port with one socket per core: sum them.
	suffix := fmt.Sprintf(":%04X", port)
	var total uint64
	found := false
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 2 && strings.HasSuffix(f[1], suffix) {
				n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
				if err != nil {
					return 0, err
				}
				total += n
				found = true
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("no UDP socket on port %d in /proc/net/udp{,6}", port)
	}
	return total, nil
}
