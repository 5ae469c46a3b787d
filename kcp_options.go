package kcp

// The core's settings, and the accessors the session layer reads them
// through.

// SetMtu sets the largest datagram the core emits, in bytes, including the
// 24-byte segment header (default 1400). It returns 0, or -1 when mtu is not
// above 24; the setting is unchanged then. Set it before sending: segments
// already queued keep their size.
func (kcp *KCP) SetMtu(mtu int) int {
	if mtu <= IKCP_OVERHEAD {
		return -1
	}
	kcp.mtu = uint32(mtu)
	kcp.mss = kcp.mtu - IKCP_OVERHEAD
	kcp.giveFlushBuf() // the next flush takes one of the new size
	return 0
}

// ResetRTO makes every unacknowledged segment in flight due for
// retransmission at the next flush, its timeout set back to the current RTO
// estimate, undoing the back-off of earlier timeouts (kcp-go v5.7). It sends
// nothing itself. The retransmissions count as timeouts (LostSegs) and shrink
// the congestion window, as kcp-go's do.
func (kcp *KCP) ResetRTO() { kcp.resetRTO(kcp.clock()) }

func (kcp *KCP) resetRTO(current uint32) {
	for i := range kcp.sndBuf.len() {
		if seg := kcp.sndBuf.at(i); !seg.acked {
			seg.rto = kcp.rxRto
			seg.resendts = current
		}
	}
}

// NoDelay tunes latency: nodelay 1 lowers the minimum RTO to 30 ms and halves
// the RTO back-off; interval is the flush interval in ms (clamped to
// 10..5000, default 100); resend is the number of skipping ACKs that trigger
// a fast retransmit (0 disables it and kcp-go's early retransmit, default);
// nc 1 turns congestion control off (SetCongestionControl "none"; nc 0 is
// "kcp"); while SetCongestionControl selected "bbr" or "cubic", nc has no
// effect. A negative argument leaves that setting alone. It returns 0.
func (kcp *KCP) NoDelay(nodelay, interval, resend, nc int) int {
	if nodelay >= 0 {
		kcp.nodelay = uint32(nodelay)
		if nodelay != 0 {
			kcp.rxMinrto = IKCP_RTO_NDL
		} else {
			kcp.rxMinrto = IKCP_RTO_MIN
		}
	}
	if interval >= 0 {
		kcp.interval = uint32(min(max(interval, 10), 5000))
	}
	if resend >= 0 {
		kcp.fastresend = int32(resend)
	}
	if nc >= 0 {
		kcp.nocwnd = nc != 0
	}
	return 0
}

// WndSize sets the send and receive windows in segments (defaults 32 and
// 32); a value <= 0 leaves that window alone. The receive window is capped
// at 65535, the most the wire can advertise. When the receive window grows,
// the new window is reported to the peer at the next flush. It returns 0.
func (kcp *KCP) WndSize(sndwnd, rcvwnd int) int {
	if sndwnd > 0 {
		kcp.sndWnd = uint32(sndwnd)
	}
	if rcvwnd > 0 {
		wnd := uint32(min(rcvwnd, maxWindow))
		if wnd > kcp.rcvWnd && kcp.spoke {
			// The peer saw the smaller window in our segments; tell it.
			// Before our first datagram there is nothing to correct: that
			// datagram carries the new window (and a lone window report
			// would reach a listener that knows no session yet).
			kcp.probe |= IKCP_ASK_TELL
		}
		kcp.rcvWnd = wnd
		kcp.moveReady()
	}
	return 0
}

// WaitSnd returns the number of segments queued or in flight.
func (kcp *KCP) WaitSnd() int { return kcp.sndBuf.len() + kcp.sndQueue.len() }

// SetLogger sends the trace events selected by mask to logger; a nil logger
// turns tracing off. Tracing costs nothing while off.
func (kcp *KCP) SetLogger(mask KCPLogType, logger logoutput_callback) {
	if logger == nil {
		kcp.logmask, kcp.log = 0, nil
		return
	}
	kcp.logmask, kcp.log = mask, logger
}

// convID returns the conversation id.
func (kcp *KCP) convID() uint32 { return kcp.conv }

// rtoMs returns the current retransmission timeout in ms.
func (kcp *KCP) rtoMs() uint32 { return kcp.rxRto }

// srttMs returns the smoothed RTT in ms (0 before the first sample).
func (kcp *KCP) srttMs() int32 { return kcp.rxSrtt }

// rttVarMs returns the RTT variation in ms.
func (kcp *KCP) rttVarMs() int32 { return kcp.rxRttvar }

// dead reports whether a segment reached the dead-link transmission count.
func (kcp *KCP) dead() bool { return kcp.state == deadState }

// sendWindow returns the send window in segments.
func (kcp *KCP) sendWindow() int { return int(kcp.sndWnd) }

// recvWindow returns the receive window in segments.
func (kcp *KCP) recvWindow() int { return int(kcp.rcvWnd) }

// segmentSize returns the payload bytes per segment, mtu - 24.
func (kcp *KCP) segmentSize() int { return int(kcp.mss) }

// setStream switches between stream mode (on) and message mode.
func (kcp *KCP) setStream(on bool) { kcp.stream = on }

// maxMessageSize returns the largest message, in bytes, that both ends can
// reassemble in message mode: mss * min(255, our receive window, the largest
// window the peer advertised). Send itself checks only the first two (as C
// KCP does); a kcp-go peer with a 32-segment window could never complete a
// message of more fragments, so the session splits writes at this size.
func (kcp *KCP) maxMessageSize() int {
	return int(kcp.mss) * min(maxFragments, int(kcp.rcvWnd), int(kcp.rmtWndMax))
}

// maxMessageSizeLocal is maxMessageSize as far as this end decides it:
// mss * min(255, our receive window), whatever the peer's window.
func (kcp *KCP) maxMessageSizeLocal() int {
	return int(kcp.mss) * min(maxFragments, int(kcp.rcvWnd))
}

// peerHeard reports that a segment of the peer arrived, so rmtWndMax holds a
// window the peer advertised.
func (kcp *KCP) peerHeard() bool { return kcp.heard }

// askWindow makes the next flush send a window probe (IKCP_CMD_WASK), which
// the peer answers with its window (IKCP_CMD_WINS).
func (kcp *KCP) askWindow() { kcp.probe |= IKCP_ASK_SEND }

// sendNext returns snd_nxt: the sn the next new segment will get.
func (kcp *KCP) sendNext() uint32 { return kcp.sndNxt }

// recvNext returns rcv_nxt: the next sn expected in order.
func (kcp *KCP) recvNext() uint32 { return kcp.rcvNxt }

// recvQueued returns how many segments wait in the receive queue (0: nothing
// readable).
func (kcp *KCP) recvQueued() int { return kcp.rcvQueue.len() }

// queueLens returns the lengths of the send queue, receive queue and send
// buffer, for the Snmp gauges.
func (kcp *KCP) queueLens() (sndQueue, rcvQueue, sndBuf int) {
	return kcp.sndQueue.len(), kcp.rcvQueue.len(), kcp.sndBuf.len()
}

// takeStats returns the counters accumulated since the last call and zeroes them.
func (kcp *KCP) takeStats() coreStats {
	s := kcp.stats
	kcp.stats = coreStats{}
	return s
}

// quiet reports that the core has nothing to do until the next Send or
// Input: nothing queued or in flight, no ACK and no window probe pending.
// A session may then stop flushing on every interval.
func (kcp *KCP) quiet() bool {
	return kcp.sndQueue.len() == 0 && kcp.sndBuf.len() == 0 && len(kcp.acklist) == 0 && kcp.probe == 0
}

// intervalMs is the flush interval in ms.
func (kcp *KCP) intervalMs() uint32 { return kcp.interval }

// dropBuffers lets go of every payload the core holds (queued, in flight,
// received, and the free list) for a session that is done. The core stays
// consistent, as if nothing had been sent or received since its sequence
// numbers, so a late call into it is harmless.
func (kcp *KCP) dropBuffers() {
	kcp.sndQueue.clear()
	kcp.sndBuf.clear()
	kcp.rcvQueue.clear()
	kcp.rcvOff = 0
	kcp.rcvBuf.clear()
	kcp.rcvMsgEnds = 0
	kcp.sndUna = kcp.sndNxt
	kcp.ccUnackedReset()
	kcp.obs.dropObs()
	kcp.acklist = nil
	kcp.free = nil
	kcp.freeSmall = nil
	kcp.giveFlushBuf()
}
