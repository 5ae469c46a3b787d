package kcp

// How a datagram crosses a session.
//
// Send (any goroutine calling Write, plus the scheduler goroutine running
// update and the reader running input):
//
//	Write ──mu──▶ KCP.Send, KCP.flush: assembled straight into a pooled
//	buffer the session lends (kcp_sink.go), behind room for the cipher
//	header and the FEC header; FEC encode;
//	enqueue on txq (data and parity alike). The first datagram queued puts
//	the session on its socket's sendQueue (udp_tx.go). Nothing here blocks
//	or touches the socket.
//	sendQueue drain (the queue's goroutine, or an application goroutine
//	that finds the drain token free) ──mu──▶ takeTx: up to sendTurn
//	datagrams ──▶ seal each, without mu ──▶ packetWriter.send: one batch,
//	possibly with other sessions' datagrams ──▶ buffers back to the pool.
//
// The read goroutine never seals or writes: what input produces (ACKs,
// data released by a moving una) waits on txq for the sendQueue.
//
// Receive (the session's read goroutine for a dialled session, the
// listener's read goroutine for an accepted one):
//
//	packetReader ──▶ [listener: demux by source] ──▶ packetCrypter.open
//	(failure: InCsumErrors, dropped) ──mu──▶ dispatch on the u16 at offset 4:
//	0xF1/0xF2 FEC decoder ──▶ KCP.input; 0xF3 OOB handler (called after mu
//	is released); 0xF4 close signal; anything else KCP.input ──▶ wake
//	readers and writers (and unpark the session's timer).
//
// Timers: SystemTimedSched runs update once per flush interval: flush,
// failure detection (dead link, idle timeout), the close handshake
// (closeStepLocked in close.go), expiry of an unaccepted session, counters,
// then parking (sess_park.go) or the next run. A dialled session has two
// goroutines of its own (its socket's reader and sender); an accepted one
// has none.
//
// Locks: mu guards the ARQ state, the FEC codecs and the queues. Order: mu
// before sendQueue.mu (enqueue adds the session to the ready list under mu);
// the drain token (sendQueue.busy) is taken before mu and never waited for
// while mu is held. Listener.mu is never taken while mu is held, and mu is
// never taken while Listener.mu is held. Deadlines have their own locks,
// taken alone. docs/ARCHITECTURE.md draws the whole picture.
//
// Close (close.go): the session keeps its schedule after Close; once its
// data is acknowledged it sends the close signal (FIN, 0xF4) until answered
// (FINACK) or the linger bound passes. Close waits meanwhile on the settled
// channel, which input, update or release closes. Then the session releases
// everything: update stops rescheduling, the sendQueue writes what is left and lets go of the
// socket (closing it if the session owns it, else waking the read loop with
// a read deadline in the past, which the loop clears on its way out), and
// the listener forgets the session.

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxTxQueue bounds the datagrams waiting for the sender; beyond it
	// output is dropped (counted in IOStats.TxQueueDrops) and ARQ
	// retransmits.
	maxTxQueue = 8192

	// ampHold bounds the datagrams a session keeps queued while its peer,
	// not yet validated, has used up its budget (amplify.go); beyond it
	// output is dropped and ARQ resends it. A forged session can make us
	// hold no more than this.
	ampHold = 16
)

// OOBCallBackType is the handler SetOOBHandler installs. It receives the
// payload of one out-of-band datagram; the slice is only valid during the
// call, so copy what must outlive it.
type OOBCallBackType func([]byte)

// UDPSession is a KCP session over a net.PacketConn: a reliable, ordered
// net.Conn. All methods are safe for concurrent use.
type UDPSession struct {
	// Set at construction, then only read.
	conv     uint32
	conn     net.PacketConn
	ownConn  bool      // Close closes conn (Dial, NewConn4 with ownConn)
	l        *Listener // nil for a dialled session
	crypt    *packetCrypter
	remote   net.Addr
	remoteAP netip.AddrPort // the peer as a UDP address (unmapped), when it is one
	remoteS  string         // remote.String() for peers that are not UDP addresses
	cryptHdr int            // cipher header bytes in front of the FEC/KCP bytes
	lent     *[]byte        // the pooled buffer the core assembles in (lendFlushBuf), under mu
	cryptTag int            // AEAD tag bytes at the end
	fecHdr   int            // 8 with FEC on, else 0
	ds, ps   int
	updateFn func() // s.update, bound once so rescheduling allocates nothing
	snmp     Snmp   // this session's published counters (atomic adds)

	rd, wd   deadline
	chRead   chan struct{} // capacity 1: something may be readable
	chWrite  chan struct{} // capacity 1: the send window may have room
	die      chan struct{} // closed once the session is closed (Close, listener, replacement)
	broken   chan struct{} // closed once the link failed; brokenErr says why
	settled  chan struct{} // closed once a waiting Close may return (close.go)
	dieOnce  sync.Once
	brkOnce  sync.Once
	accepted atomic.Bool // listener sessions: taken by Accept
	parked   atomic.Bool // update sleeps for long (sess_park.go); set under mu
	loopDone chan struct{}

	sq       *sendQueue    // the socket's sender (shared by a listener's sessions)
	rx       *packetReader // a dialled session's reader (nil for a listener's or a pushing conn)
	pusher   PacketPusher  // the conn, when it pushes datagrams (udp_push.go)
	remoteTx net.Addr      // destination for the sender when remoteAP is invalid
	txPkts   atomic.Uint64 // datagrams and bytes the sender wrote, not yet published
	txBytes  atomic.Uint64

	// mu guards everything below and every call into kcp and the FEC codecs.
	mu          sync.Mutex
	kcp         *KCP
	fecEnc      *fecEncoder
	fecDec      *fecDecoder
	kcpMtu      int
	txq         [][]byte  // datagrams waiting for the sender, unsealed; txq[txHead:] are live
	txqBuf      []*[]byte // their pooled buffers
	txHead      int
	amp         ampLimit // send budget toward a peer not yet validated (listener sessions)
	ampCredit   bool     // a datagram arrived since the last one sent beyond amp's budget
	ampHeld     bool     // txq waits for the peer: amp's budget is spent
	ampProbes   uint8    // window probes sent past the budget since the peer was last heard
	ampProbeAt  uint32   // ms time the next may go (0: not yet set)
	ampProbing  bool     // the next datagram enqueued is such a probe (enqueue lets it by)
	pushing     bool     // the caller drains the send queue itself right after (push)
	txReady     bool     // the session is on sq's ready list
	rpart       bool     // Read has begun a message it has not finished (KCP.recvPart)
	ackNoDelay  bool
	writeDelay  bool
	dup         int
	oob         OOBCallBackType
	rateBps     uint32
	linger      time.Duration
	idleTimeout time.Duration
	lastRecv    uint32 // kcp clock of the last datagram from the peer
	created     uint32
	pend        Snmp   // counted but not yet published to snmp and DefaultSnmp
	forgedAcks  uint64 // published core counts of forged ACKs (SessionStats)
	badTsAcks   uint64
	brokenErr   error
	closing     bool   // Close was called; draining
	lingerEnd   uint32 // kcp clock at which draining gives up
	finNext     uint32 // kcp clock of the next FIN (re)transmission
	finBackoff  uint32
	finSn       uint32
	finSent     bool
	finAcked    bool
	peerFin     bool
	peerFinSn   uint32
	peerFinAt   uint32 // kcp clock of the peer's first FIN
	released    bool
	heard       bool   // a datagram from the peer was taken
	finAt       uint32 // kcp clock of the first FIN
	settledDone bool   // settled is closed
	schedAt     uint32 // kcp clock the current update run is due at (sess_park.go)

	sessV57    // rate-limit bucket and read notification (sess_v57.go); atomics
	sessRebind // NAT rebinding (listener_rebind.go, sess_rebind.go)
	// tracing (trace.go), also guarded by mu
	tracer       Tracer // nil: tracing off
	tracerOwned  bool   // tracer is a QlogTracer the session opened (KCPX_QLOGDIR)
	tracedStates uint8  // bit per SessionState already reported
}

// newUDPSession builds a session and schedules its first update. For a
// dialled session (l == nil) it also starts the read loop on conn.
func newUDPSession(conv uint32, ds, ps int, l *Listener, conn net.PacketConn, ownConn bool,
	remote net.Addr, crypt *packetCrypter, sq *sendQueue) *UDPSession {
	s := &UDPSession{
		conv:    conv,
		conn:    conn,
		ownConn: ownConn,
		l:       l,
		crypt:   crypt,
		sq:      sq,
		remote:  remote,
		ds:      ds,
		ps:      ps,
		rd:      newDeadline(),
		wd:      newDeadline(),
		chRead:  make(chan struct{}, 1),
		chWrite: make(chan struct{}, 1),
		die:     make(chan struct{}),
		broken:  make(chan struct{}),
		settled: make(chan struct{}),
		linger:  defaultLinger,
	}
	if ua, ok := remote.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		s.remoteAP = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	} else {
		s.remoteS = remote.String()
		s.remoteTx = remote
	}
	s.cryptHdr = crypt.headerSize()
	s.cryptTag = crypt.overhead() - s.cryptHdr
	s.fecEnc = newFECEncoder(ds, ps, s.cryptHdr)
	if s.fecEnc != nil {
		s.fecHdr = fecHeaderSizePlus2
		s.fecDec = newFECDecoder(ds, ps)
	}
	s.kcp = NewKCP(conv, s.output)
	s.kcp.setSink(s) // flush assembles in the datagram buffers it sends
	sessionClocks(s.kcp)
	s.kcp.setTsOffset(sessionTsOffset()) // issue 13: echoed ts proves the peer receives
	s.kcpMtu = s.kcpMtuFor(IKCP_MTU_DEF)
	s.kcp.SetMtu(s.kcpMtu)
	s.created = s.kcp.clock()
	s.lastRecv = s.created
	s.updateFn = s.update
	s.traceFromEnv()

	DefaultSnmp.connOpened(l != nil)

	s.loopDone = noLoop // a listener's session: the listener reads for it
	if l == nil {
		s.loopDone = make(chan struct{})
	}

	SystemTimedSched.Put(s.updateFn, time.Now())
	if l == nil {
		s.amp.validate() // it chose its peer: nothing to amplify
		if pp, ok := conn.(PacketPusher); ok {
			s.startPushed(pp) // udp_push.go: no read goroutine
		} else {
			s.rx = newDialReader(conn)
			if u, ok := conn.(*net.UDPConn); ok && ownConn && u.RemoteAddr() != nil {
				// Dial's connected socket: a refusal before the peer ever
				// answered ends the session at once (udp_rx.go).
				s.rx.refusedFatal = true
			}
			go s.readLoop()
		}
	}
	return s
}

// noLoop is the loopDone of sessions without a read loop of their own
// (a listener's): closed once, shared, so each costs no channel.
var noLoop = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// kcpMtuFor is the KCP mtu left by a datagram of mtu bytes once the cipher
// header, FEC header and AEAD tag are taken off.
func (s *UDPSession) kcpMtuFor(mtu int) int {
	return min(mtu, maxDatagram) - s.cryptHdr - s.fecHdr - s.cryptTag
}

// ---- send path ----

// output is the KCP output callback; it runs under mu, inside flush. With
// the session as the core's sink (below) it serves only a datagram flush
// could not assemble in a lent buffer: it copies it into a pooled one.
func (s *UDPSession) output(buf []byte, size int) {
	if size <= 0 || s.released {
		return
	}
	p := getBuffer()
	n := copy((*p)[s.kcpHead():], buf[:size])
	s.sendPooled(p, n)
}

// kcpHead is where the KCP bytes start in a datagram buffer: behind the
// cipher header and, with FEC, the FEC header.
func (s *UDPSession) kcpHead() int { return s.cryptHdr + s.fecHdr }

// The session is its core's flushSink (kcp_sink.go): flush assembles each
// datagram in a pooled buffer, behind the room the cipher and FEC headers
// need, and that buffer goes to txq as it is, sealed in place later.

// lendFlushBuf lends the core a pooled buffer past its headers' room. A
// session's mtu leaves the AEAD tag's room at the end (kcpMtuFor), so any
// datagram the core assembles fits.
func (s *UDPSession) lendFlushBuf() []byte {
	if s.lent == nil {
		s.lent = getBuffer()
	}
	return (*s.lent)[s.kcpHead():]
}

// flushed takes a datagram the core assembled; in the lent buffer (always,
// but for a segment queued under a larger mtu) it is sent without a copy.
func (s *UDPSession) flushed(b []byte) {
	p := s.lent
	s.lent = nil
	h := s.kcpHead()
	if p == nil || len(b) == 0 || len(*p) <= h || &b[0] != &(*p)[h] {
		if p != nil {
			putBuffer(p)
		}
		s.output(b, len(b))
		return
	}
	if s.released {
		putBuffer(p)
		return
	}
	s.sendPooled(p, len(b))
}

// unlend takes back the lent buffer unused.
func (s *UDPSession) unlend() {
	if s.lent != nil {
		putBuffer(s.lent)
		s.lent = nil
	}
}

// sendPooled sends the n KCP bytes at kcpHead of pooled buffer p: FEC
// encodes them when on, and the datagram (and any parity) goes to txq.
// Caller holds mu; p is handed on.
func (s *UDPSession) sendPooled(p *[]byte, n int) {
	b := *p
	if s.tracer != nil {
		s.traceOutput(b[s.kcpHead() : s.kcpHead()+n])
	}
	if s.fecEnc == nil {
		s.enqueue(p, b[:s.cryptHdr+n])
		return
	}
	pkt := b[:s.cryptHdr+fecHeaderSizePlus2+n]
	parity := s.fecEnc.encode(pkt, s.kcp.clock())
	s.enqueue(p, pkt)
	for _, par := range parity {
		q := getBuffer()
		m := copy(*q, par)
		if s.tracer != nil {
			s.tracer.DatagramSent(DatagramParity, m+s.cryptTag, nil)
		}
		s.enqueue(q, (*q)[:m])
	}
}

// enqueue hands a datagram (cipher header room included, unsealed) to the
// socket's sender; the first one queued puts the session on its ready list.
// Caller holds mu. When the queue is full the datagram is dropped (ARQ
// resends what mattered).
func (s *UDPSession) enqueue(p *[]byte, pkt []byte) {
	if s.ampProbing {
		s.ampProbing = false // the probe alone: FEC parity and the rest wait
		s.queueProbe(p, pkt)
		return
	}
	if s.ampHeld && len(s.txq)-s.txHead >= ampHold {
		s.sq.ampLimited.Add(1)
		putBuffer(p)
		return
	}
	if len(s.txq)-s.txHead >= maxTxQueue || s.released {
		s.sq.queueDrops.Add(1)
		putBuffer(p)
		return
	}
	s.txq = append(s.txq, pkt)
	s.txqBuf = append(s.txqBuf, p)
	if !s.txReady && !s.ampHeld {
		s.txReady = s.sq.add(s, !s.pushing)
	}
}

// wake tells a parked session that it has work again: its update must run
// one interval ahead, not a park period away. Sending needs nothing: enqueue
// already handed the datagrams to the sender.
func (s *UDPSession) wake() {
	if s.parked.Load() {
		s.unpark()
	}
}

// push is wake for a goroutine that writes (Write, SendOOB): it also
// drains the socket's send queue here when nobody else is, sparing the
// queue's goroutine a hand-off. A writer may wait on a full socket, as a
// TCP writer does; Read, Close and the setters only wake, so they never
// wait on the socket.
func (s *UDPSession) push() {
	s.wake()
	s.sq.drain()
}

// takeTx moves up to max queued datagrams into q's batch, sealed, and reports
// whether more remain queued. It runs on the sender goroutine; sealing
// happens without mu.
func (s *UDPSession) takeTx(q *sendQueue, max int) bool {
	s.mu.Lock()
	n := min(len(s.txq)-s.txHead, max)
	start := len(q.batch)
	dup := s.dup
	taken := 0
	if len(s.ctlTx) > 0 {
		taken = s.takeCtlLocked(q) // path challenges (sess_rebind.go)
	}
	nctl := taken
	for i := s.txHead; i < s.txHead+n; i++ {
		// Toward a peer that has not shown it receives at its address, at
		// most 3x the bytes it sent (amplify.go), or one datagram for each
		// datagram heard: a kcp-go client's request is smaller than a third
		// of the first reply, which it must receive to acknowledge it and so
		// prove its address. What is over the budget waits (ampHold) for
		// the next datagram from the peer.
		size := (len(s.txq[i]) + s.cryptTag) * (dup + 1)
		if !s.amp.allow(size) {
			if !s.ampCredit {
				s.ampHeld = true
				q.ampLimited.Add(1)
				break
			}
			s.ampCredit = false
		}
		s.amp.charge(size)
		q.batch = append(q.batch, outPacket{b: s.txq[i], to: s.remoteAP, addr: s.remoteTx})
		q.bufs = append(q.bufs, s.txqBuf[i])
		s.txq[i], s.txqBuf[i] = nil, nil
		taken++
	}
	s.txHead += taken - nctl
	n = taken
	more := s.txHead < len(s.txq) && !s.ampHeld
	if s.txHead == len(s.txq) {
		s.txq, s.txqBuf, s.txHead = s.txq[:0], s.txqBuf[:0], 0
	}
	if !more {
		s.txReady = false
	}
	s.mu.Unlock()

	s.crypt.sealBatch(q.batch[start : start+n])
	for range dup {
		for i := start; i < start+n; i++ {
			q.batch = append(q.batch, q.batch[i])
			q.bufs = append(q.bufs, nil) // the buffer is freed once, with the original
		}
	}
	return more
}

// sendFailed is told by the sender that the socket failed for good.
func (s *UDPSession) sendFailed(err error) {
	if s.l == nil {
		s.breakLink(opError("write", s.conn, s.remote, err))
	}
}

// applyRateLimit hands the rate limit to the core's pacer, in the core's
// bytes: FEC parity takes its share of the rate, and each datagram costs what
// the FEC header and the cipher add. Caller holds mu.
func (s *UDPSession) applyRateLimit() {
	rate := uint64(s.rateBps)
	if s.fecEnc != nil {
		rate = rate * uint64(s.fecEnc.dataShards) / uint64(s.fecEnc.dataShards+s.fecEnc.parityShards)
	}
	if s.rateBps != 0 {
		rate = max(rate, 1)
	}
	s.kcp.setPace(s.kcp.clock(), uint32(rate), s.cryptHdr+s.fecHdr+s.cryptTag)
}

// ---- receive path ----

// readLoop feeds a dialled session from its own socket until the socket
// fails or the session is released.
func (s *UDPSession) readLoop() {
	defer close(s.loopDone)
	r := s.rx
	err := r.read(s.rxDatagram)
	s.mu.Lock()
	released := s.released
	s.mu.Unlock()
	if !s.ownConn {
		r.release() // leave the caller's socket as we found it (GRO off)
		if released {
			s.conn.SetReadDeadline(time.Time{}) // ours, set by release
		}
	}
	if !released {
		s.mu.Lock()
		s.pend.InErrs++
		s.mu.Unlock()
		s.breakLink(opError("read", s.conn, s.remote, err))
	}
}

// rxDatagram takes one datagram from the session's own conn: anything not
// from the peer is ignored, anything that does not open is counted.
func (s *UDPSession) rxDatagram(data []byte, ap netip.AddrPort, addr net.Addr) {
	if ap.IsValid() {
		if netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) != s.remoteAP {
			return
		}
	} else if addr == nil || (addr != s.remote && addr.String() != s.remoteS) {
		return
	}
	payload, err := s.crypt.open(data)
	if err != nil {
		s.mu.Lock()
		s.pend.InCsumErrors++
		s.mu.Unlock()
		return
	}
	if s.rx != nil && s.rx.refusedFatal {
		s.rx.refusedFatal = false // the peer answers: a later refusal is transient
	}
	s.input(payload, len(data))
}

// input takes one opened datagram (the bytes after the cipher header) that
// arrived as wireLen bytes. InPkts and InBytes count it as kcp-go does:
// opened, without the cipher header and tag (sess_v57.go, countInput).
func (s *UDPSession) input(p []byte, wireLen int) {
	var (
		oob     OOBCallBackType
		oobData []byte
	)
	s.mu.Lock()
	if s.released || !s.countInputLocked(p) {
		s.mu.Unlock()
		return
	}
	now := s.kcp.clock()
	s.lastRecv = now
	s.heard = true
	s.amp.received(wireLen)
	s.ampCredit = true
	s.ampProbes, s.ampProbeAt = 0, 0
	if s.ampHeld {
		// What waited for the budget may go now (or at least one datagram).
		s.ampHeld = false
		if !s.txReady && s.txHead < len(s.txq) {
			s.txReady = s.sq.add(s, true)
		}
	}
	if s.tracer != nil {
		s.traceInput(p, wireLen)
	}
	var typ uint16
	if len(p) >= 6 {
		typ = binary.LittleEndian.Uint16(p[4:])
	}
	switch typ {
	case typeData, typeParity:
		if len(p) < fecHeaderSizePlus2 {
			s.pend.FECErrs++
			break
		}
		if s.fecDec == nil {
			s.fecDec = newFECDecoder(s.ds, s.ps) // hints only: it infers the peer's layout
		}
		if typ == typeData {
			if kb, ok := fecDataPayload(p); ok {
				s.kcpInput(now, kb, IKCP_PACKET_REGULAR)
			} else {
				s.pend.FECErrs++
			}
		}
		for _, r := range s.fecDec.decode(p, now) {
			if s.tracer != nil {
				s.tracer.FECRecovered(len(r))
			}
			s.kcpInput(now, r, IKCP_PACKET_FEC)
		}
	case typeOOB:
		if conv, payload, ok := parseOOB(p); ok && conv == s.conv {
			s.pend.OOBPackets++
			oob, oobData = s.oob, payload
		}
	case typeClose:
		s.closeSignalInput(p)
	case typePath:
		s.pathSignalInput(p)
	default:
		s.kcpInput(now, p, IKCP_PACKET_REGULAR)
	}
	if !s.amp.validated() && s.kcp.validated() {
		s.amp.validate()
	}
	if s.closing && !s.finSent && s.kcp.WaitSnd() == 0 {
		// The last of our data was acknowledged: say so now rather than at
		// the next update, for Close waits on the answer.
		s.sendFinLocked(now)
	}
	readable := s.readableLocked()
	writable := s.kcp.writable()
	s.mu.Unlock()

	if readable {
		s.readReady()
	}
	if writable {
		notify(s.chWrite)
	}
	s.wake()
	if oob != nil {
		oob(oobData)
	}
}

func (s *UDPSession) kcpInput(now uint32, data []byte, pt PacketType) {
	if s.kcp.input(now, data, pt, s.ackNoDelay) != 0 {
		s.pend.KCPInErrors++
		return
	}
	if s.tracer != nil {
		s.traceState(StateEstablished)
	}
}

// readableLocked reports whether Read would return without waiting for
// the network. Caller holds mu.
func (s *UDPSession) readableLocked() bool {
	return s.rpart || s.kcp.recvQueued() > 0 || s.eofLocked()
}

// eofLocked reports that the peer closed and every byte it sent was read.
func (s *UDPSession) eofLocked() bool {
	return s.peerFin && !s.rpart && s.kcp.recvQueued() == 0 &&
		int32(s.kcp.recvNext()-s.peerFinSn) >= 0
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ---- timers ----

// update runs on SystemTimedSched once per flush interval until the session
// is released: flush, look for a failed link, advance the close handshake,
// expire an unaccepted session, publish counters, then park or reschedule.
func (s *UDPSession) update() {
	s.mu.Lock()
	now := s.kcp.clock()
	if s.released || s.staleLocked(now) {
		s.mu.Unlock()
		return
	}
	next := s.kcp.flush(now, IKCP_FLUSH_FULL)
	next = min(next, s.ampProbeLocked(now))
	writable := s.kcp.writable()
	fail := s.failureLocked(now)
	if fail != nil && s.tracer != nil {
		s.traceFailure(fail)
	}
	release := false
	if s.closing {
		var wait uint32
		release, wait = s.closeStepLocked(now, fail)
		next = min(next, wait)
	}
	expirable := s.l != nil && !s.closing && !s.accepted.Load()
	expire := expirable && time.Duration(now-s.created)*time.Millisecond > s.l.pendingTTL
	s.publishLocked()
	next = s.parkLocked(now, next, expirable)
	s.mu.Unlock()

	if writable {
		notify(s.chWrite)
	}
	if fail != nil {
		s.breakLink(fail)
	}
	if expire && s.l.expire(s) {
		release = true
	}
	if release {
		s.release()
		return
	}
	SystemTimedSched.Put(s.updateFn, time.Now().Add(time.Duration(next)*time.Millisecond))
}

// failureLocked reports why the link has failed at time now (the peer
// stopped acknowledging, or nothing was heard for the idle timeout), or nil.
// Caller holds mu.
func (s *UDPSession) failureLocked(now uint32) error {
	switch {
	case s.kcp.dead():
		return errDeadLink
	case s.idleTimeout > 0 && time.Duration(now-s.lastRecv)*time.Millisecond > s.idleTimeout:
		return errIdle
	}
	return nil
}

// publishLocked moves the counters gathered since the last call into this
// session's Snmp and DefaultSnmp: one atomic add per non-zero counter per
// update, not one per packet. Caller holds mu.
func (s *UDPSession) publishLocked() {
	cs := s.kcp.takeStats()
	s.pend.InSegs += cs.InSegs
	s.pend.OutSegs += cs.OutSegs
	s.pend.RetransSegs += cs.RetransSegs
	s.pend.FastRetransSegs += cs.FastRetransSegs
	s.pend.EarlyRetransSegs += cs.EarlyRetransSegs
	s.pend.LostSegs += cs.LostSegs
	s.pend.RepeatSegs += cs.RepeatSegs
	// Forged acknowledgements the core ignored: kcp-go's Snmp has no
	// column of their own, so they count as KCPInErrors there, and apart
	// in SessionStats.
	s.pend.KCPInErrors += cs.ForgedAcks + cs.BadTsAcks
	s.forgedAcks += cs.ForgedAcks
	s.badTsAcks += cs.BadTsAcks
	if s.fecDec != nil {
		st := s.fecDec.stats.take()
		s.pend.FECRecovered += st.Recovered
		s.pend.FECErrs += st.Errs
		s.pend.FECParityShards += st.ParityShards
		s.pend.FECFullShardSet += st.FullShardSet
		s.publishFECGauges(st.ShardSet, st.ShardMin)
	}
	if s.fecEnc != nil {
		s.pend.FECErrs += s.fecEnc.stats.take().Errs
	}
	s.pend.OutPkts += s.txPkts.Swap(0)
	s.pend.OutBytes += s.txBytes.Swap(0)
	s.snmp.setQueues(s.kcp.queueLens())
	if s.pend != (Snmp{}) { // an idle session publishes nothing
		s.pend.commit(&s.snmp)
	}
}

// breakLink records why the link failed and wakes every waiter. The first
// reason wins.
func (s *UDPSession) breakLink(err error) {
	s.brkOnce.Do(func() {
		s.mu.Lock()
		s.brokenErr = err
		s.mu.Unlock()
		close(s.broken)
		s.callReadNotify()
	})
}

// ---- net.Conn ----

// Read reads the next bytes the peer sent. In message mode (the default) it
// returns one message per call; a message longer than b is returned over
// several calls, in order, as kcp-go does. In stream mode it returns what is
// available, up to len(b).
//
// Read blocks until data arrives, the read deadline passes (the error is
// os.ErrDeadlineExceeded, a net.Error with Timeout true), the session is
// closed (an error matching net.ErrClosed and io.ErrClosedPipe) or the link
// fails (dead peer, idle timeout, socket error). Once the peer has closed and
// every byte it sent has been read, Read returns io.EOF.
func (s *UDPSession) Read(b []byte) (int, error) { return s.read(b, true) }

// read is Read; without block it returns (0, nil) where Read would wait
// (TryRead) and ignores the read deadline.
func (s *UDPSession) read(b []byte, block bool) (int, error) {
	if len(b) == 0 { // as net.TCPConn: no wait, nothing consumed
		if closedChan(s.die) {
			return 0, errClosed
		}
		return 0, nil
	}
	if block && s.rd.expired() && !closedChan(s.die) { // closed wins, as in package net
		return 0, errTimeout
	}
	for {
		s.mu.Lock()
		if closedChan(s.die) {
			s.mu.Unlock()
			return 0, errClosed
		}
		if s.rpart {
			// the rest of a message a shorter buffer began
			n, end := s.kcp.recvPart(b)
			s.rpart = !end
			s.afterRecvLocked(n)
			return n, nil
		}
		if size := s.kcp.PeekSize(); size >= 0 && s.kcp.recvQueued() > 0 {
			if size == 0 {
				// A zero-length message: consume it and keep going.
				s.kcp.Recv(b[:0])
				s.mu.Unlock()
				continue
			}
			if len(b) >= size {
				n := max(s.kcp.recvStream(b), 0)
				s.afterRecvLocked(n)
				return n, nil
			}
			// b is shorter than the message: copy what fits straight from
			// the receive queue; the next Reads take the rest.
			n, end := s.kcp.recvPart(b)
			s.rpart = !end
			s.afterRecvLocked(n)
			return n, nil
		}
		if s.eofLocked() {
			s.mu.Unlock()
			notify(s.chRead) // other readers see EOF too
			return 0, io.EOF
		}
		if s.brokenErr != nil {
			err := s.brokenErr
			s.mu.Unlock()
			return 0, err
		}
		s.mu.Unlock()
		if !block {
			return 0, nil
		}

		select {
		case <-s.chRead:
		case <-s.rd.wait():
			return 0, errTimeout
		case <-s.die:
			return 0, errClosed
		case <-s.broken:
		}
	}
}

// afterRecvLocked counts a read, passes the readable state on to other
// readers and releases mu. (A read that opens a closed window needs nothing
// more: the core reports the window to the peer at its next flush.)
func (s *UDPSession) afterRecvLocked(n int) {
	s.pend.BytesReceived += uint64(n)
	more := s.readableLocked()
	// The read opened the window far enough that the peer, limited by what
	// we last advertised, should hear of it now rather than at the next update.
	tell := s.kcp.windowReportDue()
	if tell {
		s.kcp.flush(s.kcp.clock(), IKCP_FLUSH_ACKONLY)
	}
	s.mu.Unlock()
	if more {
		notify(s.chRead)
	}
	if tell {
		s.wake()
	}
}

// Write queues b for reliable delivery and returns len(b), or the bytes
// queued before an error and the error. It queues in steps: while the
// segments waiting to be sent or acknowledged reach the send window, or the
// bytes waiting beyond the congestion window reach the write bound
// (SetWriteQueueLimit), it blocks until ACKs make room, the write deadline
// passes (os.ErrDeadlineExceeded), the session is closed or the link fails;
// so a large b never sits in memory whole. The bytes counted as queued are
// delivered (unless the link fails).
//
// In message mode a b of up to the largest message the peer can reassemble
// arrives as one message; a larger b is split into messages of that size.
// That size is the segment size (mtu minus headers) times the smallest of
// 255, this session's receive window and the largest window the peer
// advertised. Before the peer has sent anything its window is unknown (the
// default, 32, is assumed); a Write that the peer's window could let through
// whole first asks the peer for it and waits for its answer (see
// sess_peerwnd.go), until the write deadline (os.ErrDeadlineExceeded,
// nothing queued) or, without one, 3 s, after which it splits at 32
// segments. So a C KCP peer (receive window 128) gets messages of up to 128
// segments whole once both windows allow it. In stream mode the bytes carry
// no boundaries.
func (s *UDPSession) Write(b []byte) (int, error) {
	return s.WriteBuffers([][]byte{b})
}

// WriteBuffers is Write for a vector of buffers: each buffer is queued as
// Write would queue it, in order, in steps as Write queues. It returns the
// total length queued.
func (s *UDPSession) WriteBuffers(v [][]byte) (int, error) {
	if n, err, done := s.writeGate(v); done {
		return n, err
	}
	if s.wd.expired() && !closedChan(s.die) { // closed wins, as in package net
		return 0, errTimeout
	}
	if err := s.awaitPeerWindow(v); err != nil {
		return 0, err
	}
	cur := writeCursor{v: v}
	n := 0
	for {
		s.mu.Lock()
		if closedChan(s.die) || s.closing {
			s.mu.Unlock()
			return n, errClosed
		}
		if s.brokenErr != nil {
			err := s.brokenErr
			s.mu.Unlock()
			return n, err
		}
		if n > 0 && s.wd.expired() {
			s.mu.Unlock()
			return n, errTimeout
		}
		if step := s.queueStepLocked(&cur); step > 0 {
			n += step
			s.pend.BytesSent += uint64(step)
			if !s.writeDelay {
				s.pushing = true // push below drains: no need to wake the sender
				s.kcp.flush(s.kcp.clock(), IKCP_FLUSH_FULL)
				s.pushing = false
			}
			writable := s.kcp.writable()
			s.mu.Unlock()
			if writable {
				notify(s.chWrite)
			}
			s.push()
			if cur.done() {
				return n, nil
			}
			continue // the flush may have made room already
		}
		s.mu.Unlock()

		select {
		case <-s.chWrite:
		case <-s.wd.wait():
			return n, errTimeout
		case <-s.die:
			return n, errClosed
		case <-s.broken:
		}
	}
}

// LocalAddr returns the local address of the underlying PacketConn.
func (s *UDPSession) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the peer's address: for a listener's session, the new
// one once the session followed its peer to it (NAT rebinding,
// listener_rebind.go). The value is shared; do not modify it.
func (s *UDPSession) RemoteAddr() net.Addr {
	if a := s.movedTo.Load(); a != nil { // the listener moved the session (listener_rebind.go)
		return a
	}
	return s.remote
}

// SetDeadline sets both the read and the write deadline. A zero time clears
// them; a time in the past makes Read and Write fail at once. A new deadline
// takes effect on calls already blocked. On a closed session it returns an
// error matching net.ErrClosed.
func (s *UDPSession) SetDeadline(t time.Time) error {
	if closedChan(s.die) {
		return errClosed
	}
	s.rd.set(t)
	s.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline, as SetDeadline does for both.
func (s *UDPSession) SetReadDeadline(t time.Time) error {
	if closedChan(s.die) {
		return errClosed
	}
	s.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline, as SetDeadline does for both.
func (s *UDPSession) SetWriteDeadline(t time.Time) error {
	if closedChan(s.die) {
		return errClosed
	}
	s.wd.set(t)
	return nil
}
