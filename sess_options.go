package kcp

import (
	"net"
	"time"
)

// SetWriteDelay, when true, leaves written data for the next scheduled
// flush instead of flushing inside Write, so small writes coalesce. Default
// false.
func (s *UDPSession) SetWriteDelay(delay bool) {
	s.mu.Lock()
	s.writeDelay = delay
	s.mu.Unlock()
}

// SetWindowSize sets the send and receive windows in segments (default 32
// and 32; values below 1 leave a window unchanged). The new receive window is
// advertised at once.
func (s *UDPSession) SetWindowSize(sndwnd, rcvwnd int) {
	s.mu.Lock()
	s.kcp.WndSize(sndwnd, rcvwnd)
	s.kcp.flush(s.kcp.clock(), IKCP_FLUSH_ACKONLY)
	s.mu.Unlock()
	notify(s.chWrite)
	s.wake()
}

// SetMtu sets the largest datagram the session sends, in bytes of UDP
// payload (default 1400). Values above 1472 send 1472-byte datagrams, as
// kcp-go v5.7 does: its receive buffers hold no more, and 1472 is what an
// Ethernet path carries in IPv4 without fragmenting. It returns false,
// changing nothing, when the cipher header, FEC header and AEAD tag leave no
// room for a KCP segment with data (KCP mtu = min(1472, mtu) - overhead must
// exceed 24).
func (s *UDPSession) SetMtu(mtu int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.kcpMtuFor(mtu)
	if k <= IKCP_OVERHEAD || s.kcp.SetMtu(k) < 0 {
		return false
	}
	s.kcpMtu = k
	s.paceForBucketLocked()
	return true
}

// SetStreamMode switches between message mode (false, the default: message
// boundaries kept) and stream mode (true: bytes coalesce into full segments,
// as a TCP stream). Set it before the first Write; the two ends need not
// agree (a message-mode reader of a stream-mode writer sees segment-sized
// pieces). This is the only way to get stream mode, as in kcp-go.
func (s *UDPSession) SetStreamMode(enable bool) {
	s.mu.Lock()
	s.kcp.setStream(enable)
	s.mu.Unlock()
}

// SetACKNoDelay, when true, sends ACKs right after each input instead of
// at the next flush. Default false.
func (s *UDPSession) SetACKNoDelay(nodelay bool) {
	s.mu.Lock()
	s.ackNoDelay = nodelay
	s.mu.Unlock()
}

// SetDUP sends every datagram dup extra times (default 0).
//
// Deprecated: duplication wastes bandwidth; FEC recovers losses better.
func (s *UDPSession) SetDUP(dup int) {
	s.mu.Lock()
	s.dup = max(dup, 0)
	s.mu.Unlock()
}

// SetNoDelay tunes the core as ikcp_nodelay does: nodelay 1 lowers the
// minimum RTO to 30 ms and backs off by half an RTO; interval is the flush
// period in ms (10..5000, default 100); resend > 0 enables fast retransmit
// after that many skipping ACKs; nc 1 turns congestion control off. kcptun's
// presets: normal 0,40,2,1; fast 0,30,2,1; fast2 1,20,2,1; fast3 1,10,2,1.
func (s *UDPSession) SetNoDelay(nodelay, interval, resend, nc int) {
	s.mu.Lock()
	s.kcp.NoDelay(nodelay, interval, resend, nc)
	s.mu.Unlock()
}

// SetLogger installs a trace logger for the KCP events in mask.
func (s *UDPSession) SetLogger(mask KCPLogType, logger logoutput_callback) {
	s.mu.Lock()
	s.kcp.SetLogger(mask, logger)
	s.mu.Unlock()
}

// SetLinger bounds how long Close waits for the peer to acknowledge what
// was written and to answer the close signal, and how long the closed
// session keeps sending them (default 5 s). With 0, Close returns at once
// and the session gives up at its next update (a FIN goes out once if
// nothing is outstanding), as kcp-go's Close does. It applies to a Close
// that comes after it.
func (s *UDPSession) SetLinger(d time.Duration) {
	s.mu.Lock()
	s.linger = max(d, 0)
	s.mu.Unlock()
}

// SetIdleTimeout makes Read and Write fail once nothing arrived from the
// peer for d (checked once per flush interval); 0, the default, disables it.
// A peer that stops acknowledging is reported without it, after the dead
// link limit (20 retransmissions of one segment).
func (s *UDPSession) SetIdleTimeout(d time.Duration) {
	s.mu.Lock()
	s.idleTimeout = max(d, 0)
	s.mu.Unlock()
}

// GetConv returns the conversation id.
func (s *UDPSession) GetConv() uint32 { return s.conv }

// GetRTO returns the current retransmission timeout in ms.
func (s *UDPSession) GetRTO() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kcp.rtoMs()
}

// GetSRTT returns the smoothed round-trip time in ms.
func (s *UDPSession) GetSRTT() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kcp.srttMs()
}

// GetSRTTVar returns the round-trip time variation in ms.
func (s *UDPSession) GetSRTTVar() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kcp.rttVarMs()
}

// GetSnmp returns a copy of this session's counters (the same fields as
// DefaultSnmp, counting only this session), published once per update. The
// queue and FEC gauges (RingBuffer*, FECShardSet, FECShardMin) are this
// session's. DefaultSnmp leaves the queue gauges at zero rather than let
// thousands of sessions overwrite one another's; its FEC gauges hold the
// last values any session's decoder reported, as in kcp-go.
func (s *UDPSession) GetSnmp() *Snmp { return s.snmp.Copy() }

// ---- out of band ----

// SetOOBHandler installs the handler for out-of-band datagrams; nil removes
// it. The handler runs on the session's read goroutine after the session lock
// is released; it must return quickly. OOB needs FEC on this session (as in
// kcp-go); without it the error says so.
func (s *UDPSession) SetOOBHandler(callback OOBCallBackType) error {
	if s.fecEnc == nil {
		return errNoFEC
	}
	s.mu.Lock()
	s.oob = callback
	s.mu.Unlock()
	return nil
}

// GetOOBMaxSize returns the largest payload SendOOB accepts: the KCP mtu
// minus 4. It is 0 without FEC.
func (s *UDPSession) GetOOBMaxSize() int {
	if s.fecEnc == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kcpMtu - 4
}

// SendOOB sends data in one out-of-band datagram: unreliable, unordered,
// outside KCP and FEC parity, sealed like every datagram. It needs FEC and a
// payload of at most GetOOBMaxSize bytes. When the send queue is full the
// datagram is dropped silently.
func (s *UDPSession) SendOOB(data []byte) error {
	if s.fecEnc == nil {
		return errNoFEC
	}
	s.mu.Lock()
	if closedChan(s.die) {
		s.mu.Unlock()
		return errClosed
	}
	if len(data) > s.kcpMtu-4 {
		s.mu.Unlock()
		return errOOBTooLarge
	}
	p := getBuffer()
	b := (*p)[s.cryptHdr:]
	putOOBHeader(b, s.conv, len(data))
	copy(b[12:], data)
	s.pushing = true
	s.enqueue(p, (*p)[:s.cryptHdr+12+len(data)])
	s.pushing = false
	s.mu.Unlock()
	s.push()
	return nil
}

// ---- socket options ----

// SetDSCP sets the DSCP field of outgoing datagrams (IPv4 TOS and IPv6
// traffic class = dscp<<2, as kcp-go v5.7), through the conn's own
// SetDSCP(int) error when it has one. A session accepted from a Listener
// shares its socket: use Listener.SetDSCP; here it returns an error.
func (s *UDPSession) SetDSCP(dscp int) error {
	if s.l != nil {
		return errInvalidOperation
	}
	return setDSCP(s.conn, dscp)
}

// SetReadBuffer sets the socket receive buffer in bytes, when the conn
// supports it. Not for a session accepted from a Listener (error).
func (s *UDPSession) SetReadBuffer(bytes int) error {
	if s.l != nil {
		return errInvalidOperation
	}
	return setReadBuffer(s.conn, bytes)
}

// SetWriteBuffer sets the socket send buffer in bytes, when the conn
// supports it. Not for a session accepted from a Listener (error).
func (s *UDPSession) SetWriteBuffer(bytes int) error {
	if s.l != nil {
		return errInvalidOperation
	}
	return setWriteBuffer(s.conn, bytes)
}

// Control calls f with the underlying PacketConn (shared with the listener
// for an accepted session) and returns its error. Changing the conn's
// deadlines or closing it breaks the session.
func (s *UDPSession) Control(f func(conn net.PacketConn) error) error {
	return f(s.conn)
}
