package kcp

// The session's side of NAT rebinding (listener_rebind.go): a dialled
// session answers path challenges; a listener session sends them to a
// candidate address and, once the listener proved that address, sends
// everything there.

import (
	"encoding/binary"
	"net/netip"
)

// pathSignalInput handles a path signal from the peer. A dialled session
// answers a challenge with a response echoing its bytes, sent where it
// sends everything; a listener session ignores path signals from its peer's
// current address (responses from new addresses are the listener's,
// challenges are never sent by clients). Malformed ones are counted as
// KCPInErrors. Caller holds mu.
func (s *UDPSession) pathSignalInput(p []byte) {
	if len(p) < pathSignalLen || binary.LittleEndian.Uint16(p[6:]) != pathSignalLen ||
		binary.LittleEndian.Uint32(p[8:]) != s.conv {
		s.pend.KCPInErrors++
		return
	}
	if s.l != nil || p[12] != pathSigChallenge {
		return
	}
	b := getBuffer()
	putPathSignal((*b)[s.cryptHdr:], s.conv, pathSigResponse, p[13:21])
	s.enqueue(b, (*b)[:s.cryptHdr+pathSignalLen])
}

// putPathSignal writes a path signal of kind carrying data (8 bytes) into b.
func putPathSignal(b []byte, conv uint32, kind byte, data []byte) {
	binary.LittleEndian.PutUint32(b, 0xFFFFFFFF)
	binary.LittleEndian.PutUint16(b[4:], typePath)
	binary.LittleEndian.PutUint16(b[6:], pathSignalLen)
	binary.LittleEndian.PutUint32(b[8:], conv)
	b[12] = kind
	copy(b[13:21], data)
}

// queuePathChallenge queues a path challenge to ap, a candidate address of
// the peer, outside the session's own queue (which goes to the peer's
// current address). The listener already charged it to ap's budget.
func (s *UDPSession) queuePathChallenge(ap netip.AddrPort, token [8]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released || len(s.ctlTx) >= pathSlots*pathMaxChallenges {
		return
	}
	b := getBuffer()
	putPathSignal((*b)[s.cryptHdr:], s.conv, pathSigChallenge, token[:])
	s.queueCtlLocked(outPacket{b: (*b)[:s.cryptHdr+pathSignalLen], to: ap}, b)
}

// queueCtlLocked queues pkt (unsealed, in pooled buffer b) on the side list
// that takeTx sends ahead of txq and outside the amplification budget.
// Caller holds mu.
func (s *UDPSession) queueCtlLocked(pkt outPacket, b *[]byte) {
	s.ctlTx = append(s.ctlTx, pkt)
	s.ctlBufs = append(s.ctlBufs, b)
	if !s.txReady {
		s.txReady = s.sq.add(s, true)
	}
}

// takeCtlLocked moves the queued path challenges into q's batch, unsealed,
// and returns how many. Caller holds mu (takeTx).
func (s *UDPSession) takeCtlLocked(q *sendQueue) int {
	n := len(s.ctlTx)
	q.batch = append(q.batch, s.ctlTx...)
	q.bufs = append(q.bufs, s.ctlBufs...)
	clear(s.ctlTx)
	clear(s.ctlBufs)
	s.ctlTx, s.ctlBufs = s.ctlTx[:0], s.ctlBufs[:0]
	return n
}

// pathMoved points the send path at ap, the peer's proven new address, and
// sends what is in flight again at once: whatever went to the old address
// during the move was lost.
func (s *UDPSession) pathMoved(ap netip.AddrPort) {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return
	}
	s.remoteAP = ap
	now := s.kcp.clock()
	s.kcp.pathChanged(now)
	s.kcp.flush(now, IKCP_FLUSH_FULL)
	s.mu.Unlock()
	s.wake()
}
