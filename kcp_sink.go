package kcp

// Lent flush buffers: the datagram flush assembles is written where it will
// be sent.
//
// A bare KCP (NewKCP) assembles each datagram in a buffer of its own and
// hands it to the output callback, which must copy what it keeps: the bytes
// are overwritten by the next datagram. A session would copy them once more,
// into the pooled buffer it seals and sends. With a sink, flush assembles
// straight into a buffer the sink lends (a window of that pooled buffer,
// behind the room its cipher and FEC headers need) and passes the filled
// buffer back, so that copy is gone. The core still does no I/O: the sink
// only lends and takes back memory.

// flushSink lends flush the buffers it assembles datagrams in. All three
// are called under whatever serialises the KCP's calls.
type flushSink interface {
	// lendFlushBuf returns an empty buffer of at least mtu bytes (SetMtu
	// bounds the mtu so that it always has) for the next datagram. It is
	// the KCP's until it passes it back through flushed or unlend.
	lendFlushBuf() []byte
	// flushed takes back the lent buffer, holding a datagram of len(b)
	// bytes at its start: b is the lent buffer, cut to the datagram. When
	// the lent buffer was given back with unlend first (a segment queued
	// before SetMtu shrank the mtu outgrew it), b is the KCP's own and
	// the sink copies what it keeps.
	flushed(b []byte)
	// unlend takes back the lent buffer unused; it does nothing when no
	// buffer is lent.
	unlend()
}

// setSink makes flush assemble in buffers lent by sink instead of its own,
// and hand each datagram to sink rather than to the output callback.
func (kcp *KCP) setSink(sink flushSink) {
	kcp.giveFlushBuf()
	kcp.sink = sink
}
