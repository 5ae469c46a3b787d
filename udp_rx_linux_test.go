//go:build linux

package kcp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMmsghdrLayout(t *testing.T) {
	// struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; }
	want := map[uintptr]uintptr{8: 64, 4: 32}[unsafe.Sizeof(uintptr(0))]
	if got := unsafe.Sizeof(mmsghdr{}); got != want {
		t.Fatalf("sizeof(mmsghdr) = %d, want %d", got, want)
	}
	if off := unsafe.Offsetof(mmsghdr{}.n); off != unsafe.Sizeof(unix.Msghdr{}) {
		t.Fatalf("msg_len at %d, want %d", off, unsafe.Sizeof(unix.Msghdr{}))
	}
}

func TestBatchReaderTakesManyPerCall(t *testing.T) {
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(tx)
	forceMode(t, ioCase{"batch", ioBatch, ioBatch}, r, w)
	pkts := make([][]byte, batchSize+10)
	for i := range pkts {
		pkts[i] = datagram(i, 200)
	}
	if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	// Loopback queues every datagram before write returns, so one recvmmsg
	// takes a full batch and the next the rest.
	for _, want := range []int{batchSize, 10} {
		got := 0
		if err := r.readOnce(func([]byte, netip.AddrPort, net.Addr) { got++ }); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("one call delivered %d datagrams, want %d", got, want)
		}
	}
}

func TestBatchFallback(t *testing.T) {
	for _, errno := range []syscall.Errno{unix.ENOSYS, unix.EPERM, unix.EOPNOTSUPP, unix.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			tx := listenUDP(t, "udp4", "127.0.0.1:0")
			r, w := newPacketReader(rx), newPacketWriter(tx)
			r.batch.inject, w.batch.inject = errno, errno

			pkts := [][]byte{datagram(0, 100), datagram(1, 1400), datagram(2, 5)}
			if n, err := w.write(pkts, localAP(rx), nil); n != 3 || err != nil {
				t.Fatalf("write after refusal = %d, %v", n, err)
			}
			if w.batching() || w.fallbacks() != 1 {
				t.Fatalf("writer: batching=%v fallbacks=%d", w.batching(), w.fallbacks())
			}
			got := collect(t, r, 3)
			if r.batching() || r.fallbacks() != 1 || r.dropped() != 0 {
				t.Fatalf("reader: batching=%v fallbacks=%d dropped=%d", r.batching(), r.fallbacks(), r.dropped())
			}
			for i := range got {
				if string(got[i].data) != string(pkts[i]) || got[i].ap != localAP(tx) {
					t.Fatalf("datagram %d: %+v", i, got[i])
				}
			}
			// Remembered: later calls stay on the plain path.
			if n, err := w.write(pkts, localAP(rx), nil); n != 3 || err != nil || w.fallbacks() != 1 {
				t.Fatalf("second write = %d, %v, fallbacks %d", n, err, w.fallbacks())
			}
			collect(t, r, 3)
			if r.fallbacks() != 1 {
				t.Fatalf("reader fell back %d times", r.fallbacks())
			}
		})
	}
}

func TestBatchOtherErrorsNotFallback(t *testing.T) {
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(tx)

	// A socket error on send is returned, with the count, not hidden.
	w.batch.inject = unix.ENOBUFS
	n, err := w.write([][]byte{{1}}, localAP(rx), nil)
	var oe *net.OpError
	if n != 0 || !errors.Is(err, unix.ENOBUFS) || !errors.As(err, &oe) || !w.batching() || w.fallbacks() != 0 {
		t.Fatalf("write = %d, %v; batching=%v fallbacks=%d", n, err, w.batching(), w.fallbacks())
	}

	// An ICMP-induced error on receive is skipped and counted.
	r.batch.inject = unix.ECONNREFUSED
	if err := r.readOnce(func([]byte, netip.AddrPort, net.Addr) {}); err != nil {
		t.Fatalf("transient error returned: %v", err)
	}
	if !r.batching() || r.dropped() != 1 {
		t.Fatalf("batching=%v dropped=%d", r.batching(), r.dropped())
	}

	// Any other receive error ends the read loop.
	r.batch.inject = unix.EBADF
	err = r.read(func([]byte, netip.AddrPort, net.Addr) {})
	if !errors.Is(err, unix.EBADF) || !errors.As(err, &oe) || !r.batching() {
		t.Fatalf("read = %v, batching=%v", err, r.batching())
	}
}

func TestBatchWriterWrongFamily(t *testing.T) {
	// A destination of the wrong family on an IPv4 socket cannot be
	// encoded: the batch path declines and the plain path reports the error.
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	w := newPacketWriter(tx)
	n, err := w.write([][]byte{{1}, {2}}, netip.MustParseAddrPort("[::1]:9"), nil)
	if n != 0 || err == nil {
		t.Fatalf("write to IPv6 from an IPv4 socket = %d, %v", n, err)
	}
	if !w.batching() {
		t.Fatal("an address error disabled batching")
	}
}

// processCPU returns the user plus system CPU time of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A dialled session's reader starts with smallSlots one-datagram buffers
// and GRO off, stays so while calls find a datagram or two, and takes the
// full layout (GRO on where the kernel has it) after growAfter calls in a
// row fill every slot.
func TestDialReaderGrowsUnderLoad(t *testing.T) {
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	ref := newPacketReader(listenUDP(t, "udp4", "127.0.0.1:0")) // what the kernel allows
	r, w := newDialReader(rx), newPacketWriter(tx)
	if r.batch == nil {
		t.Fatal("no batch reader")
	}
	small := func(when string) {
		t.Helper()
		if r.batch.slots != smallSlots || len(r.batch.msgs) != smallSlots || len(r.batch.slab) != smallSlots*r.batch.limit || r.groEnabled() {
			t.Fatalf("%s: %d slots, %d messages, %d-byte slab, GRO %v; want %d one-datagram slots, GRO off",
				when, r.batch.slots, len(r.batch.msgs), len(r.batch.slab), r.groEnabled(), smallSlots)
		}
	}
	send := func(n int) {
		t.Helper()
		pkts := make([][]byte, n)
		for i := range pkts {
			pkts[i] = datagram(i, 300)
		}
		if got, err := w.write(pkts, localAP(rx), nil); got != n || err != nil {
			t.Fatalf("write = %d, %v", got, err)
		}
	}
	read := func(want int) {
		t.Helper()
		got := 0
		if err := r.readOnce(func([]byte, netip.AddrPort, net.Addr) { got++ }); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("one call delivered %d datagrams, want %d", got, want)
		}
	}
	small("new")
	for range 10 { // a client that pings
		send(1)
		read(1)
	}
	small("after single datagrams")
	// Full, not full, full: not in a row.
	send(smallSlots)
	read(smallSlots)
	send(1)
	read(1)
	send(smallSlots)
	read(smallSlots)
	send(1)
	read(1)
	small("after full calls apart")
	// Two full calls in a row: the next call reads with the full layout.
	send(2*smallSlots + 30)
	read(smallSlots)
	read(smallSlots)
	small("before the growing call")
	got := 0
	if err := r.readOnce(func([]byte, netip.AddrPort, net.Addr) { got++ }); err != nil { // grows, then reads
		t.Fatal(err)
	}
	if r.batch.slots != batchSize || r.batch.growable || r.groEnabled() != ref.groEnabled() || len(r.batch.msgs) <= smallSlots {
		t.Fatalf("after growing: %d slots, %d messages, growable %v, GRO %v (kernel allows %v)",
			r.batch.slots, len(r.batch.msgs), r.batch.growable, r.groEnabled(), ref.groEnabled())
	}
	// The datagrams queued before GRO came on arrive one per message: the
	// grown reader takes as many per call as it has messages (64, or 16
	// 64 KiB GRO buffers).
	if want := min(30, len(r.batch.msgs)); got != want {
		t.Fatalf("growing call delivered %d datagrams, want %d", got, want)
	}
}

func TestKernelDropsCounted(t *testing.T) {
	// Datagrams sent to a socket whose small receive buffer is full are
	// dropped by the kernel; IOStats-level counting reads them (SO_MEMINFO)
	// and keeps the last figure once the socket is closed.
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	if err := rx.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	r := newPacketReader(rx)
	if _, ok := socketDrops(rx); !ok {
		t.Skip("the kernel does not report socket drops (SO_MEMINFO before Linux 4.19)")
	}
	if n := r.kernelDrops(); n != 0 {
		t.Fatalf("%d drops before any datagram", n)
	}
	const sent = 200
	for i := range sent {
		if _, err := tx.WriteToUDPAddrPort(datagram(i, 1400), localAP(rx)); err != nil {
			t.Fatal(err)
		}
	}
	n := r.kernelDrops()
	if n == 0 || n >= sent {
		t.Fatalf("%d kernel drops after %d datagrams into a 4 KiB buffer, want some but not all", n, sent)
	}
	rx.Close()
	if got := r.kernelDrops(); got != n {
		t.Fatalf("after Close %d drops, want the last figure %d", got, n)
	}
}
