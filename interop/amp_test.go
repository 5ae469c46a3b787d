package interop

import (
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// holdsAck reports whether the KCP bytes of a datagram hold an ACK segment.
func holdsAck(kcp []byte) bool {
	ack := false
	eachSeg(kcp, func(h []byte, _ int) bool {
		ack = h[4] == 82
		return !ack
	})
	return ack
}

// TestAmpLostAckKCPGoClient: a kcp-go client asks a kcpx listener for 64 KiB
// with a 5-byte request and loses its first ACK. The listener's budget
// toward the unproven address lets one reply datagram out; the client, with
// nothing more to send, has no timer that would speak again. The kcpx
// session's window probe draws the kcp-go client's window report (kcp-go
// answers IKCP_CMD_WASK at its next flush), which earns the next datagram;
// its ACK proves the address. Without the probe both ends waited until the
// link was declared dead.
func TestAmpLostAckKCPGoClient(t *testing.T) {
	const reply = 64 << 10
	for _, name := range []string{"none", "aes", "aes-128-gcm"} {
		c, ok := CipherByName(name)
		if !ok {
			t.Fatalf("no cipher %q", name)
		}
		for _, f := range fecModes {
			t.Run(name+"/"+f.name, func(t *testing.T) {
				block, err := c.KCPGo(testPass)
				if err != nil {
					t.Fatal(err)
				}
				srv := startServer(t, KCPX, c, testPass, f.ds, f.ps, fast, func(s Session) {
					buf := make([]byte, 64)
					if _, err := io.ReadFull(s, buf[:5]); err != nil {
						return
					}
					s.Write(payload(9, reply))
				})
				tap := listenUDP(t)
				var dropped atomic.Int32
				tap.OnWrite(func(p []byte, _ net.Addr) bool {
					if dropped.Load() > 0 {
						return true
					}
					inner, ok := kcpgoOpen(block, p)
					if !ok {
						t.Errorf("the tap cannot open the client's %d-byte datagram", len(p))
						return true
					}
					if f.ds > 0 {
						if len(inner) < 8 || binary.LittleEndian.Uint16(inner[4:]) != 0xf1 {
							return true // parity
						}
						inner = inner[8:]
					}
					if holdsAck(inner) {
						dropped.Add(1)
						return false
					}
					return true
				})
				cli := dialConn(t, KCPGo, 0x5150, srv.l.Addr(), c, testPass, f.ds, f.ps, tap, fast)
				start := time.Now()
				if _, err := cli.Write([]byte("GET /")); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, reply)
				cli.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(cli, got); err != nil {
					t.Fatalf("%v after %v, %d ACK datagrams dropped", err, time.Since(start), dropped.Load())
				}
				if string(got) != string(payload(9, reply)) {
					t.Fatal("reply corrupted")
				}
				if dropped.Load() != 1 {
					t.Fatal("no ACK of the client was dropped: the test proves nothing")
				}
				t.Logf("64 KiB in %v with the client's first ACK lost", time.Since(start))
			})
		}
	}
}
