package kcp

// What the core measures for observers (SessionStats, Tracer): a finer RTT
// estimate, bytes in flight and delivered, and a delivery rate. All of it is
// counted from the core's own clock and events; nothing here allocates, and
// nothing here changes what the core sends.

// coreObs holds the core's running measurements. Counters are cumulative
// for the life of the KCP (takeStats does not reset them).
type coreObs struct {
	// RTT in microseconds, a fixed-point EWMA of the core's millisecond
	// samples. A sample is the difference of two millisecond clock readings,
	// whose expected value is the true RTT when the send phase within a
	// millisecond is uniform, so the average carries sub-millisecond
	// information that KCP's integer srtt truncates away.
	srttUs, rttvarUs int64
	minRttMs         int32 // smallest sample (ms)
	latestRttMs      int32 // last sample (ms)
	rttSamples       uint64

	inflightBytes int64  // payload bytes sent and not yet acknowledged
	inflightSegs  int64  // segments sent and not yet acknowledged
	delivered     uint64 // payload bytes acknowledged, in total
	firstSends    uint64 // data segments sent for the first time

	// delivery rate: bytes acknowledged between two marks at least
	// rateWindow ms apart
	rateMarkTime  uint32
	rateMarkBytes uint64
	rateMarked    bool
	deliveryRate  uint64 // bytes per second over the last completed window

	// what the tracer was last told (traceMetrics), to report changes only
	lastCwnd, lastRto uint32
	lastSrtt          int64
}

// rateWindowMin is the shortest span (ms) a delivery-rate sample covers; a
// span is also at least one smoothed RTT.
const rateWindowMin = 100

// rttSample folds one RTT sample (ms, >= 0) into the fine estimate.
func (o *coreObs) rttSample(ms int32) {
	us := int64(ms) * 1000
	if o.rttSamples == 0 {
		o.srttUs, o.rttvarUs, o.minRttMs = us, us/2, ms
	} else {
		d := us - o.srttUs
		o.srttUs += d / 8
		if d < 0 {
			d = -d
		}
		o.rttvarUs += (d - o.rttvarUs) / 4
		o.minRttMs = min(o.minRttMs, ms)
	}
	o.latestRttMs = ms
	o.rttSamples++
}

// admit counts a segment of n payload bytes entering the send buffer.
func (o *coreObs) admit(n int) {
	o.inflightBytes += int64(n)
	o.inflightSegs++
}

// ack counts a segment of n payload bytes acknowledged.
func (o *coreObs) ack(n int) {
	o.inflightBytes -= int64(n)
	o.inflightSegs--
	o.delivered += uint64(n)
}

// rate closes a delivery-rate window at time current (ms) once it spans at
// least max(rateWindowMin, srttMs).
func (o *coreObs) rate(current uint32, srttMs int32) {
	if !o.rateMarked {
		o.rateMarked, o.rateMarkTime, o.rateMarkBytes = true, current, o.delivered
		return
	}
	span := int32(current - o.rateMarkTime)
	if span < max(rateWindowMin, srttMs) {
		return
	}
	o.deliveryRate = (o.delivered - o.rateMarkBytes) * 1000 / uint64(span)
	o.rateMarkTime, o.rateMarkBytes = current, o.delivered
}

// ccState is what the congestion controller holds, for SessionStats and the
// tracer. It is read through ccView alone, so a pluggable controller needs
// only that function changed.
type ccState struct {
	cwnd          uint32 // segments the congestion window admits in flight
	ssthresh      uint32 // segments
	pacingRate    uint64 // bytes per second; 0 = not paced
	deliveryRate  uint64 // bytes per second
	inflightBytes int64
	inflightSegs  int64
}

// ccView returns the congestion controller's state. With congestion control
// off (nc 1) the window in force is min(send window, peer's window).
func (kcp *KCP) ccView() ccState {
	ctlWnd, pacing, delivery, _ := kcp.ccState()
	cwnd := min(kcp.sndWnd, kcp.rmtWnd, ctlWnd)
	if delivery == 0 {
		delivery = kcp.obs.deliveryRate
	}
	return ccState{
		cwnd:          cwnd,
		ssthresh:      kcp.ssthresh,
		pacingRate:    pacing,
		deliveryRate:  delivery,
		inflightBytes: max(kcp.obs.inflightBytes, 0),
		inflightSegs:  max(kcp.obs.inflightSegs, 0),
	}
}

// dropObs forgets what is in flight, for dropBuffers.
func (o *coreObs) dropObs() { o.inflightBytes, o.inflightSegs = 0, 0 }
