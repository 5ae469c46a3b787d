//go:build linux && !race

// The share BBR takes beside the kernel's TCP is a property of the
// controller at full speed: under the race detector the user-space sender
// runs several times slower than the kernel's flow and its rounds stretch
// (a CI run measured 0.86 there, the plain run of the same tree passed), so
// like the allocation tests this one runs in plain builds only.

package kcp

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNetnsBBRBesideCubic runs a kcpx BBR flow and a kernel TCP CUBIC flow
// at once through one tbf bottleneck of 20 Mbit/s (queue of 40 ms) on the
// veth between two namespaces, and measures each one's goodput once both
// have started. The issue asks that BBR get between 0.5× and 2× its share
// (half the link); the test also keeps TCP at half its share at least, so
// neither starves the other: BBR's share of the link between 1/4 and 3/4.
// Runs here give 0.47..0.69 (BBR at 0.9..2.2× TCP's rate): BBR's model
// leans to the larger side against a loss-based flow in a 40 ms queue.
// 8 s are measured by default, 20 s with KCPX_FULL set.
func TestNetnsBBRBesideCubic(t *testing.T) {
	l := newNetnsLink(t)
	const rate = 20_000_000
	l.rateLimit(t, l.nsA, l.devA, rate, 32<<10, 40*time.Millisecond)
	// CUBIC's epoch (from one loss back to the window it had then) lasts
	// about 5 s on this path (K = cbrt(W(1-β)/C) for a window of ~140
	// segments). A 4 s window caught one phase of it: BBR's share ranged
	// 0.50..0.69 from run to run, against 0.47..0.52 over 10 s.
	warm, measure := 2*time.Second, 8*time.Second
	if os.Getenv("KCPX_FULL") != "" {
		measure = 20 * time.Second
	}

	// the TCP flow, CUBIC chosen on the socket
	var (
		tl  net.Listener
		tc  net.Conn
		err error
	)
	inNetns(t, l.nsB, func() {
		tl, err = net.Listen("tcp4", netip.AddrPortFrom(l.ipB, 0).String())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	var ccErr error
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			ccErr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, "cubic")
		})
	}}
	inNetns(t, l.nsA, func() { tc, err = d.Dial("tcp4", tl.Addr().String()) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	if ccErr != nil {
		t.Skipf("TCP CUBIC cannot be chosen on this kernel: %v", ccErr)
	}
	ts, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })

	// the kcpx flow, BBR
	var (
		lis *Listener
		cli *UDPSession
	)
	inNetns(t, l.nsB, func() { lis, err = ListenWithOptions(netip.AddrPortFrom(l.ipB, 0).String(), nil, 0, 0) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	inNetns(t, l.nsA, func() { cli, err = DialWithOptions(lis.Addr().String(), nil, 0, 0) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	cli.SetNoDelay(1, 10, 2, 1)
	cli.SetWindowSize(1024, 1024)
	if err := cli.SetCongestionControl(CongestionBBR); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	lis.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := lis.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.SetNoDelay(1, 10, 2, 1)
	srv.SetWindowSize(1024, 1024)

	// Both senders write as fast as they are let; both receivers count.
	var kcpBytes, tcpBytes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	send := func(w io.Writer) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}
	count := func(r io.Reader, n *atomic.Int64) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			k, err := r.Read(buf)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}
	wg.Add(4)
	go count(srv, &kcpBytes)
	go count(ts, &tcpBytes)
	go send(cli)
	go send(tc)
	defer func() {
		close(stop)
		for _, c := range []io.Closer{cli, tc, srv, ts} {
			c.Close()
		}
		wg.Wait()
	}()

	<-time.After(warm)
	k0, t0 := kcpBytes.Load(), tcpBytes.Load()
	start := time.Now()
	<-time.After(measure)
	elapsed := time.Since(start).Seconds()
	kb, tb := float64(kcpBytes.Load()-k0), float64(tcpBytes.Load()-t0)
	kMbit, tMbit := kb*8/elapsed/1e6, tb*8/elapsed/1e6
	share := kb / (kb + tb)
	cli.mu.Lock()
	cwnd, pace, _, minRTT := cli.kcp.ccState()
	srtt := cli.kcp.rxSrtt
	cli.mu.Unlock()
	t.Logf("over %.1f s: kcpx BBR %.2f Mbit/s, TCP CUBIC %.2f Mbit/s; BBR's share %.3f (%.2f× fair)",
		elapsed, kMbit, tMbit, share, 2*share)
	t.Logf("BBR at the end: cwnd %d, pacing %.2f Mbit/s, min RTT %d ms, srtt %d ms; sender %s",
		cwnd, float64(pace)*8/1e6, minRTT, srtt, relSnmp(cli))
	if (kb+tb)*8/elapsed < 0.6*rate {
		t.Errorf("the two flows moved %.1f Mbit/s together, under 60%% of the %d Mbit/s link", kMbit+tMbit, rate/1_000_000)
	}
	if share < 0.25 || share > 0.75 {
		t.Errorf("BBR's share of the bottleneck %.3f, want 1/4..3/4 (each flow at least half its fair share)", share)
	}
}
