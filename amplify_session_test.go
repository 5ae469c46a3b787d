package kcp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// opener builds a first datagram as a client sends it: one PUSH, sn 0,
// una 0, carrying payload.
func opener(conv uint32, payload []byte) []byte {
	b := make([]byte, IKCP_OVERHEAD+len(payload))
	putHeader(b, conv, IKCP_CMD_PUSH, 0, IKCP_WND_RCV, 0, 0, 0, uint32(len(payload)))
	copy(b[IKCP_OVERHEAD:], payload)
	return b
}

// drainBytes counts what reaches c until nothing has arrived for quiet.
func drainBytes(t *testing.T, c *memConn, quiet time.Duration) (bytes, datagrams int) {
	t.Helper()
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, _, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return bytes, datagrams
		}
		if err != nil {
			t.Fatal(err)
		}
		bytes += n
		datagrams++
	}
}

// ampServer serves on a memNet: every accepted session runs reply on what
// it reads, with kcptun's fast3 timing.
func ampServer(t *testing.T, n *memNet, reply func(s *UDPSession, req []byte)) *Listener {
	t.Helper()
	l, err := ServeConn(nil, 0, 0, n.listen("srv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			s.SetNoDelay(1, 10, 2, 1)
			go func() {
				defer s.Close()
				buf := make([]byte, 4096)
				for {
					m, err := s.Read(buf)
					if err != nil {
						return
					}
					reply(s, buf[:m])
				}
			}()
		}
	}()
	return l
}

// TestAmplificationBounded: a datagram from a spoofed source (the victim
// never answers) draws at most 3x its size toward the victim, plus the one
// datagram each datagram heard may draw (a kcp-go client's request is
// often smaller than a third of the first reply; see takeTx) and the
// window probes a held session sends (ampProbeLocked). Before the budget, an
// echo server retransmitted a 1,400 B echo until the dead-link limit
// (about 20x), and a 61 B request for 64 KiB drew the whole window again
// and again.
func TestAmplificationBounded(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	big := make([]byte, 1376)
	for _, tc := range []struct {
		name    string
		payload []byte
		reply   func(s *UDPSession, req []byte)
		bound   func(in int) int
	}{
		{"echo 1400 B", big, func(s *UDPSession, req []byte) { s.Write(req) },
			func(in int) int { return 3*in + mtuLimit + ampProbeMax*IKCP_OVERHEAD }},
		{"61 B request for 64 KiB", make([]byte, 37), func(s *UDPSession, req []byte) { s.Write(make([]byte, 64<<10)) },
			func(in int) int { return 3*in + mtuLimit + ampProbeMax*IKCP_OVERHEAD }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNet(51)
			l := ampServer(t, n, tc.reply)
			victim := n.listen("victim")
			defer victim.Close()
			dgram := opener(0x1234, tc.payload)
			if _, err := victim.WriteTo(dgram, memAddr("srv")); err != nil {
				t.Fatal(err)
			}
			got, count := drainBytes(t, victim, 1500*time.Millisecond)
			if got == 0 {
				t.Fatal("the server sent nothing: the test proves no bound")
			}
			if limit := tc.bound(len(dgram)); got > limit {
				t.Fatalf("%d B in drew %d B in %d datagrams toward an unproven address, bound %d",
					len(dgram), got, count, limit)
			}
			if st := l.IOStats(); st.TxAmpLimited == 0 {
				t.Fatalf("no datagram was held back or dropped (%+v)", st)
			}
			t.Logf("%d B in, %d B out in %d datagrams (%.1fx)", len(dgram), got, count, float64(got)/float64(len(dgram)))
		})
	}
}

// ampFetch sends a 5 B request from a client on conn (conv, kcptun's fast3
// timing, message mode) to an ampServer whose reply is randBytes(seed,
// size), and reads the reply within bound. It returns how long that took;
// a reply that differs fails the test.
func ampFetch(t *testing.T, conn net.PacketConn, conv uint32, seed uint64, size int, bound time.Duration) (time.Duration, error) {
	t.Helper()
	c, err := NewConn4(conv, memAddr("srv"), nil, 0, 0, true, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetNoDelay(1, 10, 2, 1)
	c.SetStreamMode(false)
	start := time.Now()
	if _, err := c.Write([]byte("GET /")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	c.SetReadDeadline(time.Now().Add(bound))
	if _, err := io.ReadFull(c, got); err != nil {
		return time.Since(start), err
	}
	if string(got) != string(randBytes(seed, size)) {
		t.Fatal("reply corrupted")
	}
	return time.Since(start), nil
}

// TestAmplificationLegitClient: a client whose small request asks for a
// large reply is not slowed by the budget: its first reply datagram goes
// out on credit, its ACK proves its address, and the rest follows at once.
func TestAmplificationLegitClient(t *testing.T) {
	leakCheck(t)
	n := newMemNet(52)
	const reply = 256 << 10
	l := ampServer(t, n, func(s *UDPSession, req []byte) { s.Write(randBytes(5, reply)) })
	took, err := ampFetch(t, n.listen("cli"), 0x4321, 5, reply, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("256 KiB reply to a 5 B request in %v; held or dropped before validation: %d",
		took, l.IOStats().TxAmpLimited)
	var s *UDPSession
	l.mu.Lock()
	for _, x := range l.others {
		s = x
	}
	l.mu.Unlock()
	if s == nil {
		t.Fatal("the listener holds no session for the client")
	}
	s.mu.Lock()
	validated := s.peerValidated()
	s.mu.Unlock()
	if !validated {
		t.Fatal("the client's ACKs did not validate its address")
	}
}

// ackDropConn loses the first datagram its client sends that carries an
// ACK segment.
type ackDropConn struct {
	net.PacketConn
	dropped atomic.Int32
}

func (c *ackDropConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.dropped.Load() == 0 && anySeg(b, func(h []byte) bool { return h[4] == IKCP_CMD_ACK }) {
		c.dropped.Add(1)
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestAmplificationLostAckRecovers: a client's small request draws a large
// reply; the first reply datagram goes out on credit and the client's ACK
// of it is lost. The client then has nothing to send, and the server's
// budget holds every datagram that would draw another ACK: before the
// server probed, both ends waited until the link was declared dead (the
// read below timed out after 5 s). The server's window probe, sent past the
// budget an RTO later, draws the client's window report, which earns the
// next datagram its credit; its ACK validates the client.
func TestAmplificationLostAckRecovers(t *testing.T) {
	leakCheck(t)
	n := newMemNet(53)
	const reply = 64 << 10
	l := ampServer(t, n, func(s *UDPSession, req []byte) { s.Write(randBytes(6, reply)) })
	cc := &ackDropConn{PacketConn: n.listen("cli")}
	took, err := ampFetch(t, cc, 0x4322, 6, reply, 5*time.Second)
	if err != nil {
		t.Fatalf("%v after %v (%d ACK datagrams lost; server %+v)", err, took, cc.dropped.Load(), l.IOStats())
	}
	if cc.dropped.Load() != 1 {
		t.Fatal("the client's first ACK was not dropped: the test proves nothing")
	}
	if st := l.IOStats(); st.TxAmpLimited == 0 {
		t.Fatalf("the server never held a datagram: the test proves nothing (%+v)", st)
	}
	t.Logf("64 KiB reply in %v with the client's first ACK lost", took)
}
