package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// fixedReader fills every read with the same bytes: with it as both
// libraries' nonce source, every datagram either sends carries the same
// nonce, whichever goroutine or session draws it.
type fixedReader struct{}

func (fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(0xa5 ^ i*7)
	}
	return len(p), nil
}

// TestSessionAckDatagramsIdentical compares whole datagrams from each
// library's real session transmit path: a raw UDP peer sends one sealed PUSH
// (sealed with kcp-go's framing) to a fresh listener, which answers with an
// ACK. With the same nonce source, the kcpx listener's answer must be
// byte-identical to the kcp-go listener's (nonce, CRC, FEC header, KCP
// bytes, cipher), for every cipher with FEC off and 10/3; and it must open
// with kcp-go's framing as an ACK of that PUSH.
func TestSessionAckDatagramsIdentical(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	kcpgoNonces.use(fixedReader{})
	kcpxNonces.use(fixedReader{})
	t.Cleanup(restoreNonces)
	const conv, ts = 0x0a0b0c0d, 777
	for _, c := range Ciphers {
		for _, f := range fecModes {
			t.Run(c.Name+"/"+f.name, func(t *testing.T) {
				block, err := c.KCPGo(pass)
				if err != nil {
					t.Fatal(err)
				}
				push := segment(conv, 81, 0, 128, ts, 0, 0, []byte("interop"))
				if f.ds > 0 {
					hdr := make([]byte, 8)
					binary.LittleEndian.PutUint16(hdr[4:], 0xf1)
					binary.LittleEndian.PutUint16(hdr[6:], uint16(2+len(push)))
					push = append(hdr, push...)
				}
				sealed := kcpgoSeal(block, fixedReader{}, push)
				replies := map[string][]byte{}
				for _, impl := range []Impl{KCPGo, KCPX} {
					t.Run(impl.Name, func(t *testing.T) {
						srv := startServer(t, impl, c, pass, f.ds, f.ps, nil, nil)
						peer, err := net.ListenPacket("udp", "127.0.0.1:0")
						if err != nil {
							t.Fatal(err)
						}
						defer peer.Close()
						if _, err := peer.WriteTo(sealed, srv.l.Addr()); err != nil {
							t.Fatal(err)
						}
						peer.SetReadDeadline(time.Now().Add(5 * time.Second))
						buf := make([]byte, MaxDatagram)
						n, _, err := peer.ReadFrom(buf)
						if err != nil {
							t.Fatalf("no answer from the %s listener: %v", impl.Name, err)
						}
						replies[impl.Name] = buf[:n]
						inner, ok := kcpgoOpen(block, buf[:n])
						if !ok {
							t.Fatalf("kcp-go's framing cannot open the %s listener's %d-byte answer", impl.Name, n)
						}
						if f.ds > 0 {
							if len(inner) < 8 || binary.LittleEndian.Uint16(inner[4:]) != 0xf1 {
								t.Fatalf("answer is not an FEC data shard: % x", inner[:min(8, len(inner))])
							}
							inner = inner[8:]
						}
						if err := checkAck(inner, conv, ts); err != nil {
							t.Fatalf("%s answer: %v", impl.Name, err)
						}
					})
				}
				g, x := replies["kcp-go"], replies["kcpx"]
				if g != nil && x != nil && !bytes.Equal(g, x) {
					gi, _ := kcpgoOpen(block, g)
					xi, _ := kcpgoOpen(block, x)
					t.Fatalf("kcpx's answer (%d bytes) differs from kcp-go's (%d bytes) at byte %d\nkcp-go inner: % x\nkcpx inner:   % x",
						len(x), len(g), firstDiff(x, g), gi, xi)
				}
			})
		}
	}
}

// checkAck verifies that kcp is exactly one ACK segment for sn 0 echoing ts.
func checkAck(kcp []byte, conv, ts uint32) error {
	if len(kcp) != 24 {
		return fmt.Errorf("%d KCP bytes, want one 24-byte ACK: % x", len(kcp), kcp)
	}
	switch {
	case binary.LittleEndian.Uint32(kcp) != conv:
		return fmt.Errorf("conv %#x", binary.LittleEndian.Uint32(kcp))
	case kcp[4] != 82:
		return fmt.Errorf("cmd %d, want 82 (ACK)", kcp[4])
	case binary.LittleEndian.Uint32(kcp[8:]) != ts:
		return fmt.Errorf("ts %d, want %d", binary.LittleEndian.Uint32(kcp[8:]), ts)
	case binary.LittleEndian.Uint32(kcp[12:]) != 0:
		return fmt.Errorf("acked sn %d, want 0", binary.LittleEndian.Uint32(kcp[12:]))
	case binary.LittleEndian.Uint32(kcp[16:]) != 1:
		return fmt.Errorf("una %d, want 1", binary.LittleEndian.Uint32(kcp[16:]))
	}
	return nil
}

// TestSessionFECRecovery sends 1 MiB from each library's client (FEC 10/3,
// no cipher, so the tap can read the FEC header) to the other's listener
// while the tap drops the fifth data shard of every group: the receiver must
// rebuild them from the sender's parity (its FECRecovered counter grows by
// at least half the drops; ARQ covers groups whose parity was skipped), and
// the echo stays byte-exact.
func TestSessionFECRecovery(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	null, _ := CipherByName("null")
	for _, d := range directions() {
		t.Run(d.name, func(t *testing.T) {
			srv := startServer(t, d.server, null, pass, 10, 3, fast, echoHandler)
			raw, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			tap := NewTapConn(raw)
			var dropped atomic.Int64
			tap.OnWrite(func(p []byte, _ net.Addr) bool {
				if len(p) >= 8 && binary.LittleEndian.Uint16(p[4:]) == 0xf1 && binary.LittleEndian.Uint32(p)%13 == 4 {
					dropped.Add(1)
					return false
				}
				return true
			})
			cli, err := d.client.NewConn(0x5eed, srv.l.Addr(), null, pass, 10, 3, tap)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cli.Close() })
			fast(cli)
			before := d.server.Snmp()
			echo(t, cli, payload(5, echoSize()), 32<<10)
			tap.OnWrite(nil)
			n := uint64(dropped.Load())
			// Counters may be committed in batches: wait for them to settle.
			var rec, errs uint64
			deadline := time.Now().Add(ioTimeout)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				after := d.server.Snmp()
				rec, errs = after.FECRecovered-before.FECRecovered, after.FECErrs-before.FECErrs
				if (n > 0 && rec >= n/2) || time.Now().After(deadline) {
					break
				}
				<-tick.C
			}
			t.Logf("%s dropped %d data shards; %s recovered %d (FEC errors %d)", d.client.Name, n, d.server.Name, rec, errs)
			if n == 0 || rec < n/2 {
				t.Fatalf("%s recovered %d of %d dropped data shards", d.server.Name, rec, n)
			}
		})
	}
}
