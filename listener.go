package kcp

// How a datagram crosses the listener.
//
// One goroutine (readLoop) owns each socket's receive side (a listener may
// read its port with one socket per core, listener_lanes.go):
//
//	packetReader ──▶ packetCrypter.open (failure: counted as InCsumErrors,
//	dropped; no session is created or touched) ──Listener.mu──▶ look the
//	source up (netip.AddrPort key; addr.String() only for PacketConns whose
//	addresses are not UDP) ──▶ [unknown source with an opener that
//	listener_guard.go admits: create the session, queue it for Accept]
//	[AEAD only, unknown source: a live session's conv draws a path challenge,
//	a path response that echoes one moves the session (listener_rebind.go)]
//	──▶ release Listener.mu ──▶ UDPSession.input (takes the session's mu).
//
// Lookup and creation happen under one lock, so one source never gets two
// sessions. The read loop never writes: the sessions' output goes through
// the listener's one sendQueue (udp_tx.go), which batches datagrams of
// several sessions into one sendmmsg. Accept takes sessions from the
// pending queue; one not accepted within defaultPendingTTL is closed and
// forgotten by its own update. Close closes every session, lets the
// sendQueue write their last datagrams, then stops the read loop and waits
// for it.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"
)

const (
	// acceptBacklog is the default cap on the sessions created but not yet
	// accepted (SetAcceptBacklog); a new source beyond it is ignored until
	// Accept makes room.
	acceptBacklog = 128

	// defaultPendingTTL is how long a session may wait for Accept before it
	// is closed and forgotten.
	defaultPendingTTL = 5 * time.Second

	// badFlush is how many rejected datagrams the read loop counts before
	// it publishes them.
	badFlush = 64

	// tombstoneTTL is how long the listener remembers a conversation it
	// forgot (source and conv), so that its late datagrams (retransmissions,
	// ACKs, window reports of a peer that has not noticed the end) create no
	// new session. maxTombstones bounds that memory.
	tombstoneTTL  = 60 * time.Second
	maxTombstones = 8192
)

// tombKey names a conversation the listener forgot.
type tombKey struct {
	ap   netip.AddrPort
	key  string // sources that are not UDP addresses
	conv uint32
}

// Listener accepts KCP sessions arriving on one PacketConn, told apart by
// their source address. All methods are safe for concurrent use.
type Listener struct {
	// Set at construction, then only read.
	conn                     net.PacketConn
	ownConn                  bool
	crypt                    *packetCrypter
	dataShards, parityShards int
	rx                       *packetReader // the socket's reader, used by readLoop (nil for a pushing conn)
	pusher                   PacketPusher  // the conn, when it pushes datagrams (udp_push.go)
	sq                       *sendQueue    // the socket's sender, shared by the sessions
	pendingTTL               time.Duration // defaultPendingTTL; tests shorten it
	statsGap                 func()        // tests: run by Stats between reading the counters and the sessions
	rd                       deadline      // Accept deadline
	chAccept                 chan struct{} // capacity 1: pending may be non-empty
	die                      chan struct{} // closed by Close
	loopDone                 chan struct{} // closed when readLoop returns
	closeOnce                sync.Once
	// lanes are the listener's sockets, each with its reader and sender;
	// lanes[0] is conn, rx, sq and loopDone. More than one only from
	// ListenWithOptions on Linux (listener_lanes.go).
	lanes []*listenerLane
	laneN laneStats

	bad   Snmp          // rejected datagrams not yet published; guard.badMu
	guard listenerGuard // admission: caps, replay cache, rejection counters (listener_guard.go)
	paths rebindStats   // NAT rebinding counters (listener_rebind.go)

	mu       sync.Mutex // guards the fields below
	sessions map[netip.AddrPort]*UDPSession
	others   map[string]*UDPSession   // sources that are not UDP addresses
	pending  []*UDPSession            // created, not yet accepted, oldest first
	tombs    map[tombKey]time.Time    // forgotten conversations, until their expiry
	convs    map[uint32][]*UDPSession // UDP sessions by conv, AEAD ciphers only (listener_rebind.go)
	closed   bool
	readErr  error
}

// Listen listens on laddr ("host:port", network "udp") without a cipher and
// without FEC.
func Listen(laddr string) (net.Listener, error) {
	l, err := ListenWithOptions(laddr, nil, 0, 0)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenWithOptions listens on laddr ("host:port", network "udp") on a new
// socket the listener owns. block seals every datagram (nil: none; the peer
// must use the same); dataShards and parityShards above zero turn FEC on for
// what the listener's sessions send (either at zero: FEC off, as in kcp-go;
// a negative count or more than 255 shards together is an error). Incoming
// FEC is decoded whatever the local setting.
func ListenWithOptions(laddr string, block BlockCrypt, dataShards, parityShards int) (*Listener, error) {
	if err := checkFECShards(dataShards, parityShards); err != nil {
		return nil, err
	}
	udpaddr, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		return nil, err
	}
	conns, err := listenLanes(udpaddr)
	if err != nil {
		return nil, err
	}
	pcs := make([]net.PacketConn, len(conns))
	for i, c := range conns {
		tuneOwnSocket(c)
		pcs[i] = c
	}
	return serveConns(block, dataShards, parityShards, pcs, true), nil
}

// ServeConn serves KCP on conn, which stays the caller's: Listener.Close
// stops using it (by setting a read deadline in the past to wake the read
// loop) but does not close it. FEC shard counts are checked as
// ListenWithOptions checks them. A conn whose SetReadDeadline fails keeps the
// read goroutine until the caller closes it.
func ServeConn(block BlockCrypt, dataShards, parityShards int, conn net.PacketConn) (*Listener, error) {
	if conn == nil {
		return nil, errInvalidOperation
	}
	if err := checkFECShards(dataShards, parityShards); err != nil {
		return nil, err
	}
	return serveConn(block, dataShards, parityShards, conn, false), nil
}

func serveConn(block BlockCrypt, dataShards, parityShards int, conn net.PacketConn, ownConn bool) *Listener {
	return serveConns(block, dataShards, parityShards, []net.PacketConn{conn}, ownConn)
}

// serveConns serves KCP on conns, one lane each (listener_lanes.go); the
// first is the listener's conn. Only a single conn may be a PacketPusher.
func serveConns(block BlockCrypt, dataShards, parityShards int, conns []net.PacketConn, ownConn bool) *Listener {
	l := &Listener{
		conn:         conns[0],
		ownConn:      ownConn,
		crypt:        newPacketCrypter(block),
		dataShards:   dataShards,
		parityShards: parityShards,
		pendingTTL:   defaultPendingTTL,
		rd:           newDeadline(),
		chAccept:     make(chan struct{}, 1),
		die:          make(chan struct{}),
		sessions:     make(map[netip.AddrPort]*UDPSession),
		others:       make(map[string]*UDPSession),
	}
	l.guard.init()
	for _, c := range conns {
		l.lanes = append(l.lanes, &listenerLane{
			conn:     c,
			sq:       newSendQueue(newPacketWriter(c)),
			loopDone: make(chan struct{}),
		})
	}
	l.sq, l.loopDone = l.lanes[0].sq, l.lanes[0].loopDone
	if pp, ok := conns[0].(PacketPusher); ok && len(conns) == 1 {
		l.startPushed(pp) // udp_push.go: no read goroutine
		return l
	}
	for _, ln := range l.lanes {
		ln.rx = newPacketReader(ln.conn)
	}
	l.rx = l.lanes[0].rx
	for _, ln := range l.lanes {
		go l.readLoop(ln)
	}
	return l
}

func (l *Listener) readLoop(ln *listenerLane) {
	defer close(ln.loopDone)
	r := ln.rx
	err := r.read(func(data []byte, ap netip.AddrPort, addr net.Addr) { l.handleOn(ln, data, ap, addr) })
	if !l.ownConn {
		r.release() // leave the caller's socket as we found it (GRO off)
	}
	l.publishBad()
	l.mu.Lock()
	if !l.closed && l.readErr == nil {
		l.readErr = opError("read", ln.conn, nil, err)
	}
	l.mu.Unlock()
	notify(l.chAccept)
}

// handle takes one datagram of the first lane (a pushing conn's callback).
func (l *Listener) handle(data []byte, ap netip.AddrPort, addr net.Addr) {
	l.handleOn(l.lanes[0], data, ap, addr)
}

// handleOn takes one datagram from lane ln's read loop. Who may create a
// session is decided in listener_guard.go (admitLocked); a new session
// sends through ln.
func (l *Listener) handleOn(ln *listenerLane, data []byte, ap netip.AddrPort, addr net.Addr) {
	wireLen := len(data)
	p, err := l.crypt.open(data)
	if err != nil {
		l.countBad(wireLen, rejectCorrupt)
		return
	}
	var key string
	if ap.IsValid() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	} else if addr != nil {
		key = addr.String()
	} else {
		return
	}
	// An opener is a conversation's first datagram: a PUSH with sn 0, or a
	// window probe (a kcpx client asking for our window before its first
	// message, sess_peerwnd.go), from a peer that has received nothing yet
	// (una 0). Late datagrams of a finished conversation carry ACKs, a una
	// above 0 or a later sn.
	conv, sn, una, cmd, ok := firstSegment(p)
	opener := ok && una == 0 && ((cmd == IKCP_CMD_PUSH && sn == 0) || cmd == IKCP_CMD_WASK)
	nonce, haveNonce := l.openerNonce(data)

	l.mu.Lock()
	s := l.lookup(ap, key)
	if s != nil {
		if ok && conv != s.conv {
			// Another conversation from a live session's source: a restarted
			// client or a replay, which nothing here can tell apart. The live
			// session stays and hears nothing of it (listener_guard.go).
			l.mu.Unlock()
			l.countBad(wireLen, rejectNotOpener)
			return
		}
		if opener && haveNonce {
			// A retransmitted opener: its nonce must not open a session
			// elsewhere either.
			l.guard.replay.add(nonce, time.Now())
		}
		l.mu.Unlock()
		if s.sq != ln.sq {
			l.laneN.crossLane.Add(1)
		}
		s.input(p, wireLen)
		return
	}
	if !opener && key == "" && l.crypt.aead != nil && l.rebindLocked(p, wireLen, ap, conv, ok) {
		return // a path response, or a live conv from a new address (listener_rebind.go)
	}
	reason := rejectNotOpener
	if opener && !l.closed {
		now := time.Now()
		if reason = l.admitLocked(ap, key, conv, nonce, haveNonce, now); reason == rejectReasons {
			l.admittedLocked(ap, key, nonce, haveNonce, now)
		}
	}
	if reason != rejectReasons {
		l.mu.Unlock()
		l.countBad(wireLen, reason)
		return
	}
	var remote net.Addr
	if key == "" {
		remote = net.UDPAddrFromAddrPort(ap)
	} else {
		remote = addr
	}
	s = newUDPSession(conv, l.dataShards, l.parityShards, l, ln.conn, false, remote, l.crypt, ln.sq)
	if key == "" {
		l.sessions[ap] = s
		s.lkey = ap
		l.indexConvLocked(s)
	} else {
		l.others[key] = s
	}
	l.pending = append(l.pending, s)
	notify(l.chAccept)
	l.mu.Unlock()
	s.input(p, wireLen)
}

// firstSegment reads the conv, sn, una and cmd of the first KCP segment an opened
// datagram carries, raw or as FEC data. Parity, OOB, close signals and
// anything that is not a plausible segment report ok false.
func firstSegment(p []byte) (conv, sn, una uint32, cmd byte, ok bool) {
	if len(p) >= 6 {
		switch binary.LittleEndian.Uint16(p[4:]) {
		case typeData:
			kb, good := fecDataPayload(p)
			if !good {
				return 0, 0, 0, 0, false
			}
			p = kb
		case typeParity, typeOOB, typeClose, typePath:
			return 0, 0, 0, 0, false
		}
	}
	if len(p) < IKCP_OVERHEAD {
		return 0, 0, 0, 0, false
	}
	cmd = p[4]
	if cmd < IKCP_CMD_PUSH || cmd > IKCP_CMD_WINS {
		return 0, 0, 0, 0, false
	}
	return binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[IKCP_SN_OFFSET:]),
		binary.LittleEndian.Uint32(p[16:]), cmd, true
}

func (l *Listener) lookup(ap netip.AddrPort, key string) *UDPSession {
	if key == "" {
		return l.sessions[ap]
	}
	return l.others[key]
}

// forget drops a released session from the maps and the pending queue.
func (l *Listener) forget(s *UDPSession) {
	l.mu.Lock()
	l.forgetLocked(s)
	l.mu.Unlock()
}

func (l *Listener) forgetLocked(s *UDPSession) {
	if s.lkey.IsValid() {
		if l.sessions[s.lkey] == s {
			l.guardForgetLocked(s)
			l.unindexConvLocked(s)
			delete(l.sessions, s.lkey)
			l.buryLocked(tombKey{ap: s.lkey, conv: s.conv})
		}
	} else if l.others[s.remoteS] == s {
		delete(l.others, s.remoteS)
		l.buryLocked(tombKey{key: s.remoteS, conv: s.conv})
	}
	for i, p := range l.pending {
		if p == s {
			l.pending = append(l.pending[:i], l.pending[i+1:]...)
			l.pending = l.pending[:len(l.pending):cap(l.pending)]
			break
		}
	}
}

// buryLocked remembers a forgotten conversation for tombstoneTTL. When the
// table is full it first drops expired entries, then, if none expired, the
// whole table: the cap bounds memory, and what it costs is at worst a ghost
// session that expires unaccepted.
func (l *Listener) buryLocked(k tombKey) {
	now := time.Now()
	if len(l.tombs) >= maxTombstones {
		for t, exp := range l.tombs {
			if now.After(exp) {
				delete(l.tombs, t)
			}
		}
		if len(l.tombs) >= maxTombstones {
			clear(l.tombs)
		}
	}
	if l.tombs == nil {
		l.tombs = make(map[tombKey]time.Time)
	}
	l.tombs[k] = now.Add(tombstoneTTL)
}

// tombstonedLocked reports whether k names a conversation forgotten less
// than tombstoneTTL ago.
func (l *Listener) tombstonedLocked(k tombKey) bool {
	exp, ok := l.tombs[k]
	if !ok {
		return false
	}
	if time.Now().After(exp) {
		delete(l.tombs, k)
		return false
	}
	return true
}

// expire takes a session nobody accepted out of the listener; it reports
// false when Accept took it first.
func (l *Listener) expire(s *UDPSession) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.accepted.Load() {
		return false
	}
	l.forgetLocked(s)
	return true
}

// Accept waits for the next session and returns it as a net.Conn.
func (l *Listener) Accept() (net.Conn, error) {
	s, err := l.AcceptKCP()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// AcceptKCP waits for the next session. It returns os.ErrDeadlineExceeded
// (a net.Error with Timeout true) once the deadline set with SetDeadline or
// SetReadDeadline passes, including a deadline changed while it waits, an
// error matching net.ErrClosed and io.ErrClosedPipe after Close, and the
// socket's *net.OpError if reading the socket failed.
func (l *Listener) AcceptKCP() (*UDPSession, error) {
	if l.rd.expired() {
		return nil, errTimeout
	}
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, errClosed
		}
		if len(l.pending) > 0 {
			s := l.pending[0]
			n := copy(l.pending, l.pending[1:])
			l.pending[n] = nil
			l.pending = l.pending[:n]
			s.accepted.Store(true)
			l.mu.Unlock()
			if n > 0 {
				notify(l.chAccept)
			}
			return s, nil
		}
		if err := l.readErr; err != nil {
			l.mu.Unlock()
			notify(l.chAccept)
			return nil, err
		}
		l.mu.Unlock()

		select {
		case <-l.chAccept:
		case <-l.rd.wait():
			return nil, errTimeout
		case <-l.die:
			return nil, errClosed
		}
	}
}

// SetDeadline sets the Accept deadline; a zero time clears it, a time in the
// past makes Accept fail at once, and a change wakes a waiting Accept.
func (l *Listener) SetDeadline(t time.Time) error {
	l.rd.set(t)
	return nil
}

// SetReadDeadline is SetDeadline: the only read a Listener does is Accept.
func (l *Listener) SetReadDeadline(t time.Time) error {
	l.rd.set(t)
	return nil
}

// SetWriteDeadline does not apply to a Listener and returns an error, as in
// kcp-go. Set write deadlines on the sessions.
func (l *Listener) SetWriteDeadline(t time.Time) error { return errInvalidOperation }

// SetDSCP sets the DSCP field of every datagram the listener's sessions
// send (IPv4 TOS and IPv6 traffic class = dscp<<2), through the conn's own
// SetDSCP(int) error when it has one.
func (l *Listener) SetDSCP(dscp int) error {
	return l.eachConn(func(c net.PacketConn) error { return setDSCP(c, dscp) })
}

// SetReadBuffer sets the socket receive buffer in bytes, when the conn
// supports it; for a listener with several sockets (listener_lanes.go),
// of each.
func (l *Listener) SetReadBuffer(bytes int) error {
	return l.eachConn(func(c net.PacketConn) error { return setReadBuffer(c, bytes) })
}

// SetWriteBuffer sets the socket send buffer in bytes, when the conn
// supports it; for a listener with several sockets, of each.
func (l *Listener) SetWriteBuffer(bytes int) error {
	return l.eachConn(func(c net.PacketConn) error { return setWriteBuffer(c, bytes) })
}

// Control calls f with the underlying PacketConn and returns its error.
// Changing its deadlines or closing it stops the listener. A listener that
// ListenWithOptions opened on Linux with several cores reads its port with
// one socket per core (SO_REUSEPORT), each serving the flows the kernel
// hashes to it: f is called with each of them in turn, so that a socket
// option it sets (a mark, a priority, a filter) covers every flow, and
// Control returns the first error.
func (l *Listener) Control(f func(conn net.PacketConn) error) error { return l.eachConn(f) }

// Addr returns the local address of the underlying PacketConn.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// Close stops the listener: every session it created is closed at once
// (accepted or not, lingering in a session's Close or not: a FIN is sent
// for each, naming what was sent; queued data is dropped), the socket is
// closed if the listener opened it, and the read goroutine has ended when
// Close returns. It does not linger: to deliver what sessions wrote, Close
// them first (each waits for its own data, see UDPSession.Close). A conn given to
// ServeConn is not closed; its read deadline is set in the past to stop the
// read loop. Closing twice returns an error matching net.ErrClosed.
func (l *Listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.die)
		l.mu.Lock()
		l.closed = true
		all := make([]*UDPSession, 0, len(l.sessions)+len(l.others))
		for _, s := range l.sessions {
			all = append(all, s)
		}
		for _, s := range l.others {
			all = append(all, s)
		}
		l.mu.Unlock()
		for _, s := range all {
			s.abort()
		}
		l.rd.stop()
		// Each lane's sender writes its sessions' last datagrams (their
		// FINs), then the lane's socket is let go.
		for _, ln := range l.lanes {
			ln.sq.close(func() { ln.letGoErr = letGoConn(ln.conn, l.ownConn, l.pusher) })
		}
		for _, ln := range l.lanes {
			<-ln.sq.done
			if ln.letGoErr == nil {
				<-ln.loopDone
			}
		}
	})
	if !first {
		return errClosed
	}
	return nil
}
