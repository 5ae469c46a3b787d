// Package securebench compares kcpx secure mode with quic-go (TLS 1.3) over
// loopback: connection setup and bulk transfer, side by side in one run. It
// is a module of its own so that quic-go stays out of kcpx's dependencies.
//
//	cd interop/securebench && go test -bench . -benchtime 2s
package securebench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"sync"
	"testing"
	"time"

	kcp "github.com/kcpx/kcp"
	"github.com/quic-go/quic-go"
)

// keys are the secure-mode static keys, made once.
var keys = sync.OnceValue(func() (k struct{ srvPriv, srvPub, cliPriv []byte }) {
	k.srvPriv, k.srvPub, _ = kcp.GenerateSecureKey()
	k.cliPriv, _, _ = kcp.GenerateSecureKey()
	return k
})

var psk = make([]byte, kcp.SecureKeySize)

// tlsConfigs returns a server config with a fresh self-signed ECDSA P-256
// certificate and a client config that trusts it.
var tlsConfigs = sync.OnceValues(func() (*tls.Config, *tls.Config) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"bench"}}
	cli := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"bench"}}
	return srv, cli
})

var quicConf = &quic.Config{
	MaxIdleTimeout:             30 * time.Second,
	InitialStreamReceiveWindow: 4 << 20,
	MaxStreamReceiveWindow:     16 << 20,
}

// pair is a connected client and server byte stream and how to end them.
type pair struct {
	cli, srv io.ReadWriter
	stop     func()
}

func tune(ss ...*kcp.UDPSession) {
	for _, s := range ss {
		s.SetStreamMode(true)
		s.SetWindowSize(1024, 1024)
		s.SetNoDelay(1, 10, 2, 1)
		s.SetReadBuffer(4 << 20)
		s.SetWriteBuffer(4 << 20)
	}
}

// kcpPair connects a kcpx session pair through listen and dial.
func kcpPair(b *testing.B, l *kcp.Listener, dial func(string) (*kcp.UDPSession, error)) pair {
	cli, err := dial(l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	cli.Write([]byte{1})
	srv, err := l.AcceptKCP()
	if err != nil {
		b.Fatal(err)
	}
	io.ReadFull(srv, make([]byte, 1))
	tune(cli, srv)
	return pair{cli, srv, func() { cli.Close(); srv.Close(); l.Close() }}
}

type mode struct {
	name string
	make func(b *testing.B) pair
}

func modes() []mode {
	k := keys()
	gcm := func() kcp.BlockCrypt { c, _ := kcp.NewAESGCMCrypt(psk); return c }
	return []mode{
		{"kcpx-aesgcm", func(b *testing.B) pair {
			l, err := kcp.ListenWithOptions("127.0.0.1:0", gcm(), 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			return kcpPair(b, l, func(a string) (*kcp.UDPSession, error) { return kcp.DialWithOptions(a, gcm(), 0, 0) })
		}},
		{"kcpx-secure-aes", func(b *testing.B) pair {
			l, err := kcp.ListenSecure("127.0.0.1:0", &kcp.SecureConfig{PrivateKey: k.srvPriv})
			if err != nil {
				b.Fatal(err)
			}
			return kcpPair(b, l, func(a string) (*kcp.UDPSession, error) {
				return kcp.DialSecure(a, &kcp.SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: kcp.SecureAES256GCM})
			})
		}},
		{"quic-go", func(b *testing.B) pair {
			srvTLS, cliTLS := tlsConfigs()
			ln, err := quic.ListenAddr("127.0.0.1:0", srvTLS, quicConf)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			cc, err := quic.DialAddr(ctx, ln.Addr().String(), cliTLS, quicConf)
			if err != nil {
				b.Fatal(err)
			}
			cs, err := cc.OpenStreamSync(ctx)
			if err != nil {
				b.Fatal(err)
			}
			cs.Write([]byte{1})
			sc, err := ln.Accept(ctx)
			if err != nil {
				b.Fatal(err)
			}
			ss, err := sc.AcceptStream(ctx)
			if err != nil {
				b.Fatal(err)
			}
			io.ReadFull(ss, make([]byte, 1))
			return pair{cs, ss, func() { cc.CloseWithError(0, ""); sc.CloseWithError(0, ""); ln.Close() }}
		}},
	}
}

// BenchmarkSink writes 64 KiB per iteration one way.
func BenchmarkSink(b *testing.B) {
	const n = 64 << 10
	for _, m := range modes() {
		b.Run(m.name, func(b *testing.B) {
			p := m.make(b)
			defer p.stop()
			done := make(chan struct{}, 1<<16)
			go func() {
				buf := make([]byte, 1<<20)
				got := 0
				for {
					k, err := p.srv.Read(buf)
					if err != nil {
						return
					}
					for got += k; got >= n; got -= n {
						done <- struct{}{}
					}
				}
			}()
			tokens := make(chan struct{}, 8)
			go func() {
				buf := make([]byte, n)
				for range tokens {
					if _, err := p.cli.Write(buf); err != nil {
						return
					}
				}
			}()
			for range 4 {
				tokens <- struct{}{}
			}
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				tokens <- struct{}{}
				<-done
			}
			close(tokens)
			for range 4 {
				<-done
			}
		})
	}
}

// BenchmarkEcho writes 64 KiB per iteration and reads it back from an echo
// server. Bytes count one direction.
func BenchmarkEcho(b *testing.B) {
	const n = 64 << 10
	for _, m := range modes() {
		b.Run(m.name, func(b *testing.B) {
			p := m.make(b)
			defer p.stop()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					k, err := p.srv.Read(buf)
					if err != nil {
						return
					}
					if _, err := p.srv.Write(buf[:k]); err != nil {
						return
					}
				}
			}()
			tokens := make(chan struct{}, 8)
			go func() {
				buf := make([]byte, n)
				for range tokens {
					if _, err := p.cli.Write(buf); err != nil {
						return
					}
				}
			}()
			for range 4 {
				tokens <- struct{}{}
			}
			rbuf := make([]byte, n)
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				tokens <- struct{}{}
				if _, err := io.ReadFull(p.cli, rbuf); err != nil {
					b.Fatal(err)
				}
			}
			close(tokens)
			for range 4 {
				io.ReadFull(p.cli, rbuf)
			}
		})
	}
}

// BenchmarkConnect measures connection setup over loopback until the client
// can send: kcpx secure mode (IK, NNpsk0) and quic-go's TLS 1.3 handshake
// (1-RTT, ECDSA P-256 certificate). CPU for both ends is in the same process.
func BenchmarkConnect(b *testing.B) {
	k := keys()
	b.Run("kcpx-secure-IK", func(b *testing.B) {
		l, err := kcp.ListenSecure("127.0.0.1:0", &kcp.SecureConfig{PrivateKey: k.srvPriv})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		cfg := &kcp.SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}
		b.ReportAllocs()
		for b.Loop() {
			s, err := kcp.DialSecure(l.Addr().String(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			s.SetLinger(0)
			s.Close()
		}
	})
	b.Run("kcpx-secure-NNpsk0", func(b *testing.B) {
		l, err := kcp.ListenSecure("127.0.0.1:0", &kcp.SecureConfig{PresharedKey: psk})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		cfg := &kcp.SecureConfig{PresharedKey: psk}
		b.ReportAllocs()
		for b.Loop() {
			s, err := kcp.DialSecure(l.Addr().String(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			s.SetLinger(0)
			s.Close()
		}
	})
	b.Run("quic-go", func(b *testing.B) {
		srvTLS, cliTLS := tlsConfigs()
		ln, err := quic.ListenAddr("127.0.0.1:0", srvTLS, quicConf)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept(context.Background())
				if err != nil {
					return
				}
				go func() { <-c.Context().Done() }()
			}
		}()
		ctx := context.Background()
		// A fresh UDP socket per dial, as DialSecure has.
		b.ReportAllocs()
		for b.Loop() {
			c, err := quic.DialAddr(ctx, ln.Addr().String(), cliTLS, quicConf)
			if err != nil {
				b.Fatal(err)
			}
			c.CloseWithError(0, "")
		}
	})
}
