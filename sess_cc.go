package kcp

import "time"

// sessionClocks gives a session's core its two clocks, read from one
// start: the ms clock of KCP's timers and wire ts, and the µs clock its
// congestion control samples rates and RTTs on and paces by (usAt). The µs
// clock is 64 bits, from the monotonic clock, so it never wraps or steps
// back, however long the session lives.
func sessionClocks(k *KCP) {
	start := time.Now()
	k.clock = func() uint32 { return uint32(time.Since(start).Milliseconds()) }
	k.cc.clockUs = func() uint64 { return uint64(time.Since(start).Microseconds()) }
}

// SetCongestionControl selects how the session decides how fast to send:
//
//   - "kcp" (the default): KCP's own congestion window, as kcp-go's; the
//     same as SetNoDelay with nc 0.
//   - "none": no congestion control, as SetNoDelay with nc 1 (kcptun's
//     presets): the send window and the peer's window alone bound what is
//     in flight, unpaced.
//   - "bbr": a BBR controller that measures the path's bottleneck bandwidth
//     and minimum RTT and paces at that rate. It keeps the bottleneck queue
//     short, shares a bottleneck evenly with other BBR flows, and random
//     loss does not slow it (beyond the lost share). Give it windows
//     (SetWindowSize, on both ends) of at least twice the path's BDP in
//     segments: they still cap what is in flight.
//   - "cubic": CUBIC (RFC 9438), loss-based and TCP-friendly, paced.
//
// A controller only changes when this side sends; the wire stays KCP, so
// the peer may be any KCP implementation. The controller's pacing rate is
// further capped by SetRateLimit. Switching restarts the controller's model;
// data already queued is kept. While "bbr" or "cubic" is selected,
// SetNoDelay's nc has no effect. An unknown name returns
// ErrUnknownCongestionControl and changes nothing. Safe for concurrent use.
func (s *UDPSession) SetCongestionControl(name string) error {
	s.mu.Lock()
	err := s.kcp.SetCongestionControl(name)
	if err == nil {
		s.applyRateLimit()
	}
	s.mu.Unlock()
	if err == nil {
		notify(s.chWrite)
		s.wake()
	}
	return err
}

// CongestionControl returns the name of the congestion controller in use:
// "kcp", "none" (which SetNoDelay's nc also selects), "bbr" or "cubic".
// Safe for concurrent use.
func (s *UDPSession) CongestionControl() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kcp.congestionControl()
}

// SetWriteQueueLimit bounds, in bytes, what Write may leave queued beyond
// the congestion window: once more than bytes wait to be admitted, Write
// blocks (honouring the write deadline) until the window takes them. 0, the
// default, sets the bound to four windows (the least of the congestion,
// send and peer windows) and at least 64 KiB. Write also blocks, as in
// kcp-go, once the send window's worth of segments is queued or in flight.
// Write queues a large buffer in steps that keep within the bound (in
// message mode a message is queued whole, so the bound may be passed by one
// message). Negative values are taken as 0. Safe for concurrent use.
func (s *UDPSession) SetWriteQueueLimit(bytes int) {
	s.mu.Lock()
	s.kcp.setWriteLimit(bytes)
	s.mu.Unlock()
	notify(s.chWrite)
}

// writeCursor is how far one WriteBuffers call has queued its buffers.
type writeCursor struct {
	v   [][]byte
	i   int // the buffer being queued
	off int // bytes of v[i] already queued
}

// done reports that every buffer is queued.
func (c *writeCursor) done() bool {
	for c.i < len(c.v) && c.off == len(c.v[c.i]) {
		c.i, c.off = c.i+1, 0
	}
	return c.i == len(c.v)
}

// queueStepLocked queues from cur as much as the core's write room
// allows now and returns the bytes queued (0: no room). In stream mode it
// splits anywhere, so the bytes queued beyond the window never pass the
// write bound. In message mode each buffer goes as messages of at most
// maxMessageSize bytes, each queued whole: the first one whenever there is
// room at all, then more while they fit, so the bound is passed by at most
// one message. Caller holds mu.
func (s *UDPSession) queueStepLocked(cur *writeCursor) int {
	room := s.kcp.writeRoom()
	if room <= 0 {
		return 0
	}
	chunk := s.kcp.maxMessageSize()
	if chunk <= 0 {
		chunk = s.kcp.segmentSize()
	}
	n := 0
	for !cur.done() {
		b := cur.v[cur.i][cur.off:]
		size := min(len(b), chunk)
		if s.kcp.stream {
			size = min(size, room-n)
		} else if n > 0 && size > room-n {
			break
		}
		if size <= 0 {
			break
		}
		s.kcp.Send(b[:size])
		n += size
		cur.off += size
	}
	return n
}
