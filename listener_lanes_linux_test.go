package kcp

import (
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// withProcs runs the test with GOMAXPROCS n, restoring it afterwards.
func withProcs(t *testing.T, n int) {
	prev := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

func TestListenerLanesPinFlows(t *testing.T) {
	// With 4 cores a listener reads its port with 4 SO_REUSEPORT sockets.
	// Each client's datagrams land on one socket: every datagram of a
	// session arrives on the lane the session was created on, and its
	// replies leave from that lane's socket (the clients' connected sockets
	// take them, so they came from the listener's address).
	withProcs(t, 4)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if len(l.lanes) != 4 {
		t.Fatalf("%d lanes, want 4", len(l.lanes))
	}
	for i, ln := range l.lanes {
		if ln.conn.LocalAddr().String() != l.Addr().String() {
			t.Fatalf("lane %d on %v, listener on %v", i, ln.conn.LocalAddr(), l.Addr())
		}
	}
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			go echoServer(s)
		}
	}()
	const clients = 32
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := DialWithOptions(l.Addr().String(), nil, 0, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			echoRoundTrip(t, c, randBytes(uint64(i), 64<<10), 4096)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := l.laneN.crossLane.Load(); n != 0 {
		t.Fatalf("%d datagrams arrived on another lane than their session's", n)
	}
	l.mu.Lock()
	bySq := map[*sendQueue]int{}
	for _, s := range l.sessions {
		if s.conn != laneOf(l, s.sq).conn {
			t.Error("a session's conn is not its lane's")
		}
		bySq[s.sq]++
	}
	l.mu.Unlock()
	used := 0
	for i, ln := range l.lanes {
		st := ioStats(ln.rx, ln.sq)
		if bySq[ln.sq] == 0 {
			if st.RxDatagrams != 0 || st.TxDatagrams != 0 {
				t.Errorf("lane %d has no session but read %d and sent %d datagrams", i, st.RxDatagrams, st.TxDatagrams)
			}
			continue
		}
		used++
		if st.RxDatagrams == 0 || st.TxDatagrams == 0 {
			t.Errorf("lane %d has %d sessions but read %d and sent %d datagrams", i, bySq[ln.sq], st.RxDatagrams, st.TxDatagrams)
		}
	}
	if used < 2 {
		t.Fatalf("%d clients used %d of 4 lanes", clients, used)
	}
	if st := l.IOStats(); st.RxDatagrams == 0 || st.TxDatagrams == 0 {
		t.Fatalf("listener IOStats do not sum the lanes: %+v", st)
	}
}

// laneOf returns the lane whose sender is sq.
func laneOf(l *Listener, sq *sendQueue) *listenerLane {
	for _, ln := range l.lanes {
		if ln.sq == sq {
			return ln
		}
	}
	return &listenerLane{}
}

// socketOpt reads the SOL_SOCKET option opt of a UDP conn.
func socketOpt(t *testing.T, c net.PacketConn, opt int) int {
	t.Helper()
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestListenerLanesOptionsAndClose(t *testing.T) {
	// Buffer sizes and Control reach every socket; Close closes them all,
	// so the port can be bound again by a socket without SO_REUSEPORT.
	withProcs(t, 3)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.lanes) != 3 {
		t.Fatalf("%d lanes, want 3", len(l.lanes))
	}
	// 64 KiB is below any rmem_max; Linux reports twice what was set.
	if err := l.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	for i, ln := range l.lanes {
		if v := socketOpt(t, ln.conn, unix.SO_RCVBUF); v != 128<<10 {
			t.Fatalf("lane %d: SO_RCVBUF %d, want %d", i, v, 128<<10)
		}
	}
	// Control reaches every lane: a socket option set through it (here
	// SO_PRIORITY, which needs no privilege) covers the flows of each.
	// It reached only the first lane, leaving the flows the kernel
	// hashed to the others without it.
	var seen []net.PacketConn
	err = l.Control(func(c net.PacketConn) error {
		seen = append(seen, c)
		rc, err := c.(*net.UDPConn).SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PRIORITY, 5) }); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(l.lanes) {
		t.Fatalf("Control called f %d times for %d lanes", len(seen), len(l.lanes))
	}
	for i, ln := range l.lanes {
		if seen[i] != ln.conn {
			t.Fatalf("Control's call %d got another conn than lane %d's", i, i)
		}
		if v := socketOpt(t, ln.conn, unix.SO_PRIORITY); v != 5 {
			t.Fatalf("lane %d: SO_PRIORITY %d after Control set 5", i, v)
		}
	}
	addr := l.Addr().(*net.UDPAddr)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", addr)
	if err != nil {
		t.Fatalf("port still held after Close: %v", err)
	}
	c.Close()
}

func TestListenerLanesPortInUse(t *testing.T) {
	// A port held by another socket is refused as with one socket.
	withProcs(t, 2)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if l, err := ListenWithOptions(c.LocalAddr().String(), nil, 0, 0); err == nil {
		l.Close()
		t.Fatal("listened on a port in use")
	}
}

func TestListenerLanesSecondListenRefused(t *testing.T) {
	// A second listener on a port a listener's lanes hold is refused: the
	// lanes' SO_REUSEPORT does not let another listener join them.
	withProcs(t, 2)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l2, err := ListenWithOptions(l.Addr().String(), nil, 0, 0); err == nil {
		l2.Close()
		t.Fatal("a second listener joined the first one's port")
	}
}

func TestListenerOneLaneOnOneCore(t *testing.T) {
	withProcs(t, 1)
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if len(l.lanes) != 1 {
		t.Fatalf("%d lanes with one core, want 1", len(l.lanes))
	}
}

// BenchmarkListenerManySinks: 64 sessions sink 1 MiB each into one
// listener, read by one socket ("one-socket", ServeConn) or one per core
// ("lanes", ListenWithOptions). Run with -cpu 1,2 for the scaling; it
// reports the kernel's receive-buffer drops per run.
func BenchmarkListenerManySinks(b *testing.B) {
	for _, lanes := range []bool{false, true} {
		name := "one-socket"
		if lanes {
			name = "lanes"
		}
		b.Run(name, func(b *testing.B) { benchManySinks(b, lanes, 64, 1<<20) })
	}
}

func benchManySinks(b *testing.B, lanes bool, n, total int) {
	tune := func(s *UDPSession) {
		s.SetNoDelay(1, 10, 2, 1)
		s.SetWindowSize(1024, 1024)
		s.SetStreamMode(true)
	}
	var l *Listener
	var err error
	if lanes {
		l, err = ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	} else {
		var c *net.UDPConn
		if c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
			tuneOwnSocket(c)
			defer c.Close()
			l, err = ServeConn(nil, 0, 0, c)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	clis, srvs := make([]*UDPSession, n), make([]*UDPSession, n)
	for i := range n {
		c, err := DialWithOptions(l.Addr().String(), nil, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		tune(c)
		c.Write([]byte{1})
		l.SetDeadline(time.Now().Add(10 * time.Second))
		s, err := l.AcceptKCP()
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		tune(s)
		if _, err := s.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		clis[i], srvs[i] = c, s
	}
	b.SetBytes(int64(n * total))
	drops := l.IOStats().RxKernelDrops
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				chunk := make([]byte, 64<<10)
				for sent := 0; sent < total; sent += len(chunk) {
					if _, err := clis[i].Write(chunk); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 256<<10)
				srvs[i].SetReadDeadline(time.Now().Add(time.Minute))
				for got := 0; got < total; {
					m, err := srvs[i].Read(buf)
					if err != nil {
						b.Error(err)
						return
					}
					got += m
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(l.IOStats().RxKernelDrops-drops)/float64(b.N), "kdrops/op")
}

// BenchmarkListenerPingBesideBulk: 64-byte round trips on one session of a
// listener while another session sinks bulk data as fast as it can; the
// ping's session shares the bulk session's socket and reader ("shared") or
// sits on another lane ("apart": clients are dialled until the kernel puts
// them on different sockets). Reports p50 and p99 in µs and the bulk rate.
func BenchmarkListenerPingBesideBulk(b *testing.B) {
	for _, apart := range []bool{false, true} {
		name := "shared"
		if apart {
			name = "apart"
		}
		b.Run(name, func(b *testing.B) { benchPingBesideBulk(b, apart) })
	}
}

func benchPingBesideBulk(b *testing.B, apart bool) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs two lanes: run with -cpu 2 or more")
	}
	tune := func(s *UDPSession) {
		s.SetNoDelay(1, 10, 2, 1)
		s.SetWindowSize(1024, 1024)
		s.SetStreamMode(true)
	}
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	open := func() (c, s *UDPSession) {
		c, err := DialWithOptions(l.Addr().String(), nil, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		tune(c)
		c.Write([]byte{1})
		l.SetDeadline(time.Now().Add(10 * time.Second))
		if s, err = l.AcceptKCP(); err != nil {
			b.Fatal(err)
		}
		tune(s)
		if _, err := s.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		return c, s
	}
	bulkCli, bulkSrv := open()
	defer bulkCli.Close()
	defer bulkSrv.Close()
	var pingCli, pingSrv *UDPSession
	for range 64 {
		pingCli, pingSrv = open()
		if (pingSrv.sq != bulkSrv.sq) == apart {
			break
		}
		pingCli.Close()
		pingSrv.Close()
		pingCli = nil
	}
	if pingCli == nil {
		b.Skip("the kernel did not place the sessions as asked in 64 tries")
	}
	defer pingCli.Close()
	defer pingSrv.Close()
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
	defer close(stop)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := bulkCli.Write(chunk); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	pingCli.SetDeadline(time.Now().Add(time.Minute))
	rtt := func() float64 {
		start := time.Now()
		if _, err := pingCli.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(pingCli, buf); err != nil {
			b.Fatal(err)
		}
		return float64(time.Since(start).Nanoseconds()) / 1e3
	}
	for range 200 {
		rtt()
	}
	samples := make([]float64, 0, b.N)
	r0, t0 := received.Load(), time.Now()
	b.ResetTimer()
	for range b.N {
		samples = append(samples, rtt())
	}
	b.StopTimer()
	rate := float64(received.Load()-r0) / time.Since(t0).Seconds() / 1e6
	slices.Sort(samples)
	b.ReportMetric(samples[len(samples)/2], "p50-µs")
	b.ReportMetric(samples[len(samples)*99/100], "p99-µs")
	b.ReportMetric(rate, "bulk-MB/s")
}
