package kcp

// Attacks whose source address matters, sent through the kernel with a
// forged source: a raw IPv4 socket (IPPROTO_RAW, so the test writes the IP
// header itself) delivers a UDP datagram to 127.0.0.1 that claims to come
// from any address and port. The in-memory tests (hostile_test.go) make the
// same claims through a fake conn; these prove them on the real socket
// path. They need root (CAP_NET_RAW) and skip with a message without it.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawSpoofer sends UDP datagrams with a forged source to 127.0.0.1.
type rawSpoofer struct{ fd int }

// newRawSpoofer opens the raw socket, or skips the test when it may not.
func newRawSpoofer(t testing.TB) *rawSpoofer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("raw-socket spoofing needs root (CAP_NET_RAW); skipped")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			t.Skipf("raw socket refused (%v); skipped", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &rawSpoofer{fd: fd}
}

// send delivers payload to dst (which must be 127.0.0.1) as a UDP datagram
// from src. The kernel fills in the IP checksum and id; the UDP checksum is
// left 0 (none, allowed over IPv4).
func (r *rawSpoofer) send(t testing.TB, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	if dst.Addr() != netip.MustParseAddr("127.0.0.1") || !src.Addr().Is4() {
		t.Fatalf("raw spoofing only to 127.0.0.1 from IPv4 sources, not %v -> %v", src, dst)
	}
	const ipLen, udpLen = 20, 8
	pkt := make([]byte, ipLen+udpLen+len(payload))
	pkt[0] = 0x45 // IPv4, 5-word header
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64 // TTL
	pkt[9] = unix.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s4[:])
	copy(pkt[16:20], d4[:])
	u := pkt[ipLen:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	if err := unix.Sendto(r.fd, pkt, 0, &unix.SockaddrInet4{Addr: d4}); err != nil {
		t.Fatalf("raw send %v -> %v: %v", src, dst, err)
	}
}

// Issue 13, attack 3, on the real socket path: another client's first
// datagram, replayed from the victim's own source address and port after
// the victim has been quiet for longer than the old replacement rule's 2 s,
// neither replaces nor closes the victim's session.
func TestRawSpoofQuietReplayKeepsSession(t *testing.T) {
	parallelTest(t)
	for _, tc := range []struct {
		name  string
		block func() BlockCrypt
	}{
		{"aes-gcm", gcmBlock},
		{"aes-cfb", func() BlockCrypt { b, _ := NewAESBlockCrypt(bytes.Repeat([]byte{7}, 16)); return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spoof := newRawSpoofer(t)
			l, err := ListenWithOptions("127.0.0.1:0", tc.block(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			rebindEchoServer(t, l)
			victim, err := DialWithOptions(l.Addr().String(), tc.block(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer victim.Close()
			relEchoRounds(t, victim, 1)

			// Another client; its first datagram is the one replayed.
			oc := newRebindConn(t)
			var first []byte
			var once sync.Once
			oc.capture = func(b []byte) { once.Do(func() { first = b }) }
			other, err := NewConn4(0x13131313, l.Addr(), tc.block(), 0, 0, true, oc)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			relEchoRounds(t, other, 1)
			oc.mu.Lock()
			opener := first
			oc.mu.Unlock()

			quiet := time.Now()
			for time.Since(quiet) < 2500*time.Millisecond {
				// The victim stays quiet: this wait is the attack's condition.
				time.Sleep(100 * time.Millisecond)
			}
			before := l.Stats()
			spoof.send(t, addrPortOf(victim.LocalAddr()), addrPortOf(l.Addr()), opener)
			st := waitStats(t, l, func(st ListenerStats) bool {
				return st.Rejected.NotOpener+st.Rejected.Replay > before.Rejected.NotOpener+before.Rejected.Replay
			})
			if st.Sessions != 2 {
				t.Fatalf("listener holds %d sessions after the replay, want 2", st.Sessions)
			}
			relEchoRounds(t, victim, 3) // the victim's session still answers
			relEchoRounds(t, other, 1)
		})
	}
}

// The rebinding replay on the real socket path: a datagram captured from a
// GCM client, sent with a forged source (an address the attacker does not
// hold, and one it listens on), draws at most pathMaxChallenges challenges
// per address and moves nothing.
func TestRawSpoofRebindReplay(t *testing.T) {
	spoof := newRawSpoofer(t)
	l, cli, rc := rebindPair(t, gcmBlock)
	captured := rc.record(32)
	relEchoRounds(t, cli, 4)
	replays := captured()

	// The forged source listens here, to count what the listener sends it.
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.3 (%v); skipped", err)
	}
	defer victim.Close()
	var got atomic.Int64
	go func() {
		b := make([]byte, 2048)
		for {
			if _, _, err := victim.ReadFrom(b); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	srcs := []netip.AddrPort{addrPortOf(victim.LocalAddr()), netip.MustParseAddrPort("127.0.0.4:4444")}
	dst := addrPortOf(l.Addr())
	var wire int
	for range 5 {
		for _, src := range srcs {
			for _, b := range replays {
				spoof.send(t, src, dst, b)
				wire += len(b)
			}
		}
		relEchoRounds(t, cli, 2)
	}
	st := waitStats(t, l, func(st ListenerStats) bool { return st.Paths.Challenges > 0 })
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < 1 && time.Now().Before(deadline) {
		relEchoRounds(t, cli, 1)
	}
	st = l.Stats()
	if st.Paths.Moves != 0 || st.Sessions != 1 {
		t.Fatalf("spoofed replays moved or added a session: %+v", st)
	}
	if n := got.Load(); n < 1 || n > pathMaxChallenges {
		t.Fatalf("the forged source received %d datagrams, want 1..%d", n, pathMaxChallenges)
	}
	if max := int64(len(srcs) * pathMaxChallenges); int64(st.Paths.Challenges) > max {
		t.Fatalf("%d challenges for %d forged sources, want at most %d", st.Paths.Challenges, len(srcs), max)
	}
	relEchoRounds(t, cli, 2)
	t.Logf("%d B replayed from %d forged sources: %d challenges sent, %d reached the forged source we hold",
		wire, len(srcs), st.Paths.Challenges, got.Load())
}
