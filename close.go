package kcp

// The end of a session: Close, the close signal (FIN/FINACK) that lets the
// peer's Read return io.EOF once every byte arrived, and the release of
// everything a session holds. update (sess.go) drives the handshake through
// closeStepLocked: it sends the FIN once the data is acknowledged (or at once
// when the peer closed too), resends it with back-off, and releases the
// session when the FIN is answered, the peer's FIN was answered and a short
// grace passed, the link failed, or the linger bound passed.

import (
	"encoding/binary"
	"math"
	"time"
)

const (
	// typeClose marks the session-level close signal (README, "Wire format"):
	// seqid 0xFFFFFFFF | type 0x00F4 | size 21 | conv | kind | finalSn |
	// token. At 21 bytes it is shorter than a KCP segment, so kcp-go ignores
	// it. The token binds the signal to this conversation (kcp_proof.go,
	// closeToken): the last ts the sender saw on the receiver's PUSH
	// segments (kind has closeTokenEcho set), or, before it saw any, its own
	// ts stamp, which the receiver checks against the stamps it received. A
	// FIN recorded in an earlier conversation with the same conv carries a
	// token of other random ts offsets and is ignored. The 17-byte signal of
	// earlier kcpx versions carried no token; it is ignored too, so their
	// Close falls back to the linger bound. (Exception: closingUntokenedLocked.)
	typeClose      = 0xf4
	closeSignalLen = 21
	closeFIN       = 1
	closeFINACK    = 2
	closeTokenEcho = 0x10 // kind flag: the token echoes the receiver's ts

	// defaultLinger bounds how long a closed session keeps retransmitting
	// its queued data and its FIN.
	defaultLinger = 5 * time.Second

	// finBackoffMin and finBackoffMax bound the FIN retransmission period
	// (ms).
	finBackoffMin = 100
	finBackoffMax = 1000
)

// Close closes the session. Blocked and later Read and Write calls return
// at once, with an error matching net.ErrClosed and io.ErrClosedPipe; Close
// then lingers, as a TCP socket with SO_LINGER does, so that a program
// that writes, closes and exits loses nothing. Data already written is
// retransmitted until the peer acknowledged it, then a close signal (FIN)
// is sent until the peer answers, so the peer's Read returns every byte and
// then io.EOF. Close returns once:
//
//   - the peer acknowledged everything written and answered the FIN;
//   - the peer acknowledged everything written and its answer to the FIN
//     did not come within 3 RTOs (200 ms to 1 s): a peer that knows no close
//     signal (kcp-go, earlier kcpx) or lost answers;
//   - the peer had closed too (its Read ended: what it has not acknowledged
//     would not be read);
//   - the link failed: dead link, idle timeout, a socket error, or (a
//     dialled session on its own socket) an ICMP port unreachable, which
//     says the peer's socket is gone; or
//   - the linger bound passed (SetLinger, default 5 s), whatever is left.
//
// It returns at once when SetLinger(0) was called, when the link had
// already failed, and when nothing was ever sent or received. What is left
// when Close returns (the FIN's retransmissions, data the bound cut short)
// carries on in the background until the linger bound, then every resource
// is released. It returns nil; closing twice, or after the listener closed
// the session, returns the closed error at once, without waiting.
//
// Sessions of a Listener and on a caller's conn (NewConn, ServeConn) wait
// the same way, on the caller's goroutine only: the socket's reader and
// sender go on serving. Because Close waits for that reader to bring
// ACKs, do not call it from an OOB handler or a read notification
// (SetReadNotify), which run on the reader, unless SetLinger(0) was called
// first.
func (s *UDPSession) Close() error {
	if !s.closeDie() {
		return errClosed
	}
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return nil
	}
	now := s.kcp.clock()
	s.publishLocked()
	s.closing = true
	if s.tracer != nil {
		s.traceState(StateClosing)
	}
	s.lingerEnd = now + uint32(s.linger/time.Millisecond)
	s.finNext = now
	s.finBackoff = max(finBackoffMin, min(s.kcp.rtoMs(), finBackoffMax))
	if s.kcp.WaitSnd() == 0 {
		s.sendFinLocked(now)
	} else {
		s.kcp.flush(now, IKCP_FLUSH_FULL)
	}
	s.settleLocked(now)
	if s.rx != nil {
		s.rx.lingering.Store(true) // a refusal now means the peer is gone
	}
	linger := s.linger
	wait := linger > 0 && s.brokenErr == nil && (s.heard || s.kcp.sendNext() != 0)
	s.mu.Unlock()
	s.wake()
	if wait {
		t := time.NewTimer(linger)
		select {
		case <-s.settled:
		case <-s.broken:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// closeStepLocked advances the close handshake of a closing session at
// time now, given the link's failure (nil while it works). It sends the FIN
// once our data is acknowledged, or at once when the peer closed too (it
// reads nothing more, but its session waits for a FIN or FINACK from us),
// and resends it with back-off. It reports whether the session is done and
// may be released, and otherwise how many ms may pass before it must run
// again (math.MaxUint32: nothing of its own is due). Caller holds mu.
func (s *UDPSession) closeStepLocked(now uint32, fail error) (release bool, wait uint32) {
	finDue := s.kcp.WaitSnd() == 0 || s.peerFin
	switch {
	case fail != nil || s.brokenErr != nil || int32(now-s.lingerEnd) >= 0:
		return true, 0
	case s.finAcked && finDue:
		return true, 0
	case s.peerFin && int32(now-s.peerFinAt) >= int32(s.peerFinGrace()):
		// Our FIN went unanswered; we stayed long enough to answer a
		// retransmitted FIN of the peer.
		return true, 0
	case finDue && int32(now-s.finNext) >= 0:
		s.sendFinLocked(now)
	}
	s.settleLocked(now)
	if !finDue {
		return false, math.MaxUint32
	}
	wait = max(1, s.finNext-now)
	if !s.settledDone {
		// Close waits for the FIN's answer until then.
		wait = min(wait, max(1, s.finAt+s.peerFinGrace()-now))
	}
	return false, wait
}

// sendFinLocked queues the FIN (the first one fixes its final sn) and
// schedules its retransmission with back-off. Caller holds mu.
func (s *UDPSession) sendFinLocked(now uint32) {
	if !s.finSent {
		s.finSent, s.finSn, s.finAt = true, s.kcp.sendNext(), now
	}
	s.queueCloseSignal(closeFIN, s.finSn)
	s.finNext = now + s.finBackoff
	s.finBackoff = min(s.finBackoff*2, finBackoffMax)
}

// settleLocked lets a waiting Close return once there is nothing more worth
// waiting for (see Close): the peer closed, or our data is acknowledged and
// the FIN answered or unanswered for peerFinGrace. release settles too.
// Caller holds mu.
func (s *UDPSession) settleLocked(now uint32) {
	if s.settledDone || !s.closing {
		return
	}
	switch {
	case s.peerFin:
	case s.finAcked && s.kcp.WaitSnd() == 0:
	case s.finSent && s.kcp.WaitSnd() == 0 && int32(now-s.finAt) >= int32(s.peerFinGrace()):
	default:
		return
	}
	s.settledDone = true
	close(s.settled)
}

// queueCloseSignal queues a FIN or FINACK. Caller holds mu.
func (s *UDPSession) queueCloseSignal(kind byte, sn uint32) {
	p := getBuffer()
	b := (*p)[s.cryptHdr:]
	binary.LittleEndian.PutUint32(b, 0xFFFFFFFF)
	binary.LittleEndian.PutUint16(b[4:], typeClose)
	binary.LittleEndian.PutUint16(b[6:], closeSignalLen)
	binary.LittleEndian.PutUint32(b[8:], s.conv)
	token, echo := s.kcp.closeToken(s.kcp.clock())
	if echo {
		kind |= closeTokenEcho
	}
	b[12] = kind
	binary.LittleEndian.PutUint32(b[13:], sn)
	binary.LittleEndian.PutUint32(b[17:], token)
	s.enqueue(p, (*p)[:s.cryptHdr+closeSignalLen])
}

// closeSignalInput handles a FIN or FINACK. One that is malformed, of
// another conv, without this conversation's token, or (FIN) with a final
// sn outside [rcv_nxt, rcv_nxt + receive window] is ignored and counted
// (Snmp.KCPInErrors). Caller holds mu.
func (s *UDPSession) closeSignalInput(p []byte) {
	if len(p) < closeSignalLen ||
		binary.LittleEndian.Uint16(p[6:]) != closeSignalLen ||
		binary.LittleEndian.Uint32(p[8:]) != s.conv ||
		!s.kcp.closeTokenOK(s.kcp.clock(), binary.LittleEndian.Uint32(p[17:]), p[12]&closeTokenEcho != 0) && !s.closingUntokenedLocked() {
		s.kcp.stats.BadCloseSignals++
		s.pend.KCPInErrors++
		return
	}
	sn := binary.LittleEndian.Uint32(p[13:])
	switch p[12] &^ closeTokenEcho {
	case closeFIN:
		if d := int32(sn - s.kcp.recvNext()); d < 0 || d > int32(s.kcp.recvWindow()) {
			// Says the data ended before what we already hold, or beyond
			// anything the peer could have sent into our window.
			s.kcp.stats.BadCloseSignals++
			s.pend.KCPInErrors++
			return
		}
		if !s.peerFin {
			s.peerFin, s.peerFinSn, s.peerFinAt = true, sn, s.kcp.clock()
		}
		s.queueCloseSignal(closeFINACK, sn)
	case closeFINACK:
		if s.finSent && sn == s.finSn {
			s.finAcked = true
		}
	}
	s.settleLocked(s.kcp.clock())
}

// closingUntokenedLocked reports whether a close signal without a token we
// can check may still be taken: we are closing, no PUSH crossed either way
// (so neither end can prove a token to the other: each would otherwise
// ignore the other's FIN and FINACK and linger to the bound), and nothing
// of ours is left to deliver. A forged signal then only ends a linger that
// has nothing to wait for. Caller holds mu.
func (s *UDPSession) closingUntokenedLocked() bool {
	return s.closing && !s.kcp.peerTsSeen && s.kcp.sendNext() == 0 && s.kcp.WaitSnd() == 0
}

// peerFinGrace is how long (ms) a closed session whose peer closed too
// stays to answer a retransmitted FIN, unless its own FIN is answered first:
// long enough for the peer's first FIN retransmission (its back-off starts
// at about one RTO, at least finBackoffMin), within 200..1000 ms. Caller
// holds mu.
func (s *UDPSession) peerFinGrace() uint32 {
	return min(max(3*max(s.kcp.rtoMs(), finBackoffMin), 200), 1000)
}

// closeDie marks the session closed for its user.
func (s *UDPSession) closeDie() bool {
	first := false
	s.dieOnce.Do(func() {
		first = true
		close(s.die)
	})
	if first {
		s.callReadNotify()
	}
	return first
}

// release frees everything the session holds: it is unscheduled, forgotten
// by its listener, its read loop stops and its pooled buffers go back (those
// of datagrams still queued once the sender has written them).
func (s *UDPSession) release() {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return
	}
	s.released = true
	if !s.settledDone {
		s.settledDone = true
		close(s.settled)
	}
	if s.tracer != nil {
		s.traceState(StateClosed)
	}
	s.publishLocked()
	// A released session may stay reachable for a while (a scheduled
	// update, the application's own references): keep only its shell.
	s.kcp.dropBuffers()
	s.rpart = false
	s.mu.Unlock()

	s.closeDie()
	s.rd.stop()
	s.wd.stop()
	DefaultSnmp.connClosed()
	if s.l != nil {
		s.l.forget(s)
		return
	}
	// The sender writes what is still queued (a FIN, say), then lets go of
	// the socket: closing it if it is ours, or, for the caller's, waking our
	// read loop with a deadline in the past (the loop clears it on its way
	// out, so the conn can serve again).
	s.sq.close(func() { letGoConn(s.conn, s.ownConn, s.pusher) })
}

// abort closes the session at once, without draining: for Listener.Close
// and a session replaced by a new conv. A FIN still goes out, twice (nothing
// will resend it), so the peer stops waiting for us, in Read and in a
// lingering Close; it carries the sn we stopped at, so the peer's Read
// reports io.EOF only if nothing was lost on the way.
func (s *UDPSession) abort() {
	s.mu.Lock()
	if !s.released {
		s.finSent, s.finSn = true, s.kcp.sendNext()
		s.queueCloseSignal(closeFIN, s.finSn)
		s.queueCloseSignal(closeFIN, s.finSn)
	}
	s.mu.Unlock()
	s.release()
}
