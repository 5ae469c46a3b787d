package kcp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Secure mode's defence against spoofed handshakes, on the real socket
// path: initiations forged (raw socket, rawspoof_linux_test.go) from many
// 127.0.0.x sources flood a ListenSecure listener that requires cookies,
// while a real client dials and moves data. The listener may answer each
// forged source with a cookie reply and nothing else: no handshake or peer
// state for any of them, at most 3× the bytes it received from a source
// sent back to it, and the real client's handshake and transfer complete.

// spoofSink is a forged source address the test holds, to count what the
// listener sends there.
type spoofSink struct {
	conn *net.UDPConn
	ap   netip.AddrPort
	sent int          // bytes forged from ap
	got  atomic.Int64 // bytes the listener sent to ap
}

func TestRawSpoofSecureHandshakeFlood(t *testing.T) {
	spoof := newRawSpoofer(t)
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv, Cookie: CookieAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sc := l.conn.(*secureServerConn)
	dst := addrPortOf(l.Addr())

	// 32 forged sources the test listens on (8 addresses, 4 ports each),
	// and 96 nobody listens on.
	var sinks []*spoofSink
	var readers sync.WaitGroup
	defer readers.Wait()
	for a := byte(2); a <= 9; a++ {
		for range 4 {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, a)})
			if err != nil {
				t.Skipf("cannot bind 127.0.0.%d (%v); skipped", a, err)
			}
			defer c.Close()
			s := &spoofSink{conn: c, ap: addrPortOf(c.LocalAddr())}
			sinks = append(sinks, s)
			readers.Add(1)
			go func() {
				defer readers.Done()
				b := make([]byte, 2048)
				for {
					n, _, err := c.ReadFrom(b)
					if err != nil {
						return
					}
					s.got.Add(int64(n))
				}
			}()
		}
	}
	var blind []netip.AddrPort
	for i := range 96 {
		blind = append(blind, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i/4)}), uint16(20000+i)))
	}

	// The attacker knows the server's public key, so its initiations carry
	// a valid mac1 (the most it can do without receiving at the source).
	cliCfg := &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, HandshakeTimeout: 30 * time.Second}
	ini := newSecureInitiator(mustParams(t, cliCfg, false))
	inits := make([][]byte, 16)
	for i := range inits {
		if inits[i], err = ini.initiation(uint32(1000+i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	// tablesClean reports a pending handshake or a peer of a forged source.
	tablesClean := func() error {
		sc.mu.RLock()
		defer sc.mu.RUnlock()
		for _, ph := range sc.pending {
			if ph.src.Addr() != dst.Addr() {
				return fmt.Errorf("a handshake held for forged source %v", ph.src)
			}
		}
		for _, p := range sc.peers {
			if p.virt.Addr() != dst.Addr() {
				return fmt.Errorf("a peer made for forged source %v", p.virt)
			}
		}
		if len(sc.peers) > 1 {
			return fmt.Errorf("%d peers, want at most the real client", len(sc.peers))
		}
		return nil
	}

	// The real client: handshake (with its cookie round) and an echoed
	// transfer, while the flood goes on.
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		defer s.Close()
		echoServer(s)
	}()
	const transfer = 256 << 10
	done := make(chan error, 1)
	go func() { done <- secureFloodClient(l.Addr().String(), cliCfg, transfer) }()

	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond) // pacing: at most 64 forged datagrams per ms
	defer tick.Stop()
	var rounds, forged int
	var clientErr error
flood:
	for {
		for i, s := range sinks {
			pkt := inits[(rounds+i)%len(inits)]
			spoof.send(t, s.ap, dst, pkt)
			s.sent += len(pkt)
			forged++
		}
		for i, src := range blind {
			spoof.send(t, src, dst, inits[(rounds+i)%len(inits)])
			forged++
		}
		rounds++
		if err := tablesClean(); err != nil {
			t.Fatal(err)
		}
		select {
		case clientErr = <-done:
			break flood
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the real client did not finish within 60 s of flood (%d forged initiations)", forged)
		}
	}
	if clientErr != nil {
		t.Fatalf("real client during the flood: %v", clientErr)
	}
	if err := tablesClean(); err != nil {
		t.Fatal(err)
	}

	// Everything the listener queued goes out; then each sink reads what
	// reached it.
	waitFor(t, 10*time.Second, "the listener's control queue to empty", func() bool { return sc.ctl.queued.Load() == 0 })
	for _, s := range sinks {
		s.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	}
	readers.Wait()

	var sentAll, gotAll int64
	for _, s := range sinks {
		sentAll += int64(s.sent)
		gotAll += s.got.Load()
		if got := s.got.Load(); got > amplificationFactor*int64(s.sent) {
			t.Errorf("forged source %v: %d bytes sent to it for %d received from it, over %d×", s.ap, got, s.sent, amplificationFactor)
		}
	}
	if gotAll == 0 || sc.stats.cookies.Load() == 0 {
		t.Errorf("no cookie replies to the forged sources (%d bytes, %d cookies): the flood never reached the handshake code", gotAll, sc.stats.cookies.Load())
	}
	if d := l.IOStats().TxCtlDrops; d != sc.ctl.drops.Load() {
		t.Errorf("IOStats.TxCtlDrops %d, the ring counted %d", d, sc.ctl.drops.Load())
	}
	if h := sc.stats.handshakes.Load(); h == 0 || h > 32 {
		t.Errorf("%d handshakes begun, want the real client's few", h)
	}
	t.Logf("%d forged initiations in %d rounds from %d sources: %d cookie replies queued, %d dropped (ring full); "+
		"the sources held received %d B for %d B forged (%.2f×); %d handshakes (the real client's)",
		forged, rounds, len(sinks)+len(blind), sc.stats.cookies.Load(), sc.ctl.drops.Load(),
		gotAll, sentAll, float64(gotAll)/float64(sentAll), sc.stats.handshakes.Load())
}

// secureFloodClient dials addr in secure mode and echoes n random bytes
// through the session, checking them.
func secureFloodClient(addr string, cfg *SecureConfig, n int) error {
	c, err := DialSecure(addr, cfg)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	c.SetNoDelay(1, 10, 2, 1)
	c.SetWindowSize(256, 256)
	want := make([]byte, n)
	rand.Read(want)
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < n; off += 8 << 10 {
			if _, err := c.Write(want[off:min(off+8<<10, n)]); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	got := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(45 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("echo stalled: %w", err)
		}
		return fmt.Errorf("echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("echoed bytes differ")
	}
	return nil
}
