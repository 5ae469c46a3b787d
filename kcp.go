package kcp

import (
	"encoding/binary"
	"time"
)

// coreStats counts what the core did since the last takeStats call. The
// session adds them to the package-wide Snmp once per batch.
type coreStats struct {
	InSegs, OutSegs, RetransSegs, FastRetransSegs, EarlyRetransSegs, LostSegs, RepeatSegs uint64
	// ForgedAcks counts segments ignored because their una or ACK sn lies
	// beyond anything sent (snd_nxt): a forged or corrupted acknowledgement.
	ForgedAcks uint64
	// BadTsAcks counts ACK segments ignored because the ts they echo is not
	// one our PUSH segments could have carried (see tsOffset).
	BadTsAcks uint64
	// BadCloseSignals counts close signals (close.go) the session ignored:
	// without this conversation's token or with a final sn outside the
	// window. The session counts them here so they surface with the rest.
	BadCloseSignals uint64
}

type ackItem struct{ sn, ts uint32 }

// KCP is the ARQ state machine of one KCP conversation: segmentation,
// acknowledgement, retransmission, windows and congestion control. It does
// no I/O: datagrams leave through the output callback and enter through
// Input. A KCP is not safe for concurrent use; the caller serialises calls.
type KCP struct {
	// identity and framing
	conv, mtu, mss uint32
	state          uint32 // 0 alive, deadState after the dead-link count

	// sequence space; sndBuf holds sndUna..sndNxt-1 in order
	sndUna, sndNxt, rcvNxt uint32

	// RTT estimation and congestion control
	rxRttvar, rxSrtt       int32
	rttSampled             bool
	rxRto, rxMinrto        uint32
	sndWnd, rcvWnd, rmtWnd uint32
	// rmtWndMax is the largest window the peer ever advertised: the best
	// estimate of its receive window, which bounds the messages it can
	// reassemble (IKCP_WND_RCV until the peer has spoken).
	rmtWndMax uint32
	// heard is set once a regular segment of the peer arrived: rmtWndMax is
	// then the peer's word rather than the default.
	heard bool
	// spoke is set once a datagram went out: only then does the peer hold a
	// view of our window that a larger one must correct (WndSize).
	spoke                bool
	cwnd, ssthresh, incr uint32
	lastWnd              uint32 // window carried by the last segment sent

	// window probing
	probe, tsProbe, probeWait uint32

	// timing and options
	interval, tsFlush uint32
	updated           bool
	nodelay           uint32
	deadLink          uint32
	fastresend        int32
	nocwnd            bool
	stream            bool

	// queues
	sndQueue   segRing   // waiting for the send window
	sndBuf     segRing   // in flight
	rcvQueue   segRing   // in order, waiting for Recv
	rcvBuf     recvSlots // received out of order
	rcvMsgEnds int       // segments with frg == 0 in rcvQueue
	rcvOff     int       // bytes of rcvQueue's head segment recvPart has read
	acklist    []ackItem
	free       [][]byte // payload buffers for reuse, each with cap >= mss
	freeSmall  [][]byte // received-payload buffers for reuse, each with cap smallBuf

	buffer []byte // datagram being assembled by flush
	output output_callback
	// sink, when set (sessions), lends the buffer flush assembles in and
	// takes each datagram instead of output (kcp_sink.go).
	sink  flushSink
	clock func() uint32 // ms clock read by Update, Check and Input

	logmask KCPLogType
	log     logoutput_callback

	stats coreStats
	obs   coreObs // measurements for SessionStats and the tracer (kcp_obs.go)

	// tracer, when set, hears of losses, retransmissions and metric
	// changes (trace.go); every call site is guarded by a nil check.
	tracer Tracer

	// congestion control beyond the legacy cwnd, delivery-rate sampling
	// and the write bound (kcp_cc.go)
	cc ccCore

	// Proof that the peer receives (hostile input, issue 13). Every PUSH
	// carries ts = tsOffset + clock; a peer only echoes ts, so the offset
	// costs nothing on the wire, and an ACK can echo a plausible ts only if
	// whoever sent it saw our PUSH. tsOffset is 0 for a bare KCP (the bytes
	// stay those of C KCP); sessions draw a random one (setTsOffset).
	tsOffset uint32
	tsStart  uint32 // clock at the first PUSH sent; valid once tsSent
	tsSent   bool
	valid    bool // an ACK echoed a plausible ts: the peer proved it receives
	// The ts the peer's PUSH segments carried (its clock plus its offset),
	// for the close signal's token (close.go): the last one and the first
	// and last seen, with our clock when the last arrived.
	peerTsSeen                            bool
	peerTsFirst, peerTsLast, peerTsLastAt uint32

	// persist limit: a peer that advertises a zero window while we have data
	// for it is given up after persistLimit ms (0: never).
	persistLimit uint32
	zeroWnd      bool
	zeroSince    uint32

	// pacing (setPace): a token bucket over the µs clock, in micro-bytes. A
	// segment is released only while tokens remain, and its RTO starts when
	// it is released, so a paced segment never times out while it waits.
	// Datagrams that carry data are charged; ACK-only ones are not, so
	// acknowledging a fast peer never starves our own data.
	paceRate   uint32 // bytes per second; 0 turns pacing off
	paceExtra  int64  // bytes each datagram costs beyond its KCP bytes
	paceTokens int64  // may go below 0 by up to one datagram
	paceBurst  int64
	paceLast   uint64 // µs clock (usAt) of the last refill
	paceData   bool   // the datagram being assembled carries data: charge it
	paceHeld   bool   // the last flush left segments to the pacer
}

// NewKCP returns the state machine of conversation conv, with kcp-go's
// defaults: mtu 1400, windows 32/32, interval 100 ms, message mode,
// congestion control on. Both peers must use the same conv. output is called
// with every datagram to send; it must not call back into the KCP.
func NewKCP(conv uint32, output output_callback) *KCP {
	kcp := &KCP{
		conv:      conv,
		mtu:       IKCP_MTU_DEF,
		mss:       IKCP_MTU_DEF - IKCP_OVERHEAD,
		rxRto:     IKCP_RTO_DEF,
		rxMinrto:  IKCP_RTO_MIN,
		sndWnd:    IKCP_WND_SND,
		rcvWnd:    IKCP_WND_RCV,
		rmtWnd:    IKCP_WND_RCV,
		rmtWndMax: IKCP_WND_RCV,
		lastWnd:   IKCP_WND_RCV,
		cwnd:      1,
		ssthresh:  IKCP_THRESH_INIT,
		interval:  IKCP_INTERVAL,
		tsFlush:   IKCP_INTERVAL,
		deadLink:  IKCP_DEADLINK,
		output:    output,

		persistLimit: defaultPersistLimit,
	}
	kcp.incr = kcp.mss
	// kcp.buffer and the reorder slots are taken when first needed
	// (kcp_trim.go), so an idle conversation holds neither.
	start := time.Now()
	kcp.clock = func() uint32 { return uint32(time.Since(start).Milliseconds()) }
	return kcp
}

// getBuf returns an empty payload buffer with room for max(n, mss) bytes,
// reusing a free one when it is large enough.
func (kcp *KCP) getBuf(n int) []byte {
	need := max(n, int(kcp.mss))
	for len(kcp.free) > 0 {
		last := len(kcp.free) - 1
		b := kcp.free[last]
		if cap(b) < int(kcp.mss) { // from before SetMtu grew the mss
			kcp.free[last] = nil
			kcp.free = kcp.free[:last]
			continue
		}
		if cap(b) < need { // a peer's larger segment: keep b for ours
			break
		}
		kcp.free[last] = nil
		kcp.free = kcp.free[:last]
		return b[:0]
	}
	return newPayload(need)
}

// smallBuf is the capacity of the buffers that hold received payloads of up
// to smallBuf bytes, so that tiny segments from a peer cannot each pin a
// full mss buffer (a 25-byte ACK-sized PUSH costs 128 bytes, not 1,376).
const smallBuf = 128

// getRecvBuf returns an empty buffer for a received payload of n bytes: a
// small pooled one for up to smallBuf bytes, else an mss one (getBuf).
// Both come from free lists, so a warm session allocates nothing.
func (kcp *KCP) getRecvBuf(n int) []byte {
	if n > smallBuf || smallBuf >= int(kcp.mss) {
		return kcp.getBuf(n)
	}
	if last := len(kcp.freeSmall) - 1; last >= 0 {
		b := kcp.freeSmall[last]
		kcp.freeSmall[last] = nil
		kcp.freeSmall = kcp.freeSmall[:last]
		return b[:0]
	}
	return newSmallPayload()
}

// putBuf keeps a payload buffer for reuse, up to a bound tied to the windows.
func (kcp *KCP) putBuf(b []byte) {
	if cap(b) == smallBuf {
		if len(kcp.freeSmall) < int(kcp.rcvWnd)*2+64 {
			kcp.freeSmall = append(kcp.freeSmall, b[:0])
		}
		return
	}
	if b == nil || cap(b) < int(kcp.mss) {
		return
	}
	if len(kcp.free) >= int(kcp.sndWnd+kcp.rcvWnd)*2+64 {
		return
	}
	kcp.free = append(kcp.free, b[:0])
}

// putHeader writes a segment header into b[:IKCP_OVERHEAD].
func putHeader(b []byte, conv uint32, cmd, frg uint8, wnd uint16, ts, sn, una, length uint32) {
	_ = b[IKCP_OVERHEAD-1]
	binary.LittleEndian.PutUint32(b[0:], conv)
	b[4] = cmd
	b[5] = frg
	binary.LittleEndian.PutUint16(b[6:], wnd)
	binary.LittleEndian.PutUint32(b[8:], ts)
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[16:], una)
	binary.LittleEndian.PutUint32(b[20:], length)
}

// PeekSize returns the size in bytes of the next complete message in the
// receive queue, or -1 when none is complete. In stream mode every segment
// is a message. Messages of zero bytes (which only a foreign sender can
// produce; Send refuses them) carry nothing and are discarded here, so they
// never block the data behind them.
func (kcp *KCP) PeekSize() int {
	for kcp.rcvMsgEnds > 0 {
		size, i := 0, 0
		for ; ; i++ {
			seg := kcp.rcvQueue.at(i)
			size += len(seg.data)
			if seg.frg == 0 {
				break
			}
		}
		if size > 0 {
			return size
		}
		for ; i >= 0; i-- {
			seg := kcp.rcvQueue.pop()
			kcp.putBuf(seg.data)
		}
		kcp.rcvMsgEnds--
		kcp.moveReady()
		kcp.noteWindowOpen()
	}
	return -1
}

// Recv copies the next complete message into buffer and returns its length.
// It returns -1 when no message is complete and -2 when buffer is shorter
// than PeekSize (nothing is consumed then).
func (kcp *KCP) Recv(buffer []byte) (n int) {
	size := kcp.PeekSize()
	if size < 0 {
		return -1
	}
	if size > len(buffer) {
		return -2
	}
	for kcp.rcvQueue.len() > 0 {
		seg := kcp.rcvQueue.pop()
		n += copy(buffer[n:], seg.data)
		kcp.putBuf(seg.data)
		if seg.frg == 0 {
			kcp.rcvMsgEnds--
			break
		}
	}
	if kcp.logmask&IKCP_LOG_RECV != 0 {
		kcp.log("recv", "conv", kcp.conv, "stream", kcp.stream, "len", n)
	}
	kcp.moveReady()
	kcp.noteWindowOpen()
	return n
}

// recvPart copies the next message, or as much of it as fits, straight
// from the receive queue into buffer, and reports whether it reached the
// message's end; the next call goes on where this one stopped. A session's
// Read uses it when the caller's buffer is shorter than the message, so
// each byte is copied once. Only whole segments leave the queue, so
// between calls PeekSize does not describe the message being read: the
// caller keeps track of one it has begun.
func (kcp *KCP) recvPart(buffer []byte) (n int, end bool) {
	for kcp.rcvQueue.len() > 0 && !end {
		seg := kcp.rcvQueue.at(0)
		c := copy(buffer[n:], seg.data[kcp.rcvOff:])
		n += c
		kcp.rcvOff += c
		if kcp.rcvOff < len(seg.data) {
			break // buffer full
		}
		done := kcp.rcvQueue.pop()
		kcp.rcvOff = 0
		kcp.putBuf(done.data)
		if done.frg == 0 {
			kcp.rcvMsgEnds--
			end = true
		}
	}
	kcp.moveReady()
	kcp.noteWindowOpen()
	return n, end
}

// noteWindowOpen schedules a window report (WINS) when the window has
// opened since the peer was last told it: from zero, or by at least half the
// receive window. A sender that saw a nearly full window otherwise keeps only
// that much in flight until our next ACK, which may wait a whole interval.
func (kcp *KCP) noteWindowOpen() {
	free := kcp.wndUnused()
	if (kcp.lastWnd == 0 && free > 0) || free >= kcp.lastWnd+kcp.rcvWnd/2 {
		kcp.probe |= IKCP_ASK_TELL
	}
}

// windowReportDue reports that a window report waits for the next flush;
// the session layer then flushes at once instead of at the next update.
func (kcp *KCP) windowReportDue() bool { return kcp.probe&IKCP_ASK_TELL != 0 }

// recvStream is Recv that, in stream mode, goes on copying whole segments
// while the next one fits in buffer, so one call drains up to len(buffer)
// bytes instead of one segment. In message mode it is Recv.
func (kcp *KCP) recvStream(buffer []byte) int {
	n := kcp.Recv(buffer)
	if n < 0 || !kcp.stream {
		return n
	}
	for {
		size := kcp.PeekSize()
		if size <= 0 || size > len(buffer)-n {
			return n
		}
		n += kcp.Recv(buffer[n:])
	}
}

// moveReady moves in-order segments from the reorder slots to the receive
// queue while the queue has room.
func (kcp *KCP) moveReady() {
	rb := &kcp.rcvBuf
	for rb.count > 0 && rb.have[rb.base] {
		if kcp.rcvQueue.len() >= kcp.rcvQueueLimit() {
			return
		}
		seg := rb.seg[rb.base]
		rb.seg[rb.base] = segment{}
		rb.have[rb.base] = false
		rb.base = (rb.base + 1) & (len(rb.seg) - 1)
		rb.count--
		kcp.rcvNxt++
		if seg.frg == 0 {
			kcp.rcvMsgEnds++
		}
		kcp.rcvQueue.push(seg)
	}
}

// Send queues buffer for transmission and returns 0, or a value below zero:
// -1 when buffer is empty, -2 when it needs more fragments than a message may
// have (in message mode: more than min(255, receive window), so the peer
// could never reassemble it; in stream mode: more than 255). Nothing is
// queued when Send fails. The bytes are copied.
func (kcp *KCP) Send(buffer []byte) int {
	if len(buffer) == 0 {
		return -1
	}
	if kcp.logmask&IKCP_LOG_SEND != 0 {
		kcp.log("send", "conv", kcp.conv, "stream", kcp.stream, "len", len(buffer))
	}
	mss := int(kcp.mss)
	fill := 0 // bytes that go into the last queued segment (stream mode)
	if kcp.stream && kcp.sndQueue.len() > 0 {
		if last := kcp.sndQueue.back(); len(last.data) < mss && cap(last.data) >= mss {
			fill = min(len(buffer), mss-len(last.data))
		}
	}
	count := (len(buffer) - fill + mss - 1) / mss
	limit := maxFragments
	if !kcp.stream {
		limit = min(maxFragments, int(kcp.rcvWnd))
	}
	if count > limit {
		return -2
	}
	if fill > 0 {
		last := kcp.sndQueue.back()
		last.data = append(last.data, buffer[:fill]...)
		buffer = buffer[fill:]
		kcp.ccQueued(fill)
	}
	for i := 0; i < count; i++ {
		size := min(len(buffer), mss)
		seg := segment{data: append(kcp.getBuf(size), buffer[:size]...)}
		if !kcp.stream {
			seg.frg = uint8(count - 1 - i)
		}
		kcp.sndQueue.push(seg)
		kcp.ccQueued(size)
		buffer = buffer[size:]
	}
	return 0
}

// updateRTT folds one RTT sample (ms) into srtt, rttvar and rto.
func (kcp *KCP) updateRTT(rtt int32) {
	kcp.obs.rttSample(rtt)
	if !kcp.rttSampled {
		kcp.rttSampled = true
		kcp.rxSrtt = rtt
		kcp.rxRttvar = rtt / 2
	} else {
		delta := rtt - kcp.rxSrtt
		if delta < 0 {
			delta = -delta
		}
		kcp.rxRttvar += (delta - kcp.rxRttvar) / 4
		kcp.rxSrtt += (rtt - kcp.rxSrtt) / 8
		if kcp.rxSrtt < 1 {
			kcp.rxSrtt = 1
		}
	}
	rto := uint32(kcp.rxSrtt) + max(kcp.interval, 4*uint32(kcp.rxRttvar))
	if kcp.cc.ctl != nil {
		// A controller may keep up to twice the BDP in flight, so the
		// RTT may double within a round (BBR's Startup does so) before
		// srtt follows: that must not fire spurious timeouts.
		rto = max(rto, 2*uint32(kcp.rxSrtt)+kcp.interval)
	}
	kcp.rxRto = min(max(rto, kcp.rxMinrto), IKCP_RTO_MAX)
}

// dropAckedFront removes acknowledged segments from the front of sndBuf and
// moves sndUna to the first one still unacknowledged.
func (kcp *KCP) dropAckedFront() {
	for kcp.sndBuf.len() > 0 && kcp.sndBuf.at(0).acked {
		kcp.sndBuf.pop()
		kcp.sndUna++
	}
}

// parseUna drops every segment below una, acknowledged at current, and
// returns how many were dropped.
func (kcp *KCP) parseUna(una, current uint32) int {
	d := int32(una - kcp.sndUna)
	if d <= 0 {
		return 0
	}
	n := min(int(d), kcp.sndBuf.len())
	for i := 0; i < n; i++ {
		seg := kcp.sndBuf.pop()
		if !seg.acked {
			kcp.ccAcked(&seg)
			kcp.obs.ack(len(seg.data))
		}
		kcp.putBuf(seg.data)
	}
	kcp.sndUna += uint32(n)
	kcp.dropAckedFront()
	return n
}

// parseAck marks segment sn acknowledged at current; it reports whether
// that was news.
func (kcp *KCP) parseAck(sn, current uint32) (int, bool) {
	i := int32(sn - kcp.sndUna)
	if i < 0 || int(i) >= kcp.sndBuf.len() {
		return 0, false
	}
	seg := kcp.sndBuf.at(int(i))
	if seg.acked {
		return 0, false
	}
	seg.acked = true
	kcp.ccAcked(seg)
	kcp.obs.ack(len(seg.data))
	kcp.putBuf(seg.data)
	seg.data = nil
	return int(i), true
}

// parseFastack counts a newly acknowledged segment at index idx of sndBuf
// (ts echoes its transmission) against the unacknowledged segments sent
// before it; it reports whether one reached the fast-retransmit threshold.
func (kcp *KCP) parseFastack(idx int, ts uint32) bool {
	hit := false
	for i := 0; i < idx; i++ {
		seg := kcp.sndBuf.at(i)
		if seg.acked || seg.fastack == fastackDone || int32(seg.ts-ts) > 0 {
			continue
		}
		seg.fastack++
		if kcp.fastresend <= 0 || seg.fastack >= uint32(kcp.fastresend) {
			hit = true
		}
	}
	return hit
}

// parseData stores a PUSH payload with sn in [rcvNxt, rcvNxt+rcvWnd); it
// reports whether the segment was a duplicate.
func (kcp *KCP) parseData(sn uint32, frg uint8, ts uint32, data []byte) bool {
	rb := &kcp.rcvBuf
	off := int(sn - kcp.rcvNxt)
	if len(rb.seg) == 0 && off == 0 && kcp.rcvQueue.len() < kcp.rcvQueueLimit() {
		// In order, and no reorder slots (kcp_trim.go): straight to the
		// receive queue, as moveReady would have moved it.
		kcp.rcvNxt++
		if frg == 0 {
			kcp.rcvMsgEnds++
		}
		kcp.rcvQueue.push(segment{sn: sn, ts: ts, frg: frg, data: append(kcp.getRecvBuf(len(data)), data...)})
		return false
	}
	if off >= len(rb.seg) {
		rb.resize(off + 1) // the slots grow on demand, up to the window
	}
	j := rb.slot(sn - kcp.rcvNxt)
	if rb.have[j] {
		return true
	}
	rb.seg[j] = segment{sn: sn, ts: ts, frg: frg, data: append(kcp.getRecvBuf(len(data)), data...)}
	rb.have[j] = true
	rb.count++
	kcp.moveReady()
	return false
}

// Input feeds one datagram of KCP segments into the core, using the KCP's
// clock. pktType says whether it came from the network or from FEC
// recovery; ackNoDelay sends the resulting ACKs at once. It returns 0, or
// -1 (shorter than a header, or another conv), -2 (a segment's length runs
// past the datagram) or -3 (an unknown cmd). Segments before a bad one are
// processed.
func (kcp *KCP) Input(data []byte, pktType PacketType, ackNoDelay bool) int {
	return kcp.input(kcp.clock(), data, pktType, ackNoDelay)
}

// input is Input at time current (ms).
func (kcp *KCP) input(current uint32, data []byte, pktType PacketType, ackNoDelay bool) int {
	if len(data) < IKCP_OVERHEAD {
		return -1
	}
	regular := pktType == IKCP_PACKET_REGULAR
	prevUna := kcp.sndUna
	var rttTs uint32
	haveSample := false
	flushNow := false
	ret := 0
	kcp.ccAckBegin(current)

	for len(data) >= IKCP_OVERHEAD {
		conv := binary.LittleEndian.Uint32(data[0:])
		cmd, frg := data[4], data[5]
		wnd := binary.LittleEndian.Uint16(data[6:])
		ts := binary.LittleEndian.Uint32(data[8:])
		sn := binary.LittleEndian.Uint32(data[12:])
		una := binary.LittleEndian.Uint32(data[16:])
		length := binary.LittleEndian.Uint32(data[20:])
		data = data[IKCP_OVERHEAD:]

		if conv != kcp.conv {
			ret = -1
			break
		}
		if uint64(length) > uint64(len(data)) {
			ret = -2
			break
		}
		if cmd < IKCP_CMD_PUSH || cmd > IKCP_CMD_WINS {
			ret = -3
			break
		}
		if kcp.logmask&IKCP_LOG_INPUT != 0 {
			kcp.log("input", "conv", conv, "cmd", cmd, "frg", frg, "wnd", wnd, "ts", ts, "sn", sn, "una", una, "len", length)
		}
		payload := data[:length]
		data = data[length:]
		kcp.stats.InSegs++

		// An acknowledgement of a sequence number never sent (una or an ACK
		// sn at or beyond snd_nxt) is forged, or a corrupted datagram that
		// passed a CRC: the whole segment is ignored, so it can neither drop
		// data in flight as delivered nor open the window.
		if int32(una-kcp.sndNxt) > 0 || (cmd == IKCP_CMD_ACK && int32(sn-kcp.sndNxt) >= 0) {
			kcp.stats.ForgedAcks++
			continue
		}
		// An ACK must echo a ts one of our PUSH segments carried; one that
		// does not proves nothing about the peer and is ignored. The first
		// that does validates the peer (validated).
		if cmd == IKCP_CMD_ACK {
			if !kcp.plausibleTs(current, ts) {
				kcp.stats.BadTsAcks++
				continue
			}
			kcp.valid = true
			ts -= kcp.tsOffset // our clock at that transmission
			kcp.ccAckEcho(sn, ts, current)
		}

		if regular {
			kcp.rmtWnd = uint32(wnd)
			kcp.rmtWndMax = max(kcp.rmtWndMax, uint32(wnd))
			kcp.heard = true
		}
		// Until the peer proved it receives, una moves only with a plausible
		// ACK: a blind una guessed from predictable sequence numbers would
		// otherwise release data and open the window toward an address that
		// never received anything.
		advanced := false
		if kcp.valid {
			advanced = kcp.parseUna(una, current) > 0
		}
		if advanced {
			flushNow = true
		}

		switch cmd {
		case IKCP_CMD_ACK:
			if idx, fresh := kcp.parseAck(sn, current); fresh {
				advanced = true
				if kcp.parseFastack(idx, ts) {
					flushNow = true
				}
				kcp.dropAckedFront()
			}
			if advanced && regular && (!haveSample || int32(ts-rttTs) > 0) {
				rttTs, haveSample = ts, true
			}
			if kcp.logmask&IKCP_LOG_IN_ACK != 0 {
				kcp.log("in ack", "conv", conv, "sn", sn, "una", una, "ts", ts, "rto", kcp.rxRto)
			}
		case IKCP_CMD_PUSH:
			repeat := true
			if int32(sn-(kcp.rcvNxt+kcp.rcvWnd)) < 0 {
				kcp.acklist = append(kcp.acklist, ackItem{sn, ts})
				if int32(sn-kcp.rcvNxt) >= 0 {
					repeat = kcp.parseData(sn, frg, ts, payload)
				}
				if regular {
					kcp.notePeerTs(current, ts)
				}
			}
			if repeat && regular {
				kcp.stats.RepeatSegs++
			}
			if kcp.logmask&IKCP_LOG_IN_PUSH != 0 {
				kcp.log("in push", "conv", conv, "sn", sn, "una", una, "ts", ts, "frg", frg, "len", length, "repeat", repeat)
			}
		case IKCP_CMD_WASK:
			kcp.probe |= IKCP_ASK_TELL
			if kcp.logmask&IKCP_LOG_IN_WASK != 0 {
				kcp.log("in wask", "conv", conv, "wnd", wnd)
			}
		case IKCP_CMD_WINS:
			if kcp.logmask&IKCP_LOG_IN_WINS != 0 {
				kcp.log("in wins", "conv", conv, "wnd", wnd)
			}
		}
	}

	sample := int32(-1)
	if haveSample {
		if rtt := int32(current - rttTs); rtt >= 0 && rtt <= IKCP_RTO_MAX {
			kcp.updateRTT(rtt)
			sample = rtt
		}
	}
	kcp.ccWitnessCovered(current)
	kcp.ccAckEnd(sample)

	if kcp.cc.ctl == nil && !kcp.nocwnd && int32(kcp.sndUna-prevUna) > 0 && kcp.cwnd < kcp.rmtWnd {
		kcp.growCwnd()
	}
	kcp.obs.rate(current, kcp.rxSrtt)
	if kcp.tracer != nil {
		kcp.traceMetrics()
	}

	switch {
	case flushNow && !kcp.ackCanWait():
		kcp.flush(current, IKCP_FLUSH_FULL)
	case len(kcp.acklist) >= int(kcp.mtu/IKCP_OVERHEAD):
		kcp.flush(current, IKCP_FLUSH_ACKONLY)
	case ackNoDelay && len(kcp.acklist) > 0:
		kcp.flush(current, IKCP_FLUSH_ACKONLY)
	}
	return ret
}

// ackCanWait reports whether the flush that a moving una asks for would
// carry nothing but ACKs: nothing is left in flight or waiting to be sent.
// That flush exists to send what the opened window lets through; with
// nothing to send, the ACKs can wait for the next flush.
func (kcp *KCP) ackCanWait() bool {
	return kcp.sndBuf.len() == 0 && kcp.sndQueue.len() == 0
}

// rcvQueueLimit is how many segments the receive queue may hold: the
// receive window, whatever it holds. A message of more fragments than the
// window can therefore never complete (as in C KCP and kcp-go); kcpx
// senders never send one (maxMessageSize), kcp-go sessions send every
// segment as a message of its own, and the bound keeps a peer that sends
// only fragments (frg != 0) from pinning more than window x mss here.
func (kcp *KCP) rcvQueueLimit() int {
	return int(kcp.rcvWnd)
}

// wndUnused is the free receive window advertised to the peer.
func (kcp *KCP) wndUnused() uint32 {
	free := kcp.rcvQueueLimit() - kcp.rcvQueue.len()
	if free <= 0 {
		return 0
	}
	return min(uint32(free), kcp.rcvWnd)
}

// reserve makes room for need more bytes in the datagram being assembled at
// kcp.buffer[:n], sending it first if the bytes would not fit in the mtu.
func (kcp *KCP) reserve(n, need int) int {
	if n > 0 && n+need > int(kcp.mtu) {
		kcp.emit(n)
		n = 0
	}
	if kcp.buffer == nil {
		kcp.takeFlushBuf()
	}
	if need > len(kcp.buffer) {
		// only a segment queued before SetMtu shrank the mtu gets here
		nb := make([]byte, need)
		copy(nb, kcp.buffer[:n])
		if kcp.sink != nil {
			kcp.sink.unlend() // flushed then gets nb, to copy from
		}
		kcp.buffer = nb
	}
	return n
}

func (kcp *KCP) emit(n int) {
	if kcp.paceData {
		kcp.paceCharge(n)
		kcp.paceData = false
	}
	if kcp.logmask&IKCP_LOG_OUTPUT != 0 {
		kcp.log("output", "conv", kcp.conv, "len", n)
	}
	if kcp.sink != nil {
		// the datagram is the sink's now; the next one needs a new buffer
		b := kcp.buffer[:n]
		kcp.buffer = nil
		kcp.sink.flushed(b)
	} else {
		kcp.output(kcp.buffer[:n], n)
	}
	kcp.spoke = true
}

// Update runs update at the time of the KCP's clock. Call it every interval
// ms, or when Check says.
func (kcp *KCP) Update() { kcp.update(kcp.clock()) }

// update flushes at time current (ms) if a flush is due by the interval.
func (kcp *KCP) update(current uint32) {
	if !kcp.updated {
		kcp.updated = true
		kcp.tsFlush = current
	}
	slap := int32(current - kcp.tsFlush)
	if slap >= 10000 || slap < -10000 {
		kcp.tsFlush = current
		slap = 0
	}
	if slap >= 0 {
		kcp.tsFlush += kcp.interval
		if int32(current-kcp.tsFlush) >= 0 {
			kcp.tsFlush = current + kcp.interval
		}
		kcp.flush(current, IKCP_FLUSH_FULL)
	} else if kcp.paceHeld && kcp.cc.ctl != nil && kcp.paceWait(kcp.usAt(current), 0) == 0 {
		// The pacer held segments back and has tokens again: release
		// them when Check said to, not at the next interval, or a
		// controller's 2 ms bucket would pace at a fifth of its rate.
		// (SetRateLimit's bucket holds 20 ms: the legacy modes keep
		// flushing on the interval alone, as they always did.)
		kcp.flush(current, IKCP_FLUSH_FULL)
	}
}

// Check returns the clock time (ms, the KCP's clock) at which Update should
// next run, if no Input or Send happens before.
func (kcp *KCP) Check() uint32 { return kcp.check(kcp.clock()) }

// check is Check at time current (ms): the next flush or retransmission
// time, at most one interval away.
func (kcp *KCP) check(current uint32) uint32 {
	if !kcp.updated {
		return current
	}
	tsFlush := kcp.tsFlush
	if d := int32(current - tsFlush); d >= 10000 || d < -10000 {
		tsFlush = current
	}
	if int32(current-tsFlush) >= 0 {
		return current
	}
	minimal := uint32(int32(tsFlush - current))
	// A segment due (or never sent) waits only for the pacer, if any.
	paceWait := kcp.paceWait(kcp.usAt(current), 0)
	a, b := kcp.sndBuf.spans()
	for _, span := range [2][]segment{a, b} {
		for i := range span {
			seg := &span[i]
			if seg.acked {
				continue
			}
			d := int32(seg.resendts - current)
			if seg.xmit == 0 || d <= 0 {
				if paceWait == 0 {
					return current
				}
				minimal = min(minimal, paceWait)
				continue
			}
			minimal = min(minimal, uint32(d))
		}
	}
	return current + min(minimal, kcp.interval)
}

// flush emits, at time current (ms), the pending ACKs and window probes and,
// for IKCP_FLUSH_FULL, new segments the windows admit and every due
// retransmission. It returns the ms until a flush is next due: at least 1,
// at most the interval.
func (kcp *KCP) flush(current uint32, ft FlushType) uint32 {
	wnd := kcp.wndUnused()
	una := kcp.rcvNxt
	conv := kcp.conv
	n := 0
	segs := uint64(0)

	// pending ACKs; those below rcvNxt are covered by una, keep the last one
	// so its ts still reaches the sender
	if last := len(kcp.acklist) - 1; last >= 0 {
		for i, ack := range kcp.acklist {
			if int32(ack.sn-una) < 0 && i != last {
				continue
			}
			n = kcp.reserve(n, IKCP_OVERHEAD)
			putHeader(kcp.buffer[n:], conv, IKCP_CMD_ACK, 0, uint16(wnd), ack.ts, ack.sn, una, 0)
			n += IKCP_OVERHEAD
			segs++
			if kcp.logmask&IKCP_LOG_OUT_ACK != 0 {
				kcp.log("out ack", "conv", conv, "sn", ack.sn, "una", una, "ts", ack.ts)
			}
		}
		kcp.acklist = kcp.acklist[:0]
	}

	// A peer that keeps its window shut while we have data for it holds our
	// memory; after persistLimit ms the link is declared dead.
	if kcp.rmtWnd == 0 && kcp.WaitSnd() > 0 {
		if !kcp.zeroWnd {
			kcp.zeroWnd, kcp.zeroSince = true, current
		} else if kcp.persistLimit > 0 && current-kcp.zeroSince >= kcp.persistLimit {
			kcp.state = deadState
		}
	} else {
		kcp.zeroWnd = false
	}

	// window probing while the peer's window is zero
	if kcp.rmtWnd == 0 {
		if kcp.probeWait == 0 {
			kcp.probeWait = IKCP_PROBE_INIT
			kcp.tsProbe = current + kcp.probeWait
		} else if int32(current-kcp.tsProbe) >= 0 {
			kcp.probeWait = max(kcp.probeWait, IKCP_PROBE_INIT)
			kcp.probeWait = min(kcp.probeWait+kcp.probeWait/2, IKCP_PROBE_LIMIT)
			kcp.tsProbe = current + kcp.probeWait
			kcp.probe |= IKCP_ASK_SEND
		}
	} else {
		kcp.tsProbe, kcp.probeWait = 0, 0
	}
	if kcp.probe&IKCP_ASK_SEND != 0 {
		n = kcp.reserve(n, IKCP_OVERHEAD)
		putHeader(kcp.buffer[n:], conv, IKCP_CMD_WASK, 0, uint16(wnd), 0, 0, una, 0)
		n += IKCP_OVERHEAD
		segs++
		if kcp.logmask&IKCP_LOG_OUT_WASK != 0 {
			kcp.log("out wask", "conv", conv, "wnd", wnd)
		}
	}
	if kcp.probe&IKCP_ASK_TELL != 0 {
		n = kcp.reserve(n, IKCP_OVERHEAD)
		putHeader(kcp.buffer[n:], conv, IKCP_CMD_WINS, 0, uint16(wnd), 0, 0, una, 0)
		n += IKCP_OVERHEAD
		segs++
		if kcp.logmask&IKCP_LOG_OUT_WINS != 0 {
			kcp.log("out wins", "conv", conv, "wnd", wnd)
		}
	}
	kcp.probe = 0

	next := kcp.interval
	if ft == IKCP_FLUSH_FULL {
		next, n, segs = kcp.flushData(current, wnd, n, segs)
	}
	if n > 0 {
		kcp.emit(n)
	}
	if segs > 0 {
		kcp.lastWnd = wnd
		kcp.stats.OutSegs += segs
	}
	return max(next, 1)
}

// flushData is the data half of a full flush: it admits queued segments into
// the window, (re)transmits those due, and adjusts the congestion window.
func (kcp *KCP) flushData(current, wnd uint32, n int, segs uint64) (uint32, int, uint64) {
	cwnd := min(kcp.sndWnd, kcp.rmtWnd)
	if kcp.cc.ctl == nil && !kcp.nocwnd {
		cwnd = min(cwnd, kcp.cwnd)
	}
	newSegs := 0
	for kcp.sndQueue.len() > 0 && int32(kcp.sndNxt-(kcp.sndUna+cwnd)) < 0 && kcp.ccAdmit() {
		seg := kcp.sndQueue.pop()
		seg.sn = kcp.sndNxt
		kcp.ccQueued(-len(seg.data))
		kcp.cc.unacked++
		kcp.obs.admit(len(seg.data))
		kcp.sndBuf.push(seg)
		kcp.sndNxt++
		newSegs++
	}
	kcp.ccAppLimited(cwnd)

	resent := uint32(fastackDone)
	if kcp.fastresend > 0 {
		resent = uint32(kcp.fastresend)
	}
	una, conv := kcp.rcvNxt, kcp.conv
	next := kcp.interval
	var lost, fast, early uint64

	kcp.paceRefill(kcp.ccNow(current))
	paced := false
	a, b := kcp.sndBuf.spans()
	for _, span := range [2][]segment{a, b} {
		for i := range span {
			seg := &span[i]
			if seg.acked {
				continue
			}
			why := sendNone
			switch {
			case seg.xmit == 0:
				why = sendNew
			case seg.fastack != fastackDone && seg.fastack >= resent:
				why = sendFast
			case kcp.fastresend > 0 && seg.fastack != fastackDone && seg.fastack > 0 && newSegs == 0:
				// Early retransmit (kcp-go's): a skipped segment goes again
				// when nothing new entered the window. It is a form of fast
				// retransmit, so resend 0 (NoDelay) turns it off too; with
				// FEC that leaves a lost shard to be rebuilt, not resent.
				why = sendEarly
			case int32(current-seg.resendts) >= 0:
				why = sendTimeout
			}
			if why == sendNone {
				// Not due: the common case of a full window.
				if d := int32(seg.resendts - current); d > 0 && uint32(d) < next {
					next = uint32(d)
				}
				continue
			}
			if paced || !kcp.paceOpen(n) {
				// Out of pacing tokens: this and every later segment wait,
				// untouched, for the flush the tokens allow.
				paced = true
				continue
			}
			switch why {
			case sendNew:
				kcp.obs.firstSends++
				seg.rto = kcp.rxRto
				seg.resendts = current + seg.rto
			case sendFast, sendEarly:
				if why == sendFast {
					fast++
				} else {
					early++
				}
				kcp.ccLoss(seg)
				if kcp.tracer != nil {
					kcp.tracer.SegmentLost(seg.sn, LossReordering)
				}
				seg.fastack = fastackDone
				seg.rto = kcp.rxRto
				seg.resendts = current + seg.rto
			case sendTimeout:
				lost++
				kcp.ccTimeout(seg, current)
				if kcp.tracer != nil {
					kcp.tracer.SegmentLost(seg.sn, LossTimeout)
				}
				if kcp.nodelay == 0 {
					seg.rto += kcp.rxRto
				} else {
					seg.rto += kcp.rxRto / 2
				}
				seg.rto = min(seg.rto, IKCP_RTO_MAX)
				seg.fastack = 0
				seg.resendts = current + seg.rto
			}
			seg.xmit++
			if kcp.tracer != nil && seg.xmit > 1 {
				kcp.tracer.SegmentRetransmitted(seg.sn, seg.xmit)
			}
			seg.ts = current
			kcp.ccSent(seg)
			if !kcp.tsSent {
				kcp.tsSent, kcp.tsStart = true, current
			}
			need := IKCP_OVERHEAD + len(seg.data)
			n = kcp.reserve(n, need)
			putHeader(kcp.buffer[n:], conv, IKCP_CMD_PUSH, seg.frg, uint16(wnd), current+kcp.tsOffset, seg.sn, una, uint32(len(seg.data)))
			copy(kcp.buffer[n+IKCP_OVERHEAD:], seg.data)
			n += need
			segs++
			kcp.paceData = kcp.paceRate != 0
			if seg.xmit >= kcp.deadLink {
				kcp.state = deadState
			}
			if kcp.logmask&IKCP_LOG_OUT_PUSH != 0 {
				kcp.log("out push", "conv", conv, "sn", seg.sn, "frg", seg.frg, "una", una, "ts", current, "xmit", seg.xmit, "len", len(seg.data))
			}
			if d := int32(seg.resendts - current); d > 0 && uint32(d) < next {
				next = uint32(d)
			}
		}
	}
	if paced {
		next = min(next, kcp.paceWait(kcp.cc.nowUs, n))
	}
	kcp.paceHeld = paced

	kcp.stats.LostSegs += lost
	kcp.stats.FastRetransSegs += fast
	kcp.stats.EarlyRetransSegs += early
	kcp.stats.RetransSegs += lost + fast + early

	if kcp.cc.ctl == nil && !kcp.nocwnd {
		kcp.shrinkCwnd(cwnd, fast+early, lost)
	}
	if kcp.tracer != nil {
		kcp.traceMetrics()
	}
	return next, n, segs
}

// Reasons flushData sends a segment.
const (
	sendNone = iota
	sendNew
	sendFast
	sendEarly
	sendTimeout
)
