package kcp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// secureLoopCase is a client and listener configuration for loopback tests.
type secureLoopCase struct {
	name     string
	cli, srv func() *SecureConfig
}

func secureLoopCases() []secureLoopCase {
	k := secureTestKeys()
	return []secureLoopCase{
		{"IK", func() *SecureConfig { return &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub} },
			func() *SecureConfig { return &SecureConfig{PrivateKey: k.srvPriv} }},
		{"XX/aes", func() *SecureConfig {
			return &SecureConfig{PrivateKey: k.cliPriv, Cipher: SecureAES256GCM, VerifyPeer: func(pub []byte) error {
				if !bytes.Equal(pub, k.srvPub) {
					return errors.New("unexpected server")
				}
				return nil
			}}
		}, func() *SecureConfig { return &SecureConfig{PrivateKey: k.srvPriv} }},
		{"NNpsk0", func() *SecureConfig { return &SecureConfig{PresharedKey: testPSK} },
			func() *SecureConfig { return &SecureConfig{PresharedKey: testPSK} }},
	}
}

// securePair dials l in secure mode and accepts the session; the first byte
// written makes the listener create it.
func securePair(t testing.TB, l *Listener, cfg *SecureConfig, ds, ps int) (*UDPSession, *UDPSession) {
	t.Helper()
	cli, err := DialSecureWithOptions(l.Addr().String(), cfg, ds, ps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte{0x5a}); err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Time{})
	var one [1]byte
	if _, err := io.ReadFull(srv, one[:]); err != nil || one[0] != 0x5a {
		t.Fatalf("first byte: %v %x", err, one[0])
	}
	return cli, srv
}

// echoCheck sends n random bytes from a to b, which echoes them, and checks
// what comes back, byte for byte.
func echoCheck(t testing.TB, a, b *UDPSession, n int) {
	t.Helper()
	want := make([]byte, n)
	rand.Read(want)
	go func() {
		buf := make([]byte, 64<<10)
		for got := 0; got < n; {
			m, err := b.Read(buf)
			if err != nil {
				return
			}
			b.Write(buf[:m])
			got += m
		}
	}()
	go func() {
		for off := 0; off < n; off += 1000 {
			if _, err := a.Write(want[off:min(off+1000, n)]); err != nil {
				return
			}
		}
	}()
	a.SetReadDeadline(time.Now().Add(60 * time.Second))
	got := make([]byte, n)
	if _, err := io.ReadFull(a, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo: bytes differ")
	}
}

func tuneFast(ss ...*UDPSession) {
	for _, s := range ss {
		s.SetNoDelay(1, 10, 2, 1)
		s.SetWindowSize(256, 256)
	}
}

func TestSecureEcho(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	for _, tc := range secureLoopCases() {
		for _, fec := range []bool{false, true} {
			name := tc.name
			ds, ps := 0, 0
			if fec {
				name, ds, ps = name+"/fec10.3", 10, 3
			}
			t.Run(name, func(t *testing.T) {
				l, err := ListenSecureWithOptions("127.0.0.1:0", tc.srv(), ds, ps)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				cli, srv := securePair(t, l, tc.cli(), ds, ps)
				defer cli.Close()
				defer srv.Close()
				tuneFast(cli, srv)
				// Socket settings reach the real socket through the wrappers.
				if err := cli.SetDSCP(46); err != nil {
					t.Errorf("SetDSCP on a secure session: %v", err)
				}
				if err := l.SetDSCP(46); err != nil {
					t.Errorf("SetDSCP on a secure listener: %v", err)
				}
				if err := cli.SetReadBuffer(1 << 20); err != nil {
					t.Errorf("SetReadBuffer on a secure session: %v", err)
				}
				echoCheck(t, cli, srv, 256<<10)
				sc := l.conn.(*secureServerConn)
				if n := sc.stats.sessions.Load(); n != 1 {
					t.Errorf("%d secure sessions, want 1", n)
				}
			})
		}
	}
}

func TestSecureDialErrors(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Pinned key of another server: the listener stays silent.
	_, err = DialSecure(l.Addr().String(), &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.otherPub, HandshakeTimeout: 600 * time.Millisecond})
	var ne net.Error
	if !errors.Is(err, ErrHandshakeTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("wrong pinned key: %v, want ErrHandshakeTimeout (a timeout net.Error)", err)
	}
	// No pin and no VerifyPeer: refused after one round trip with the key.
	_, err = DialSecure(l.Addr().String(), &SecureConfig{PrivateKey: k.cliPriv})
	var pke *PeerKeyError
	if !errors.Is(err, ErrUnknownPeerKey) || !errors.As(err, &pke) || !bytes.Equal(pke.PublicKey, k.srvPub) {
		t.Errorf("unpinned key: %v, want a *PeerKeyError with ErrUnknownPeerKey", err)
	}
	if _, err := DialSecure(l.Addr().String(), &SecureConfig{}); !errors.Is(err, ErrInvalidSecureConfig) {
		t.Errorf("empty config: %v", err)
	}
	if n := l.conn.(*secureServerConn).stats.sessions.Load(); n != 0 {
		t.Errorf("%d sessions made by failed dials", n)
	}
}

// relay forwards datagrams between a client and a server address and records
// what the client sent.
type relay struct {
	conn   *net.UDPConn
	server netip.AddrPort
	mu     sync.Mutex
	client netip.AddrPort
	fromC  [][]byte
	done   chan struct{}
}

func newRelay(t testing.TB, server netip.AddrPort) *relay {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{conn: c, server: server, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			from = unmapAddrPort(from)
			r.mu.Lock()
			if from == r.server {
				dst := r.client
				r.mu.Unlock()
				c.WriteToUDPAddrPort(buf[:n], dst)
				continue
			}
			r.client = from
			r.fromC = append(r.fromC, bytes.Clone(buf[:n]))
			r.mu.Unlock()
			c.WriteToUDPAddrPort(buf[:n], r.server)
		}
	}()
	t.Cleanup(func() { c.Close(); <-r.done })
	return r
}

// TestSecureReplayListener captures a whole secure conversation and replays
// every client datagram, from a new socket, into the same listener and into a
// new listener with the same key: no session is created, no byte delivered.
func TestSecureReplayListener(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	k := secureTestKeys()
	srvCfg := &SecureConfig{PrivateKey: k.srvPriv}
	l, err := ListenSecure("127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := newRelay(t, l.Addr().(*net.UDPAddr).AddrPort())
	cli, err := DialSecure(r.conn.LocalAddr().String(), &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub})
	if err != nil {
		t.Fatal(err)
	}
	cli.Write([]byte{0x5a})
	l.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	io.ReadFull(srv, one[:])
	tuneFast(cli, srv)
	echoCheck(t, cli, srv, 64<<10)
	defer cli.Close()
	defer srv.Close()

	r.mu.Lock()
	captured := r.fromC
	r.mu.Unlock()
	l2, err := ListenSecure("127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	transport := 0
	for _, pkt := range captured {
		if pkt[0] == secData || pkt[0] == secControl {
			transport++
		}
	}
	sc1, sc2 := l.conn.(*secureServerConn), l2.conn.(*secureServerConn)
	before1 := sc1.stats.sessions.Load()
	replays1 := sc1.stats.replay.Load()
	// While the session is alive: every replayed transport packet fails the
	// replay window of the live session.
	for _, pkt := range captured {
		attacker.WriteTo(pkt, l.Addr())
	}
	waitFor(t, 10*time.Second, "replays processed", func() bool {
		return int(sc1.stats.replay.Load()-replays1) >= transport
	})
	srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := srv.Read(make([]byte, 64<<10)); err == nil {
		t.Errorf("replay delivered %d bytes to the live session", n)
	}
	// Nor did the replays, all from the attacker's address, draw a path
	// challenge or move the session.
	sc1.mu.RLock()
	for _, peer := range sc1.peers {
		peer.mu.Lock()
		if peer.challenge != 0 || peer.migrated != 0 || peer.path.proven != r.conn.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Errorf("replays from %v: %d challenges, %d migrations, proven %v", attacker.LocalAddr(), peer.challenge, peer.migrated, peer.path.proven)
		}
		peer.mu.Unlock()
	}
	sc1.mu.RUnlock()
	// Into a new listener with the same key: no keys match any index.
	for _, pkt := range captured {
		attacker.WriteTo(pkt, l2.Addr())
	}
	waitFor(t, 10*time.Second, "replays processed", func() bool {
		return int(sc2.stats.unknown.Load()+sc2.stats.auth.Load()) >= transport
	})
	if n := sc1.stats.sessions.Load() - before1; n != 0 {
		t.Errorf("replay made %d sessions on the same listener", n)
	}
	if n := sc2.stats.sessions.Load(); n != 0 {
		t.Errorf("replay made %d sessions on a new listener", n)
	}
	for _, target := range []*Listener{l, l2} {
		target.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if s, err := target.AcceptKCP(); err == nil {
			t.Errorf("replay produced an accepted session from %v", s.RemoteAddr())
		}
	}
	// Replayed initiations drew at most their own size in responses: the
	// attacker's socket saw no more bytes than it sent.
	sent, got := 0, 0
	for _, pkt := range captured {
		sent += 2 * len(pkt)
	}
	attacker.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 2048)
	for {
		n, err := attacker.Read(buf)
		if err != nil {
			break
		}
		got += n
	}
	if got > 3*sent {
		t.Errorf("amplification: %d bytes back for %d sent", got, sent)
	}
	t.Logf("%d datagrams replayed twice (%d transport); %d bytes came back for %d sent", len(captured), transport, got, sent)
}

// TestSecureMigration moves the client to a new port in the middle of a
// transfer: the session continues after the path challenge, no byte lost.
func TestSecureMigration(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, 0, 0)
	defer cli.Close()
	defer srv.Close()
	tuneFast(cli, srv)
	cc := cli.conn.(*secureClientConn)
	sc := l.conn.(*secureServerConn)
	oldPort := cc.LocalAddr().(*net.UDPAddr).Port
	echoCheck(t, cli, srv, 64<<10)
	if err := cc.rebind(); err != nil {
		t.Fatal(err)
	}
	echoCheck(t, cli, srv, 256<<10)
	sc.mu.RLock()
	var peer *securePeer
	for _, p := range sc.peers {
		peer = p
	}
	sc.mu.RUnlock()
	peer.mu.Lock()
	proven, migrated := peer.path.proven, peer.migrated
	peer.mu.Unlock()
	if migrated != 1 || int(proven.Port()) != cc.LocalAddr().(*net.UDPAddr).Port || int(proven.Port()) == oldPort {
		t.Fatalf("after the rebind: %d migrations, proven %v, client at %v", migrated, proven, cc.LocalAddr())
	}
	if srv.RemoteAddr().(*net.UDPAddr).Port != oldPort {
		t.Errorf("session's RemoteAddr changed to %v; it is the Listener's key", srv.RemoteAddr())
	}
}

// TestSecureRekeyTransfer: a transfer with a rekey every 16 packets loses
// nothing.
func TestSecureRekeyTransfer(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv, RekeyAfterPackets: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, RekeyAfterPackets: 16}, 0, 0)
	defer cli.Close()
	defer srv.Close()
	tuneFast(cli, srv)
	echoCheck(t, cli, srv, 4<<20)
	kp := cli.conn.(*secureClientConn).kp
	kp.sendMu.Lock()
	epochs := kp.sendEpoch
	kp.sendMu.Unlock()
	if epochs < 256 {
		t.Errorf("%d client epochs for 4 MiB, want at least 256 (past the epoch byte's wrap)", epochs)
	}
}

// TestSecureCookieAlways: with cookies always required, Dial still succeeds
// (one more round trip) and the listener sent exactly one cookie reply.
func TestSecureCookieAlways(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PresharedKey: testPSK, Cookie: CookieAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := securePair(t, l, &SecureConfig{PresharedKey: testPSK}, 0, 0)
	defer cli.Close()
	defer srv.Close()
	echoCheck(t, cli, srv, 16<<10)
	sc := l.conn.(*secureServerConn)
	if c, h := sc.stats.cookies.Load(), sc.stats.handshakes.Load(); c != 1 || h != 1 {
		t.Errorf("%d cookie replies, %d handshakes; want 1, 1", c, h)
	}
}

// TestSecureNetConn runs x/net's net.Conn conformance suite on secure
// sessions made by DialSecure and Accept.
func TestSecureNetConn(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	k := secureTestKeys()
	for _, stream := range []bool{false, true} {
		name := "message"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
				if err != nil {
					return nil, nil, nil, err
				}
				cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, 0, 0)
				tuneFast(cli, srv)
				cli.SetStreamMode(stream)
				srv.SetStreamMode(stream)
				return cli, srv, func() { closeBoth(cli, srv); l.Close() }, nil
			})
		})
	}
}

// TestSecureSpoofedInitiations: initiations from a source that never answers
// (as a spoofed one cannot) cost a listener that requires cookies one cookie
// reply each, no larger than the initiation, and no handshake state.
func TestSecureSpoofedInitiations(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv, Cookie: CookieAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sc := l.conn.(*secureServerConn)
	spoof, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	ini := newSecureInitiator(mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false))
	const n = 200
	sent := 0
	for i := 0; i < n; i++ {
		init, err := ini.initiation(uint32(i+1), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sent += len(init)
		spoof.WriteTo(init, l.Addr())
	}
	// A reply that finds the listener's control queue full is dropped and
	// counted (the client would retry): every initiation is accounted for.
	waitFor(t, 10*time.Second, "cookie replies", func() bool { return sc.stats.cookies.Load()+sc.ctl.drops.Load() == n })
	replies := int(sc.stats.cookies.Load())
	if replies < ctlSlotsListener && replies < n {
		t.Errorf("%d cookie replies for %d initiations: the control queue holds %d", replies, n, ctlSlotsListener)
	}
	sc.mu.RLock()
	pending, peers := len(sc.pending), len(sc.peers)
	sc.mu.RUnlock()
	if pending != 0 || peers != 0 || sc.stats.handshakes.Load() != 0 {
		t.Errorf("%d pending handshakes, %d peers, %d handshakes after spoofed initiations; want none", pending, peers, sc.stats.handshakes.Load())
	}
	got := 0
	buf := make([]byte, 2048)
	for i := 0; i < replies; i++ {
		spoof.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := spoof.Read(buf)
		if err != nil {
			t.Fatalf("cookie reply %d: %v", i, err)
		}
		got += m
	}
	if got > sent {
		t.Errorf("%d bytes of cookie replies for %d bytes of initiations", got, sent)
	}
}

// TestSecureIPv6: a secure session over [::1], and a dual-stack listener
// reached over IPv4 (its sources arrive IPv4-mapped and must be unmapped
// consistently for the handshake cookie, the peer table and the session).
func TestSecureIPv6(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	for _, tc := range []struct{ listen, dial string }{{"[::1]:0", "[::1]"}, {":0", "127.0.0.1"}} {
		l, err := ListenSecure(tc.listen, &SecureConfig{PrivateKey: k.srvPriv, Cookie: CookieAlways})
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.UDPAddr).Port
		cli, err := DialSecure(tc.dial+":"+strconv.Itoa(port), &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub})
		if err != nil {
			l.Close()
			t.Fatalf("%s: %v", tc.listen, err)
		}
		cli.Write([]byte{1})
		l.SetDeadline(time.Now().Add(10 * time.Second))
		srv, err := l.AcceptKCP()
		if err != nil {
			t.Fatal(err)
		}
		io.ReadFull(srv, make([]byte, 1))
		echoCheck(t, cli, srv, 32<<10)
		cli.Close()
		srv.Close()
		l.Close()
	}
}

// TestSecureClose: a forged close (right index, no keys) changes nothing; the
// client's authenticated close makes the listener drop the peer's keys.
func TestSecureClose(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, 0, 0)
	defer srv.Close()
	sc := l.conn.(*secureServerConn)
	cc := cli.conn.(*secureClientConn)
	peers := func() int {
		sc.mu.RLock()
		defer sc.mu.RUnlock()
		return len(sc.peers)
	}
	forged := make([]byte, secHeaderLen+3+secTagLen)
	putPrefix(forged, secControl, 0)
	binary.LittleEndian.PutUint32(forged[6:], cc.kp.remoteIndex)
	binary.LittleEndian.PutUint64(forged[10:], 1<<40)
	forged[secHeaderLen] = ctlClose
	auth := sc.stats.auth.Load()
	cc.sock.Load().WriteToUDPAddrPort(forged, l.Addr().(*net.UDPAddr).AddrPort())
	waitFor(t, 5*time.Second, "forged close rejected", func() bool { return sc.stats.auth.Load() > auth })
	if peers() != 1 {
		t.Fatal("a forged close removed the peer")
	}
	echoCheck(t, cli, srv, 8<<10)
	cli.SetLinger(0)
	cli.Close()
	waitFor(t, 10*time.Second, "peer forgotten after the client's close", func() bool { return peers() == 0 })
}

// TestSecureFirstPacketElsewhere: keys confirmed by a packet from another
// address than the initiation's (as a captured first packet raced ahead by an
// attacker would be) leave the initiation's source as the proven address; the
// other address only gets a challenge, and becomes the path once it answers.
func TestSecureFirstPacketElsewhere(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sc := l.conn.(*secureServerConn)
	server := l.Addr().(*net.UDPAddr).AddrPort()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	a, b := listen(), listen()
	ini := newSecureInitiator(mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false))
	init, _ := ini.initiation(77, time.Now())
	a.WriteToUDPAddrPort(init, server)
	buf := make([]byte, 2048)
	n, err := a.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	kp, _, err := ini.consumeResponse(buf[:n], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pkt, _ := kp.seal(make([]byte, 0, 64), secData, []byte("not kcp"), time.Now())
	b.WriteToUDPAddrPort(pkt, server)
	n, err = b.Read(buf)
	if err != nil {
		t.Fatalf("no challenge at the other address: %v", err)
	}
	typ, plain, err := kp.open(buf[:n], time.Now())
	if err != nil || typ != secControl || len(plain) != ctlPathLen || plain[0] != ctlPathChallenge {
		t.Fatalf("other address got type %d %x (%v), want a path challenge", typ, plain, err)
	}
	peerPath := func() (netip.AddrPort, int) {
		sc.mu.RLock()
		defer sc.mu.RUnlock()
		for _, p := range sc.peers {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.path.proven, p.migrated
		}
		return netip.AddrPort{}, -1
	}
	aAddr, bAddr := a.LocalAddr().(*net.UDPAddr).AddrPort(), b.LocalAddr().(*net.UDPAddr).AddrPort()
	if proven, _ := peerPath(); proven != aAddr {
		t.Fatalf("proven address %v, want the initiation's source %v", proven, aAddr)
	}
	answer, _ := pathResponse(plain)
	resp, _ := kp.seal(make([]byte, 0, 64), secControl, answer[:], time.Now())
	b.WriteToUDPAddrPort(resp, server)
	waitFor(t, 10*time.Second, "migration to the answering address", func() bool {
		proven, migrated := peerPath()
		return proven == bAddr && migrated == 1
	})
}
