package kcp

// Message size and the peer's window.
//
// In message mode Write cuts b into messages of at most
// KCP.maxMessageSize(): the segment size times the smallest of 255, our
// receive window and the largest window the peer advertised. A receiver
// reassembles a message only once all its fragments fit in its receive
// queue, so a message of more fragments than the peer's window would never
// be delivered. Until the peer has spoken, its window is the default (32
// segments), which would split every larger write, even towards a C KCP
// peer (receive window 128 by default) that could take it whole.
//
// So the first Write that the peer's window could change asks for it: a
// window probe (IKCP_CMD_WASK, which C KCP, kcp-go and kcpx answer with
// IKCP_CMD_WINS carrying their window) goes out, again after each RTO
// (doubling), and Write waits for any segment of the peer before it cuts
// the messages. The wait ends at the write deadline (Write then fails with
// os.ErrDeadlineExceeded, nothing queued) or, without one, after
// peerWindowWait; then Write cuts at the default window as before.

import "time"

// peerWindowWait bounds how long a Write waits for the peer's window when
// no write deadline is set; a peer silent that long gets messages cut at
// the default window (32 segments).
const peerWindowWait = 3 * time.Second

// needPeerWindowLocked reports whether the peer's window, once heard, could
// change how v is cut into messages. Caller holds mu.
func (s *UDPSession) needPeerWindowLocked(v [][]byte) bool {
	if s.kcp.stream || s.kcp.peerHeard() {
		return false
	}
	cur := s.kcp.maxMessageSize()
	if s.kcp.maxMessageSizeLocal() <= cur {
		return false
	}
	for _, b := range v {
		if len(b) > cur {
			return true
		}
	}
	return false
}

// awaitPeerWindow waits, for a message-mode write of v, until the peer's
// window is known, as the comment at the top of this file describes. It
// returns errTimeout if the write deadline passes first, and nil otherwise
// (closed and broken sessions are reported by the caller).
func (s *UDPSession) awaitPeerWindow(v [][]byte) error {
	s.mu.Lock()
	need := s.needPeerWindowLocked(v)
	s.mu.Unlock()
	if !need {
		return nil
	}
	// chWrite wakes on every datagram of the peer (input notifies it
	// while the send window has room, as it has before our first message);
	// pass the token on when we leave, for a writer that needed it.
	defer notify(s.chWrite)

	backoff := s.askPeerWindow()
	resend := time.NewTimer(backoff)
	defer resend.Stop()
	giveUp := time.NewTimer(peerWindowWait)
	defer giveUp.Stop()
	for {
		select {
		case <-s.chWrite:
		case <-resend.C:
			s.askPeerWindow()
			backoff = min(2*backoff, peerWindowWait)
			resend.Reset(backoff)
		case <-giveUp.C:
			return nil
		case <-s.wd.wait():
			return errTimeout
		case <-s.die:
			return nil
		case <-s.broken:
			return nil
		}
		s.mu.Lock()
		need = s.needPeerWindowLocked(v) && !s.closing
		s.mu.Unlock()
		if !need {
			return nil
		}
	}
}

// askPeerWindow sends a window probe now and returns the current RTO, the
// wait before the next one.
func (s *UDPSession) askPeerWindow() time.Duration {
	s.mu.Lock()
	s.kcp.askWindow()
	s.kcp.flush(s.kcp.clock(), IKCP_FLUSH_ACKONLY)
	rto := time.Duration(s.kcp.rtoMs()) * time.Millisecond
	s.mu.Unlock()
	s.wake()
	return rto
}
