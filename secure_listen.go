package kcp

// Secure mode over sockets, the listener side (secure_dial.go has the
// client and the costs common to both).
//
// Listener: ListenSecure ──▶ secureServerConn ──▶ serveConn. The conn is a
// datagramFilter (udp_filter.go): the listener's reader reads the socket in
// batches and calls filterIn, which handles handshakes inline (replies go
// into the conn's ctlQueue, which the listener's sender writes: the reader
// never writes), opens transport packets by receiver index,
// runs path validation, and returns KCP datagrams with the peer's virtual
// address: the address it had when the handshake completed, which stays the
// session's key in the Listener across migrations. The listener's sender
// calls filterOut, which seals for the peer at that virtual address and
// names its current proven address as the destination.
// secureServerConn.mu guards the tables; securePeer.mu its path.

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Listener-side bounds.
const (
	// securePeerIdle is how long a listener keeps a peer's keys after its
	// last authenticated packet.
	securePeerIdle = 3 * time.Minute
	// secSweepEvery is how often the listener expires handshakes and peers.
	secSweepEvery = time.Second
	// secMaxPeers bounds the peers (established key pairs) and handshakes a
	// listener holds together; beyond it, initiations are dropped until idle
	// peers expire. A peer costs about 1 KiB.
	secMaxPeers = 1 << 16
)

// ListenSecure listens on laddr ("host:port", network "udp") in secure mode
// (docs/SECURE.md), without FEC. See ListenSecureWithOptions.
func ListenSecure(laddr string, cfg *SecureConfig) (*Listener, error) {
	return ListenSecureWithOptions(laddr, cfg, 0, 0)
}

// ListenSecureWithOptions listens on laddr ("host:port", network "udp") in
// secure mode on a new socket the listener owns, with FEC for what its
// sessions send when dataShards and parityShards are above zero. Only
// clients that complete a handshake under cfg reach Accept; a session is
// created on the first authenticated datagram, never for a replayed one.
// Handshakes in flight are bounded by cfg.MaxPendingHandshakes, and cookies
// are required per cfg.Cookie. An accepted session's RemoteAddr is the
// client's address when the handshake completed; it stays so when the
// client migrates.
func ListenSecureWithOptions(laddr string, cfg *SecureConfig, dataShards, parityShards int) (*Listener, error) {
	p, err := newSecureParams(cfg, true)
	if err != nil {
		return nil, err
	}
	udpaddr, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", udpaddr)
	if err != nil {
		return nil, err
	}
	tuneOwnSocket(conn)
	return serveConn(nil, dataShards, parityShards, newSecureServerConn(conn, p), true), nil
}

// securePeer is one established secure session at a listener.
type securePeer struct {
	kp   *secureKeypair
	virt netip.AddrPort // the Listener's key for the session

	// dst is path.proven, for the per-datagram paths that only read it
	// (set under mu whenever path.proven changes); heard is when the last
	// authenticated packet came, in nanoseconds since the conn's born
	// (monotonic).
	dst   atomic.Pointer[netip.AddrPort]
	heard atomic.Int64

	mu        sync.Mutex // guards path
	path      securePath
	migrated  int // path switches, for tests
	challenge int // challenges sent, for tests
}

// setProven makes a the peer's proven address. peer.mu is held, or the
// peer is not shared yet.
func (p *securePeer) setProven(a netip.AddrPort) {
	p.path.proven = a
	p.dst.Store(&a)
}

// pendingSecure is a handshake a listener holds.
type pendingSecure struct {
	rh      *responderHandshake
	src     netip.AddrPort // where the initiation came from and the response went
	expires time.Time
}

// secureServerStats counts what a secure listener dropped or did.
type secureServerStats struct {
	malformed, auth, replay, unknown atomic.Uint64
	cookies, handshakes, sessions    atomic.Uint64
}

// secureServerConn is a listener's secure PacketConn. ReadFrom is called by
// the Listener's read goroutine only; WriteTo and Close are safe for
// concurrent use.
type secureServerConn struct {
	p    *secureParams
	resp *secureResponder
	sock *net.UDPConn
	rbuf []byte    // ReadFrom's
	born time.Time // the origin of securePeer.heard
	cbuf []byte    // the reader's cookie reply, before it is queued
	// plain is the reader's control plaintext (a challenge or a response)
	// on its way to seal: a local array would escape into the AEAD.
	plain [ctlPathLen]byte
	ctl   *ctlQueue
	stats secureServerStats

	mu        sync.RWMutex
	peers     map[uint32]*securePeer         // by local index
	byVirt    map[netip.AddrPort]*securePeer // by virtual address
	pending   map[uint32]*pendingSecure      // by local index; at most p.maxPending
	lastSweep time.Time

	// gen changes (under mu) whenever a peer leaves the tables; the
	// one-entry caches below are valid while it stays what they saw, so
	// a steady flow to one peer looks it up without taking mu.
	gen atomic.Uint64
	// The reader's last peer by index (filterIn's caller only).
	rdIndex uint32
	rdPeer  *securePeer
	rdGen   uint64
	// The sender's last peer by virtual address (filterOut's caller, the
	// drain token holder, only).
	wrVirt netip.AddrPort
	wrPeer *securePeer
	wrGen  uint64
}

func newSecureServerConn(sock *net.UDPConn, p *secureParams) *secureServerConn {
	return &secureServerConn{
		p:       p,
		resp:    newSecureResponder(p),
		sock:    sock,
		rbuf:    make([]byte, secBufLen),
		born:    time.Now(),
		cbuf:    make([]byte, 0, secCookieReplyLen),
		ctl:     newCtlQueue(ctlSlotsListener),
		peers:   make(map[uint32]*securePeer),
		byVirt:  make(map[netip.AddrPort]*securePeer),
		pending: make(map[uint32]*pendingSecure),
	}
}

// ReadFrom returns the next KCP datagram from an authenticated peer, with
// the peer's virtual address. Handshake packets are handled on the way. The
// Listener does not call it: the engine reads the socket itself and calls
// filterIn (udp_filter.go); this is the same decoder around one plain read.
func (s *secureServerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, src, err := s.sock.ReadFromUDPAddrPort(s.rbuf)
		if err != nil {
			if transientReadError(err) {
				continue
			}
			return 0, nil, err
		}
		data, from, ok := s.filterIn(s.rbuf[:n], unmapAddrPort(src), time.Now())
		s.ctl.flushPlain(s.sock)
		if ok {
			return copy(b, data), net.UDPAddrFromAddrPort(from), nil
		}
	}
}

// filterSocket returns the listener's socket (datagramFilter).
func (s *secureServerConn) filterSocket() *net.UDPConn { return s.sock }

// filterErr returns err: the listener has no failure of its own
// (datagramFilter).
func (s *secureServerConn) filterErr(err error) error { return err }

// filterCtl returns the listener's control replies (datagramFilter).
func (s *secureServerConn) filterCtl() *ctlQueue { return s.ctl }

// filterIn handles a datagram from src (datagramFilter): handshake packets
// are answered here; a transport packet is opened in place by receiver
// index, and a KCP datagram is returned with the peer's virtual address.
func (s *secureServerConn) filterIn(pkt []byte, src netip.AddrPort, now time.Time) ([]byte, netip.AddrPort, bool) {
	typ, _, ok := checkPrefix(pkt)
	if !ok {
		s.stats.malformed.Add(1)
		return nil, netip.AddrPort{}, false
	}
	switch typ {
	case secInitiation:
		s.handleInitiation(pkt, src, now)
	case secFinish:
		s.handleFinish(pkt, src, now)
	case secData, secControl:
		if data, peer := s.handleTransport(pkt, src, now); peer != nil {
			return data, peer.virt, true
		}
	default:
		s.stats.malformed.Add(1)
	}
	return nil, netip.AddrPort{}, false
}

// filterOut seals p for the peer whose virtual address is to and returns it
// with the peer's proven address (datagramFilter). A datagram for an unknown
// or forgotten peer is dropped (KCP retransmits or the session ends).
func (s *secureServerConn) filterOut(buf, p []byte, to netip.AddrPort, now time.Time) ([]byte, netip.AddrPort, bool, error) {
	g := s.gen.Load()
	peer := s.wrPeer
	if peer == nil || s.wrVirt != to || s.wrGen != g {
		s.mu.RLock()
		peer = s.byVirt[to]
		s.mu.RUnlock()
		s.wrVirt, s.wrPeer, s.wrGen = to, peer, g
	}
	return s.sealFor(peer, buf, p, now)
}

// sealFor seals p as a KCP datagram for peer into buf and returns it with
// the peer's proven address; a nil peer drops p.
func (s *secureServerConn) sealFor(peer *securePeer, buf, p []byte, now time.Time) ([]byte, netip.AddrPort, bool, error) {
	if peer == nil {
		return nil, netip.AddrPort{}, false, nil
	}
	dst := *peer.dst.Load()
	pkt, err := peer.kp.seal(buf[:0], secData, p, now)
	if err != nil {
		return nil, netip.AddrPort{}, false, err
	}
	return pkt, dst, true, nil
}

// countErr counts a rejected packet by cause.
func (s *secureServerConn) countErr(err error) {
	switch {
	case errors.Is(err, ErrReplay):
		s.stats.replay.Add(1)
	case errors.Is(err, ErrSecureMalformed):
		s.stats.malformed.Add(1)
	default:
		s.stats.auth.Add(1)
	}
}

// sweepLocked expires handshakes and idle peers, at most once per
// secSweepEvery. s.mu is held for writing.
func (s *secureServerConn) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < secSweepEvery {
		return
	}
	s.lastSweep = now
	for i, ph := range s.pending {
		if now.After(ph.expires) {
			delete(s.pending, i)
		}
	}
	for i, peer := range s.peers {
		if int64(now.Sub(s.born))-peer.heard.Load() > int64(securePeerIdle) {
			s.forgetLocked(i, peer)
		}
	}
}

// forgetLocked drops a peer's keys. s.mu is held for writing.
func (s *secureServerConn) forgetLocked(index uint32, peer *securePeer) {
	s.gen.Add(1)
	delete(s.peers, index)
	if s.byVirt[peer.virt] == peer {
		delete(s.byVirt, peer.virt)
	}
}

// newIndexLocked draws an index used by no peer and no handshake.
func (s *secureServerConn) newIndexLocked() uint32 {
	for {
		i := randomIndex()
		if s.peers[i] == nil && s.pending[i] == nil {
			return i
		}
	}
}

func (s *secureServerConn) handleInitiation(pkt []byte, src netip.AddrPort, now time.Time) {
	if int(s.ctl.queued.Load()) >= s.ctl.slots() {
		// No room for an answer: spend nothing on the initiation (a flood
		// filled the ring; the client, if real, sends it again).
		s.ctl.drops.Add(1)
		return
	}
	s.mu.Lock()
	s.sweepLocked(now)
	npending, full := len(s.pending), len(s.peers)+len(s.pending) >= secMaxPeers
	index := s.newIndexLocked()
	s.mu.Unlock()
	if full {
		s.stats.unknown.Add(1)
		return
	}
	reply, rh, err := s.resp.handleInitiationBuf(s.cbuf, pkt, src, index, npending, now)
	if err != nil {
		s.countErr(err)
		return
	}
	if reply == nil {
		return
	}
	if !s.ctl.put(reply, src) {
		// No room for the reply: hold nothing for it either; the client
		// sends its initiation again.
		return
	}
	if rh == nil {
		if reply[0] == secCookie {
			s.stats.cookies.Add(1)
		}
		return
	}
	s.stats.handshakes.Add(1)
	s.mu.Lock()
	s.pending[index] = &pendingSecure{rh: rh, src: src, expires: now.Add(s.p.hsTimeout)}
	s.mu.Unlock()
}

func (s *secureServerConn) handleFinish(pkt []byte, src netip.AddrPort, now time.Time) {
	if len(pkt) < secPrefixLen+4 {
		s.stats.malformed.Add(1)
		return
	}
	index := binary.LittleEndian.Uint32(pkt[6:])
	s.mu.RLock()
	ph, peer := s.pending[index], s.peers[index]
	s.mu.RUnlock()
	if peer != nil { // our confirmation was lost: confirm again, on the proven path
		s.sendTo(peer, secData, nil, src, false, now)
		return
	}
	if ph == nil || ph.rh.hs == nil {
		s.stats.unknown.Add(1)
		return
	}
	kp, err := ph.rh.consumeFinish(s.p, pkt, now)
	if err != nil {
		s.countErr(err)
		if ph.rh.hs == nil { // the handshake is spent
			s.mu.Lock()
			delete(s.pending, index)
			s.mu.Unlock()
		}
		return
	}
	// The finish proves the client received our response at the
	// initiation's source; a finish from elsewhere is validated like any
	// other new path once transport packets come from there.
	peer = s.promote(index, kp, ph.src, now)
	s.sendTo(peer, secData, nil, ph.src, true, now)
}

// promote makes a completed handshake a peer whose proven and virtual
// address is src, the initiation's source: the client proved it receives
// there by using our response. A peer that had that virtual address is
// dropped: the client at that address started over.
func (s *secureServerConn) promote(index uint32, kp *secureKeypair, src netip.AddrPort, now time.Time) *securePeer {
	peer := &securePeer{kp: kp, virt: src}
	peer.heard.Store(int64(now.Sub(s.born)))
	peer.setProven(src)
	s.mu.Lock()
	delete(s.pending, index)
	if old := s.byVirt[src]; old != nil {
		s.forgetLocked(old.kp.localIndex, old)
	}
	s.peers[index] = peer
	s.byVirt[src] = peer
	s.mu.Unlock()
	s.stats.sessions.Add(1)
	return peer
}

// handleTransport opens a data or control packet in place. For a KCP
// datagram it returns the plaintext and the peer; otherwise a nil peer.
func (s *secureServerConn) handleTransport(pkt []byte, src netip.AddrPort, now time.Time) ([]byte, *securePeer) {
	wire := len(pkt)
	_, _, index, _, ok := parseTransport(pkt)
	if !ok {
		s.stats.malformed.Add(1)
		return nil, nil
	}
	var kp *secureKeypair
	var ph *pendingSecure
	g := s.gen.Load()
	peer := s.rdPeer
	if peer != nil && s.rdIndex == index && s.rdGen == g {
		kp = peer.kp
	} else {
		s.mu.RLock()
		peer = s.peers[index]
		if peer != nil {
			kp = peer.kp
		} else if ph = s.pending[index]; ph != nil {
			kp = ph.rh.keys // nil while an XX handshake waits for its finish
		}
		s.mu.RUnlock()
		if peer != nil {
			s.rdIndex, s.rdPeer, s.rdGen = index, peer, g
		}
	}
	if kp == nil {
		s.stats.unknown.Add(1)
		return nil, nil
	}
	typ, plain, err := kp.open(pkt, now)
	if err != nil {
		s.countErr(err)
		return nil, nil
	}
	if peer == nil { // the first packet under these keys confirms them
		peer = s.promote(index, kp, ph.src, now)
	}
	peer.heard.Store(int64(now.Sub(s.born)))
	if src != *peer.dst.Load() { // from elsewhere than the proven path
		peer.mu.Lock()
		challenge, due := peer.path.authenticated(src, wire, now)
		peer.mu.Unlock()
		if due && s.sendTo(peer, secControl, s.plainOf(challenge), src, false, now) {
			peer.mu.Lock()
			peer.challenge++
			peer.mu.Unlock()
		}
	}
	if typ == secData {
		if len(plain) == 0 { // keepalive: answer it
			s.sendTo(peer, secData, nil, src, false, now)
			return nil, nil
		}
		return plain, peer
	}
	switch {
	case len(plain) == 0:
	case plain[0] == ctlPathResponse:
		peer.mu.Lock()
		if peer.path.responded(src, plain[1:]) {
			peer.setProven(peer.path.proven)
			peer.migrated++
		}
		peer.mu.Unlock()
	case plain[0] == ctlPathChallenge:
		if resp, ok := pathResponse(plain); ok {
			s.sendTo(peer, secControl, s.plainOf(resp), src, false, now)
		}
	case plain[0] == ctlClose:
		s.mu.Lock()
		if s.peers[index] == peer {
			s.forgetLocked(index, peer)
		}
		s.mu.Unlock()
	}
	return nil, nil
}

// plainOf copies a control plaintext into the reader's buffer.
func (s *secureServerConn) plainOf(b [ctlPathLen]byte) []byte {
	s.plain = b
	return s.plain[:]
}

// sendTo seals payload for peer into a slot of the control queue, for the
// listener's sender to write to dst, within dst's amplification budget
// unless proven says the caller knows dst answered. It reports whether the
// packet was queued; the budget is charged only then.
func (s *secureServerConn) sendTo(peer *securePeer, typ byte, payload []byte, dst netip.AddrPort, proven bool, now time.Time) bool {
	buf := s.ctl.begin()
	if buf == nil {
		return false
	}
	if !proven {
		peer.mu.Lock()
		ok := peer.path.allowSend(dst, len(payload)+SecureOverhead)
		peer.mu.Unlock()
		if !ok {
			s.ctl.abort()
			return false
		}
	}
	pkt, err := peer.kp.seal(buf, typ, payload, now)
	if err != nil {
		s.ctl.abort()
		return false
	}
	s.ctl.commit(len(pkt), dst)
	return true
}

// WriteTo seals p for the peer whose virtual address is addr and sends it to
// the peer's proven address. A datagram for an unknown or forgotten peer is
// dropped (KCP retransmits or the session ends). Sessions do not call it:
// the engine seals through filterOut and writes in batches.
func (s *secureServerConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p)+SecureOverhead > secBufLen {
		return 0, errSecureTooLarge
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errInvalidOperation
	}
	s.mu.RLock()
	peer := s.byVirt[unmapAddrPort(ua.AddrPort())]
	s.mu.RUnlock()
	bp := secBufPool.Get().(*[]byte)
	defer secBufPool.Put(bp)
	pkt, dst, ok, err := s.sealFor(peer, (*bp)[:0], p, time.Now())
	if err != nil {
		return 0, err
	}
	if ok {
		if _, err := s.sock.WriteToUDPAddrPort(pkt, dst); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close closes the socket.
func (s *secureServerConn) Close() error { return s.sock.Close() }

// LocalAddr returns the socket's address.
func (s *secureServerConn) LocalAddr() net.Addr { return s.sock.LocalAddr() }

// SetDeadline sets the socket's deadlines.
func (s *secureServerConn) SetDeadline(t time.Time) error { return s.sock.SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline.
func (s *secureServerConn) SetReadDeadline(t time.Time) error { return s.sock.SetReadDeadline(t) }

// SetWriteDeadline sets the socket's write deadline.
func (s *secureServerConn) SetWriteDeadline(t time.Time) error { return s.sock.SetWriteDeadline(t) }

// SetReadBuffer sets the socket's receive buffer in bytes.
func (s *secureServerConn) SetReadBuffer(n int) error { return s.sock.SetReadBuffer(n) }

// SetWriteBuffer sets the socket's send buffer in bytes.
func (s *secureServerConn) SetWriteBuffer(n int) error { return s.sock.SetWriteBuffer(n) }

// SetDSCP sets the socket's DSCP (0..63) for IPv4 and IPv6.
func (s *secureServerConn) SetDSCP(dscp int) error { return setDSCP(s.sock, dscp) }
