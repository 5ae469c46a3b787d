package kcp

import (
	"sync/atomic"
	"time"
)

// SessionStats is a snapshot of one session: its RTT estimate, congestion
// state, queues and counters. UDPSession.Stats returns it. Counters run from
// the session's start; gauges are the state at the call.
type SessionStats struct {
	// RTT. KCP timestamps are whole milliseconds; SmoothedRTT and RTTVar
	// average those samples in microseconds, so they resolve below a
	// millisecond over many samples. MinRTT and LatestRTT are single
	// samples, whole milliseconds. All are 0 before the first sample.
	MinRTT      time.Duration
	SmoothedRTT time.Duration
	RTTVar      time.Duration
	LatestRTT   time.Duration
	RTTSamples  uint64        // ACKs that gave an RTT sample
	RTO         time.Duration // current retransmission timeout, whole ms

	// Congestion and windows, in segments unless stated.
	Cwnd             uint32 // segments the sender may have in flight now (with nc 1: min(send window, peer's window))
	Ssthresh         uint32 // slow-start threshold
	SendWindow       uint32 // local send window (SetWindowSize)
	ReceiveWindow    uint32 // local receive window
	RemoteWindow     uint32 // free window the peer last advertised
	SegmentSize      int    // payload bytes per segment (KCP mss)
	BytesInFlight    int64  // payload bytes sent and not yet acknowledged
	SegmentsInFlight int64  // segments sent and not yet acknowledged
	PacingRate       uint64 // bytes per second released by the pacer; 0: not paced
	DeliveryRate     uint64 // payload bytes acknowledged per second, over the last window of at least 100 ms and one RTT

	// Segments.
	SegmentsSent               uint64 // every segment sent, ACKs and probes included (Snmp.OutSegs)
	DataSegmentsSent           uint64 // data segments sent for the first time
	SegmentsRetransmitted      uint64 // data segments sent again, for any reason
	SegmentsFastRetransmitted  uint64 // sent again after skipping ACKs (fast retransmit)
	SegmentsEarlyRetransmitted uint64 // sent again by kcp-go's early retransmit
	SegmentsLost               uint64 // sent again after their RTO expired
	SegmentsReceived           uint64 // every segment received (Snmp.InSegs)
	DuplicateSegments          uint64 // data segments received twice or outside the window
	FECRecovered               uint64 // datagrams rebuilt by FEC
	ForgedAcks                 uint64 // segments ignored: una or ACK sn beyond anything sent (also in Snmp.KCPInErrors)
	BadTsAcks                  uint64 // ACKs ignored: they echo a ts our segments never carried (also in Snmp.KCPInErrors)

	// Queues, in segments.
	SendQueue    int // written, waiting for the window
	ReceiveQueue int // received in order, waiting for Read

	// Bytes and datagrams.
	BytesSent         uint64 // accepted by Write
	BytesReceived     uint64 // returned by Read
	BytesDelivered    uint64 // payload bytes the peer acknowledged
	WireBytesSent     uint64 // datagram bytes handed to the socket
	WireBytesReceived uint64 // datagram bytes received
	DatagramsSent     uint64
	DatagramsReceived uint64

	// SinceLastDatagram is the time since the last datagram arrived from
	// the peer (since the session started, before the first), whole ms.
	SinceLastDatagram time.Duration
}

// Stats returns a snapshot of the session. It takes the session lock for a
// few hundred nanoseconds and allocates nothing, so it can be polled often
// on many sessions. Safe for concurrent use; after Close it reports the
// final state.
func (s *UDPSession) Stats() SessionStats {
	var st SessionStats
	s.mu.Lock()
	k := s.kcp
	now := k.clock()
	cc := k.ccView()
	o := &k.obs
	if o.rttSamples > 0 {
		st.MinRTT = time.Duration(o.minRttMs) * time.Millisecond
		st.SmoothedRTT = time.Duration(o.srttUs) * time.Microsecond
		st.RTTVar = time.Duration(o.rttvarUs) * time.Microsecond
		st.LatestRTT = time.Duration(o.latestRttMs) * time.Millisecond
	}
	st.RTTSamples = o.rttSamples
	st.RTO = time.Duration(k.rxRto) * time.Millisecond
	st.Cwnd, st.Ssthresh = cc.cwnd, cc.ssthresh
	st.SendWindow, st.ReceiveWindow, st.RemoteWindow = k.sndWnd, k.rcvWnd, k.rmtWnd
	st.SegmentSize = int(k.mss)
	st.BytesInFlight, st.SegmentsInFlight = cc.inflightBytes, cc.inflightSegs
	st.PacingRate, st.DeliveryRate = cc.pacingRate, cc.deliveryRate
	st.DataSegmentsSent = o.firstSends
	st.BytesDelivered = o.delivered

	// Counters live in three places until published: the core's, the
	// session's pending batch, and the published Snmp.
	p, c := &s.pend, &k.stats
	pub := &s.snmp
	ld := atomic.LoadUint64
	st.SegmentsSent = ld(&pub.OutSegs) + p.OutSegs + c.OutSegs
	st.SegmentsRetransmitted = ld(&pub.RetransSegs) + p.RetransSegs + c.RetransSegs
	st.SegmentsFastRetransmitted = ld(&pub.FastRetransSegs) + p.FastRetransSegs + c.FastRetransSegs
	st.SegmentsEarlyRetransmitted = ld(&pub.EarlyRetransSegs) + p.EarlyRetransSegs + c.EarlyRetransSegs
	st.SegmentsLost = ld(&pub.LostSegs) + p.LostSegs + c.LostSegs
	st.SegmentsReceived = ld(&pub.InSegs) + p.InSegs + c.InSegs
	st.DuplicateSegments = ld(&pub.RepeatSegs) + p.RepeatSegs + c.RepeatSegs
	st.FECRecovered = ld(&pub.FECRecovered) + p.FECRecovered
	st.ForgedAcks = s.forgedAcks + c.ForgedAcks
	st.BadTsAcks = s.badTsAcks + c.BadTsAcks
	if s.fecDec != nil {
		st.FECRecovered += s.fecDec.stats.Recovered
	}
	st.BytesSent = ld(&pub.BytesSent) + p.BytesSent
	st.BytesReceived = ld(&pub.BytesReceived) + p.BytesReceived
	st.WireBytesSent = ld(&pub.OutBytes) + p.OutBytes
	st.WireBytesReceived = ld(&pub.InBytes) + p.InBytes
	st.DatagramsSent = ld(&pub.OutPkts) + p.OutPkts
	st.DatagramsReceived = ld(&pub.InPkts) + p.InPkts

	st.SendQueue, st.ReceiveQueue, _ = k.queueLens()
	st.SinceLastDatagram = time.Duration(max(int32(now-s.lastRecv), 0)) * time.Millisecond
	s.mu.Unlock()
	return st
}

// LossRate returns the share of data segments sent that had to be sent
// again, 0..1: SegmentsRetransmitted / (DataSegmentsSent +
// SegmentsRetransmitted). It is 0 before anything was sent.
func (st *SessionStats) LossRate() float64 {
	total := st.DataSegmentsSent + st.SegmentsRetransmitted
	if total == 0 {
		return 0
	}
	return float64(st.SegmentsRetransmitted) / float64(total)
}
