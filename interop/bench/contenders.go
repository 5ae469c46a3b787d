package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	kcp "github.com/kcpx/kcp"
	"github.com/kcpx/kcp/interop"
	"github.com/quic-go/quic-go"
)

// peer is one end of a byte stream, as every measure uses it.
type peer interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
}

// server accepts peers on a loopback address. acceptConn returns once a
// connection is in and leaves the rest to finish: quic-go's peer is the
// connection's first stream, which comes only with the client's first
// bytes, and a server that waits for it before accepting more stalls
// clients that have not written yet.
type server interface {
	acceptConn() (finish func() (peer, error), err error)
	Addr() net.Addr
	Close() error
}

// accept returns the next peer of s.
func accept(s server) (peer, error) {
	finish, err := s.acceptConn()
	if err != nil {
		return nil, err
	}
	return finish()
}

// ready is the finish of a peer that needs nothing more.
func ready(p peer, err error) (func() (peer, error), error) {
	return func() (peer, error) { return p, nil }, err
}

// contender is one implementation in the table: the two KCP libraries
// (kcp set, every measure), and TCP and quic-go (the plain measures only:
// they have no KCP cipher, FEC or tuning).
type contender struct {
	name string
	kcp  *interop.Impl
	// listen opens a loopback server; c, ds and ps are the KCP cipher and
	// FEC, which only the KCP contenders take (the others get "null", 0, 0).
	listen func(c interop.Cipher, ds, ps int) (server, error)
	// dial opens a client to addr with the library's default settings.
	dial func(addr string, c interop.Cipher, ds, ps int) (peer, error)
	// dialFrom is dial from a socket bound to the local IP laddr (the idle
	// measure spreads clients over 127.0.0.0/8 when one address has too few
	// ephemeral ports); nil where the library cannot.
	dialFrom func(laddr net.IP, addr string) (peer, error)
	// kcpTuned: the peers are KCP sessions that take the driver's settings
	// (fast) although the contender has no KCP cipher table (secure mode).
	kcpTuned bool
}

// tune gives a KCP session the driver's settings (fast); TCP and quic-go
// keep their defaults.
func (ct contender) tune(p peer) {
	if ct.kcp != nil || ct.kcpTuned {
		fast(p.(interop.Session))
	}
}

func kcpContender(impl interop.Impl) contender {
	return contender{
		name: impl.Name,
		kcp:  &impl,
		listen: func(c interop.Cipher, ds, ps int) (server, error) {
			l, err := impl.Listen("127.0.0.1:0", c, pass, ds, ps)
			if err != nil {
				return nil, err
			}
			l.SetReadBuffer(4 << 20)
			l.SetWriteBuffer(4 << 20)
			// Every client of the bench shares 127.0.0.1: lift kcpx's
			// session caps (kcp-go has none), so the 5,000-session idle
			// measure is not cut at the per-IP cap, and give its accept
			// backlog the kernel's TCP listen backlog here (somaxconn,
			// 4,096), which the TCP contender gets: a storm of openers
			// beyond 128 would otherwise wait on their retransmission
			// timers (kcp-go's backlog is fixed at 128).
			if g, ok := l.(interface {
				SetMaxSessions(int)
				SetMaxSessionsPerIP(int)
			}); ok {
				g.SetMaxSessions(0)
				g.SetMaxSessionsPerIP(0)
			}
			if g, ok := l.(interface{ SetAcceptBacklog(int) }); ok {
				g.SetAcceptBacklog(benchBacklog)
			}
			return kcpServer{l}, nil
		},
		dial: func(addr string, c interop.Cipher, ds, ps int) (peer, error) {
			return impl.Dial(addr, c, pass, ds, ps)
		},
		dialFrom: func(laddr net.IP, addr string) (peer, error) {
			raddr, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: laddr})
			if err != nil {
				return nil, err
			}
			null, _ := interop.CipherByName("null")
			var conv [4]byte
			rand.Read(conv[:])
			s, err := impl.NewConn(binary.LittleEndian.Uint32(conv[:]), raddr, null, pass, 0, 0, conn)
			if err != nil {
				conn.Close()
				return nil, err
			}
			return ownedConn{s, conn}, nil
		},
	}
}

// ownedConn is a session over a socket the driver opened: Close closes
// both.
type ownedConn struct {
	interop.Session
	conn net.PacketConn
}

func (o ownedConn) Close() error {
	err := o.Session.Close()
	o.conn.Close()
	return err
}

type kcpServer struct{ interop.Listener }

func (s kcpServer) acceptConn() (func() (peer, error), error) { return ready(s.AcceptSession()) }

// tcpContender is the kernel's TCP over 127.0.0.1 with Go's defaults:
// TCP_NODELAY on, socket buffers left to the kernel's autotuning.
var tcpContender = contender{
	name: "TCP",
	listen: func(interop.Cipher, int, int) (server, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return tcpServer{l}, nil
	},
	dial: func(addr string, _ interop.Cipher, _, _ int) (peer, error) {
		return net.Dial("tcp", addr)
	},
	dialFrom: func(laddr net.IP, addr string) (peer, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: laddr}}
		return d.Dial("tcp", addr)
	},
}

type tcpServer struct{ net.Listener }

func (s tcpServer) acceptConn() (func() (peer, error), error) { return ready(s.Accept()) }

// quicContender is quic-go: one bidirectional stream per connection, TLS 1.3
// with a self-signed ECDSA P-256 certificate made at start, and quic-go's
// default Config (nil): flow-control windows that start at 512 KiB per
// stream and grow to 6 MiB, GSO/GRO where the kernel has them.
var quicContender = contender{
	name: "quic-go",
	listen: func(interop.Cipher, int, int) (server, error) {
		srv, _ := tlsConfigs()
		l, err := quic.ListenAddr("127.0.0.1:0", srv, nil)
		if err != nil {
			return nil, err
		}
		return quicServer{l}, nil
	},
	dial: func(addr string, _ interop.Cipher, _, _ int) (peer, error) {
		_, cli := tlsConfigs()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := quic.DialAddr(ctx, addr, cli, nil)
		if err != nil {
			return nil, err
		}
		s, err := c.OpenStreamSync(ctx)
		if err != nil {
			c.CloseWithError(0, "")
			return nil, err
		}
		return quicPeer{s, c}, nil
	},
}

type quicServer struct{ *quic.Listener }

// acceptConn accepts the next connection; finish waits for its first
// stream, which the client opens by writing to it.
func (s quicServer) acceptConn() (func() (peer, error), error) {
	c, err := s.Accept(context.Background())
	if err != nil {
		return nil, err
	}
	return func() (peer, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := c.AcceptStream(ctx)
		if err != nil {
			c.CloseWithError(0, "")
			return nil, err
		}
		return quicPeer{st, c}, nil
	}, nil
}

// quicPeer is a stream whose Close ends its connection too.
type quicPeer struct {
	*quic.Stream
	c *quic.Conn
}

func (p quicPeer) Close() error {
	p.Stream.Close()
	return p.c.CloseWithError(0, "")
}

// tlsEnv carries the certificate and key to the many-sessions server
// process, so that the driver's clients can verify it.
// benchBacklog is the accept backlog the kcpx listeners get: the kernel's
// TCP listen backlog on this machine (net.core.somaxconn), which the TCP
// contender has.
const benchBacklog = 4096

const tlsEnv = "KCPX_BENCH_QUIC_CERT"

// tlsConfigs returns the quic-go server configuration (the certificate from
// tlsEnv, else a fresh self-signed one) and a client configuration that
// trusts only that certificate.
var tlsConfigs = sync.OnceValues(func() (*tls.Config, *tls.Config) {
	der, keyDER := certFromEnv()
	if der == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			fail("key: %v", err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "localhost"},
			DNSNames:     []string{"localhost"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
		}
		if der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key); err != nil {
			fail("certificate: %v", err)
		}
		if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			fail("key: %v", err)
		}
		os.Setenv(tlsEnv, base64.StdEncoding.EncodeToString(der)+"."+base64.StdEncoding.EncodeToString(keyDER))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		fail("certificate: %v", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		fail("key: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"kcpx-bench"},
		MinVersion:   tls.VersionTLS13,
	}
	cli := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"kcpx-bench"}, MinVersion: tls.VersionTLS13}
	return srv, cli
})

func certFromEnv() (cert, key []byte) {
	v := os.Getenv(tlsEnv)
	if v == "" {
		return nil, nil
	}
	c, k, ok := strings.Cut(v, ".")
	cert, err1 := base64.StdEncoding.DecodeString(c)
	key, err2 := base64.StdEncoding.DecodeString(k)
	if !ok || err1 != nil || err2 != nil {
		fail("bad %s", tlsEnv)
	}
	return cert, key
}

// contenders returns the -impls list in order.
func contenders(list string) []contender {
	all := []contender{kcpContender(interop.KCPX), kcpContender(interop.KCPGo), tcpContender, quicContender, secureContender}
	var out []contender
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		found := false
		for _, c := range all {
			if strings.EqualFold(c.name, f) || (f == "quic" && c.name == "quic-go") {
				out = append(out, c)
				found = true
			}
		}
		if !found {
			fail("-impls: unknown %q (kcpx, kcp-go, tcp, quic-go, kcpx-secure)", f)
		}
	}
	return out
}

// byName finds a contender for the -role of the many-sessions server.
func byName(name string) contender {
	for _, c := range contenders("kcpx,kcp-go,tcp,quic-go,kcpx-secure") {
		if c.name == name {
			return c
		}
	}
	fail("unknown role %q", name)
	panic("unreachable")
}

// kcpOnly keeps the KCP contenders, for the measures with a cipher or FEC.
func kcpOnly(cs []contender) []contender {
	var out []contender
	for _, c := range cs {
		if c.kcp != nil {
			out = append(out, c)
		}
	}
	return out
}

// secureContender is kcpx's secure mode (DialSecure, ListenSecure): a Noise
// IK handshake against the server's static key, which the client pins, and
// AES-256-GCM with counter nonces and a replay window per direction. Its
// sessions take the driver's KCP settings. It is kcpx to kcpx only, so it
// takes the plain measures, like TCP and quic-go.
var secureContender = contender{
	name:     "kcpx-secure",
	kcpTuned: true,
	listen: func(interop.Cipher, int, int) (server, error) {
		k := secureKeys()
		l, err := kcp.ListenSecure("127.0.0.1:0", &kcp.SecureConfig{PrivateKey: k.srvPriv, Cipher: kcp.SecureAES256GCM})
		if err != nil {
			return nil, err
		}
		l.SetReadBuffer(4 << 20)
		l.SetWriteBuffer(4 << 20)
		l.SetMaxSessions(0)
		l.SetMaxSessionsPerIP(0)
		l.SetAcceptBacklog(benchBacklog)
		return secureServer{l}, nil
	},
	dial: func(addr string, _ interop.Cipher, _, _ int) (peer, error) {
		k := secureKeys()
		return kcp.DialSecure(addr, &kcp.SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: kcp.SecureAES256GCM})
	},
}

type secureServer struct{ *kcp.Listener }

func (s secureServer) acceptConn() (func() (peer, error), error) {
	return ready(s.AcceptKCP())
}

// secureKeyEnv carries the secure-mode server key pair to the
// many-sessions server process.
const secureKeyEnv = "KCPX_BENCH_SECURE_KEYS"

// secureKeys returns the server's static key pair (from secureKeyEnv, else
// made now and put there) and a client key pair made in this process.
var secureKeys = sync.OnceValue(func() (k struct{ srvPriv, srvPub, cliPriv []byte }) {
	var err error
	if v := os.Getenv(secureKeyEnv); v != "" {
		a, b, ok := strings.Cut(v, ".")
		k.srvPriv, err = base64.StdEncoding.DecodeString(a)
		if err == nil {
			k.srvPub, err = base64.StdEncoding.DecodeString(b)
		}
		if !ok || err != nil {
			fail("bad %s", secureKeyEnv)
		}
	} else {
		if k.srvPriv, k.srvPub, err = kcp.GenerateSecureKey(); err != nil {
			fail("key: %v", err)
		}
		os.Setenv(secureKeyEnv, base64.StdEncoding.EncodeToString(k.srvPriv)+"."+base64.StdEncoding.EncodeToString(k.srvPub))
	}
	if k.cliPriv, _, err = kcp.GenerateSecureKey(); err != nil {
		fail("key: %v", err)
	}
	return k
})
