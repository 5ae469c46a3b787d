//go:build linux

package kcp

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sockBuf reads SO_RCVBUF and SO_SNDBUF of conn (the kernel reports twice
// the size granted, its bookkeeping overhead included).
func sockBuf(t *testing.T, conn net.PacketConn) (rcv, snd int) {
	t.Helper()
	rc, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}

// sysctlInt reads an integer from /proc/sys (0 when it cannot).
func sysctlInt(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return v
}

// TestOwnSocketBuffers: sockets the library opens ask for 4 MiB buffers;
// the kernel grants min(4 MiB, rmem_max/wmem_max), doubled in its report.
// A conn passed in by the caller keeps its own sizes.
func TestOwnSocketBuffers(t *testing.T) {
	want := func(max int) int { return 2 * min(ownSocketBuffer, max) }
	rmax, wmax := sysctlInt(t, "net.core.rmem_max"), sysctlInt(t, "net.core.wmem_max")
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := DialWithOptions(l.Addr().String(), nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	own, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	defRcv, defSnd := sockBuf(t, own)
	l2, err := ServeConn(nil, 0, 0, own)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()

	tests := []struct {
		name     string
		conn     net.PacketConn
		rcv, snd int
	}{
		{"ListenWithOptions", l.conn, want(rmax), want(wmax)},
		{"DialWithOptions", s.conn, want(rmax), want(wmax)},
		{"ServeConn leaves the caller's conn alone", own, defRcv, defSnd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if rmax == 0 || wmax == 0 {
				t.Fatal("cannot read net.core.rmem_max / wmem_max")
			}
			rcv, snd := sockBuf(t, tc.conn)
			if rcv != tc.rcv || snd != tc.snd {
				t.Fatalf("SO_RCVBUF %d, SO_SNDBUF %d; want %d, %d", rcv, snd, tc.rcv, tc.snd)
			}
		})
	}
}
