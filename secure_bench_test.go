package kcp

import (
	"io"
	"net"
	"testing"
	"time"
)

// secureBenchModes are the transports compared side by side: the AEAD mode
// (NewAESGCMCrypt, the baseline secure mode must reach 90% of) and secure
// mode with each AEAD.
func secureBenchModes(b *testing.B) []struct {
	name   string
	listen func() (*Listener, error)
	dial   func(addr string) (*UDPSession, error)
} {
	k := secureTestKeys()
	gcm := func() BlockCrypt { c, _ := NewAESGCMCrypt(testKey); return c }
	secure := func(c SecureCipher) (func() (*Listener, error), func(string) (*UDPSession, error)) {
		return func() (*Listener, error) {
				return ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
			}, func(addr string) (*UDPSession, error) {
				return DialSecure(addr, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: c})
			}
	}
	sl, sd := secure(SecureAES256GCM)
	cl, cd := secure(SecureChaCha20Poly1305)
	return []struct {
		name   string
		listen func() (*Listener, error)
		dial   func(addr string) (*UDPSession, error)
	}{
		{"aesgcm", func() (*Listener, error) { return ListenWithOptions("127.0.0.1:0", gcm(), 0, 0) },
			func(addr string) (*UDPSession, error) { return DialWithOptions(addr, gcm(), 0, 0) }},
		// The same AES-GCM sessions over a pass-through PacketConn: what the
		// engine does without its batch I/O (secure mode kept that cost
		// until its conns became datagram filters, udp_filter.go).
		{"aesgcm-nobatch", func() (*Listener, error) {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			return serveConn(gcm(), 0, 0, passConn{c}, true), nil
		}, func(addr string) (*UDPSession, error) {
			ua, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return nil, err
			}
			return NewConn4(randomConv(), ua, gcm(), 0, 0, true, passConn{c})
		}},
		{"secure-aes", sl, sd},
		{"secure-chacha", cl, cd},
	}
}

// BenchmarkSecureModeSink and BenchmarkSecureModeEcho move 64 KiB per
// iteration one way (sink) or there and back (echo), for each mode of
// secureBenchModes in one run. Bytes count one direction.
func BenchmarkSecureModeSink(b *testing.B) {
	for _, m := range secureBenchModes(b) {
		b.Run(m.name, func(b *testing.B) { benchModeSink(b, m.listen, m.dial, 65536, nil, false) })
	}
}

func BenchmarkSecureModeEcho(b *testing.B) {
	for _, m := range secureBenchModes(b) {
		b.Run(m.name, func(b *testing.B) { benchModeEcho(b, m.listen, m.dial, 65536) })
	}
}

// benchModeSink writes nbytes buffers from a session dial opens to one the
// listener accepts, both tuned by benchTune; setup (if not nil) then
// adjusts the sender, and with cpu set the CPU both ends spend per GiB is
// reported (the driver's row).
func benchModeSink(b *testing.B, listen func() (*Listener, error), dial func(string) (*UDPSession, error), nbytes int, setup func(*UDPSession) error, cpu bool) {
	l, err := listen()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.SetReadBuffer(4 << 20)
	l.SetWriteBuffer(4 << 20)
	chunks := make(chan struct{}, 1<<16)
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		benchTune(s)
		buf := make([]byte, 1<<20)
		got := 0
		for {
			n, err := s.Read(buf)
			if err != nil {
				return
			}
			for got += n; got >= nbytes; got -= nbytes {
				chunks <- struct{}{}
			}
		}
	}()
	cli, err := dial(l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	benchTune(cli)
	if setup != nil {
		if err := setup(cli); err != nil {
			b.Fatal(err)
		}
	}
	tokens := benchWriter(cli, nbytes)
	b.SetBytes(int64(nbytes))
	b.ReportAllocs()
	cpu0 := benchCPU()
	for b.Loop() {
		tokens <- struct{}{}
		<-chunks
	}
	if cpu {
		used := benchCPU() - cpu0
		b.ReportMetric(used.Seconds()/(float64(b.N)*float64(nbytes)/(1<<30)), "cpu-s/GiB")
	}
	close(tokens)
	for range benchDepth(nbytes) {
		<-chunks
	}
}

func benchModeEcho(b *testing.B, listen func() (*Listener, error), dial func(string) (*UDPSession, error), nbytes int) {
	l, err := listen()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.SetReadBuffer(4 << 20)
	l.SetWriteBuffer(4 << 20)
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			benchTune(s)
			go echoServer(s)
		}
	}()
	cli, err := dial(l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	benchTune(cli)
	tokens := benchWriter(cli, nbytes)
	rbuf := make([]byte, nbytes)
	b.SetBytes(int64(nbytes))
	b.ReportAllocs()
	for b.Loop() {
		tokens <- struct{}{}
		if _, err := io.ReadFull(cli, rbuf); err != nil {
			b.Fatal(err)
		}
	}
	close(tokens)
	for range benchDepth(nbytes) {
		if _, err := io.ReadFull(cli, rbuf); err != nil {
			b.Fatal(err)
		}
	}
	reportIO(b, l.IOStats(), cli.IOStats())
}

// reportIO reports datagrams per system call on both sockets of a benchmark
// and the datagrams the listener sent per iteration.
func reportIO(b *testing.B, srv, cli IOStats) {
	b.ReportMetric(srv.TxPerCall(), "srv-tx/call")
	b.ReportMetric(srv.RxPerCall(), "srv-rx/call")
	b.ReportMetric(cli.TxPerCall(), "cli-tx/call")
	b.ReportMetric(cli.RxPerCall(), "cli-rx/call")
	b.ReportMetric(float64(srv.TxDatagrams)/float64(b.N), "srv-dg/op")
}

// BenchmarkSecureHandshake runs complete in-memory handshakes (both ends'
// CPU, no network) per pattern.
func BenchmarkSecureHandshake(b *testing.B) {
	for _, tc := range secureCases()[:5] {
		b.Run(tc.name, func(b *testing.B) {
			cli, srv := mustParams(b, tc.cli, false), mustParams(b, tc.srv, true)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := runHandshake(b, cli, srv, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSecureDial measures DialSecure over loopback to a listener
// (handshake round trip included), closing each session.
func BenchmarkSecureDial(b *testing.B) {
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	cfg := &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}
	b.ReportAllocs()
	for b.Loop() {
		s, err := DialSecure(l.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		s.SetLinger(0)
		s.Close()
	}
}

// BenchmarkSecureSealOpen seals and opens one 1,400-byte datagram per
// iteration, per AEAD, beside the same work by NewAESGCMCrypt's framing
// (the baseline); 0 allocations expected.
func BenchmarkSecureSealOpen(b *testing.B) {
	b.Run("aesgcm-crypt", func(b *testing.B) {
		gcm, _ := NewAESGCMCrypt(testKey)
		c := newPacketCrypter(gcm)
		buf := make([]byte, mtuLimit)
		b.SetBytes(1400)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.open(c.seal(buf[:c.headerSize()+1400])); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []SecureCipher{SecureChaCha20Poly1305, SecureAES256GCM} {
		b.Run(c.String(), func(b *testing.B) {
			k := secureTestKeys()
			cfgC := &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: c}
			r, err := runHandshake(b, mustParams(b, cfgC, false), mustParams(b, &SecureConfig{PrivateKey: k.srvPriv}, true), 0)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1400+SecureOverhead)
			now := time.Now()
			b.SetBytes(1400)
			b.ReportAllocs()
			for b.Loop() {
				pkt, err := r.cli.seal(buf[:0], secData, buf[secHeaderLen:secHeaderLen+1400], now)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := r.srv.open(pkt, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// passConn hides a *net.UDPConn behind the plain net.PacketConn interface, so
// the engine uses one syscall per datagram, as it does under secure mode.
type passConn struct{ *net.UDPConn }

func (p passConn) ReadFrom(b []byte) (int, net.Addr, error)  { return p.UDPConn.ReadFrom(b) }
func (p passConn) WriteTo(b []byte, a net.Addr) (int, error) { return p.UDPConn.WriteTo(b, a) }

// BenchmarkSecureFilterPath measures a listener's per-datagram work in
// secure mode beside the bare AEAD work it wraps: "filter" takes a
// client's 1,400-byte datagram through filterIn (framing, peer lookup,
// replay window, path check) and the answer through filterOut (peer lookup,
// proven address); "bare" does the same seals and opens on the keys alone.
// The difference is the filter's own cost per datagram pair.
func BenchmarkSecureFilterPath(b *testing.B) {
	k := secureTestKeys()
	cliP := mustParams(b, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: SecureAES256GCM}, false)
	srvP := mustParams(b, &SecureConfig{PrivateKey: k.srvPriv}, true)
	r, err := runHandshake(b, cliP, srvP, 0)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0) // the handshake's clock: no rekey by time
	sc := newSecureServerConn(nil, srvP)
	sc.promote(r.srv.localIndex, r.srv, testSrc, now)
	payload := make([]byte, 1400)
	in := make([]byte, 1400+SecureOverhead)
	out := make([]byte, 1400+SecureOverhead)
	b.Run("filter", func(b *testing.B) {
		b.SetBytes(2 * 1400)
		b.ReportAllocs()
		for b.Loop() {
			pkt, _ := r.cli.seal(in[:0], secData, payload, now)
			data, from, ok := sc.filterIn(pkt, testSrc, now)
			if !ok {
				b.Fatal("filterIn dropped the datagram")
			}
			sealed, _, ok, err := sc.filterOut(out, data, from, now)
			if !ok || err != nil {
				b.Fatal("filterOut dropped the datagram", err)
			}
			if _, _, err := r.cli.open(sealed, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		b.SetBytes(2 * 1400)
		b.ReportAllocs()
		for b.Loop() {
			pkt, _ := r.cli.seal(in[:0], secData, payload, now)
			_, data, err := r.srv.open(pkt, now)
			if err != nil {
				b.Fatal(err)
			}
			sealed, _ := r.srv.seal(out[:0], secData, data, now)
			if _, _, err := r.cli.open(sealed, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
