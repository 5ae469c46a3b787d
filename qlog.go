package kcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// QlogDirEnv is the environment variable that, when it names a directory,
// makes every session created afterwards write a qlog trace there: one file
// per session, named kcpx_<conv>_<client|server>_<pid>_<n>.sqlog (n: the
// lowest number not yet taken). The
// directory is created when missing. A file that cannot be created leaves
// the session untraced. The variable is read when each session starts.
const QlogDirEnv = "KCPX_QLOGDIR"

// QlogTracer is a Tracer that writes a qlog trace (the main logging schema,
// version 0.3, in the JSON-SEQ serialisation of RFC 7464: every record starts
// with the ASCII record separator 0x1E and ends with a line feed), which qvis
// (https://qvis.quictools.info) opens. Events use the qlog QUIC names where
// KCP has a counterpart ("transport:packet_sent", "transport:packet_received",
// "recovery:packet_lost", "recovery:metrics_updated",
// "transport:connection_state_updated") and a "kcp:" category otherwise
// ("kcp:segment_retransmitted", "kcp:fec_recovered"). KCP segments appear as
// frames: "push", "ack" (with acked_ranges), "window_probe",
// "window_update". Times are milliseconds since the tracer was made.
//
// A QlogTracer traces one session. Its methods are safe for concurrent use.
// It buffers its output in 32 KiB and writes on the session's goroutines,
// with the session's lock held: give it a file or a fast writer. Close (or
// the session's StateClosed event, which calls Close) flushes it and closes
// the writer when it is an io.Closer. Every datagram is recorded: expect
// about 200 bytes of trace per datagram.
type QlogTracer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	c      io.Closer
	start  time.Time
	buf    []byte
	sent   uint64 // datagrams sent so far: the next packet_number
	recv   uint64 // datagrams received so far
	state  SessionState
	closed bool
	err    error
}

// NewQlogTracer returns a tracer writing to w. vantage is "client" or
// "server" (qlog's vantage point type); conv names the trace.
func NewQlogTracer(w io.Writer, vantage string, conv uint32) *QlogTracer {
	q := &QlogTracer{w: bufio.NewWriterSize(w, 32<<10), start: time.Now()}
	if c, ok := w.(io.Closer); ok {
		q.c = c
	}
	b := q.buf[:0]
	b = append(b, 0x1e)
	b = append(b, `{"qlog_version":"0.3","qlog_format":"JSON-SEQ","title":"kcpx session","description":"KCP conv 0x`...)
	b = appendHex32(b, conv)
	b = append(b, `","trace":{"vantage_point":{"name":"kcpx","type":`...)
	b = strconv.AppendQuote(b, vantage)
	b = append(b, `},"common_fields":{"protocol_type":["KCP"],"group_id":"`...)
	b = appendHex32(b, conv)
	b = append(b, `","time_format":"relative","reference_time":`...)
	b = strconv.AppendInt(b, q.start.UnixMilli(), 10)
	b = append(b, "}}}\n"...)
	q.buf = b
	q.write()
	return q
}

// OpenQlogFile creates dir (when missing) and a new qlog file in it for one
// session, named as QlogDirEnv says, and returns a tracer writing to it.
func OpenQlogFile(dir, vantage string, conv uint32) (*QlogTracer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("kcpx_%08x_%s_%d_", conv, vantage, os.Getpid())
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, base+strconv.Itoa(n)+".sqlog"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			return NewQlogTracer(f, vantage, conv), nil
		}
		if !errors.Is(err, fs.ErrExist) || n >= 10000 {
			return nil, err
		}
	}
}

// traceFromEnv gives a new session a qlog tracer when QlogDirEnv is set.
// Called before the session is shared.
func (s *UDPSession) traceFromEnv() {
	dir := os.Getenv(QlogDirEnv)
	if dir == "" {
		return
	}
	vantage := "client"
	if s.l != nil {
		vantage = "server"
	}
	q, err := OpenQlogFile(dir, vantage, s.conv)
	if err != nil {
		return
	}
	s.tracer, s.tracerOwned = q, true
	s.kcp.tracer = q
}

// Err returns the first error writing the trace, if any.
func (q *QlogTracer) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Close flushes the trace and closes the writer when it is an io.Closer.
// Later events are dropped. It returns the first write error, if any.
func (q *QlogTracer) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.err
	}
	q.closed = true
	if err := q.w.Flush(); err != nil && q.err == nil {
		q.err = err
	}
	if q.c != nil {
		if err := q.c.Close(); err != nil && q.err == nil {
			q.err = err
		}
	}
	return q.err
}

// begin starts an event record named name in q.buf. Caller holds q.mu.
func (q *QlogTracer) begin(name string) []byte {
	b := append(q.buf[:0], 0x1e)
	b = append(b, `{"time":`...)
	b = strconv.AppendFloat(b, float64(time.Since(q.start).Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"name":"`...)
	b = append(b, name...)
	b = append(b, `","data":{`...)
	return b
}

// end closes the record in b and writes it. Caller holds q.mu.
func (q *QlogTracer) end(b []byte) {
	q.buf = append(b, "}}\n"...)
	q.write()
}

func (q *QlogTracer) write() {
	if _, err := q.w.Write(q.buf); err != nil && q.err == nil {
		q.err = err
	}
}

// DatagramSent records "transport:packet_sent".
func (q *QlogTracer) DatagramSent(kind DatagramKind, wireLen int, kcp []byte) {
	q.mu.Lock()
	if !q.closed {
		q.packet("transport:packet_sent", kind, q.sent, wireLen, kcp)
		q.sent++
	}
	q.mu.Unlock()
}

// DatagramReceived records "transport:packet_received".
func (q *QlogTracer) DatagramReceived(kind DatagramKind, wireLen int, kcp []byte) {
	q.mu.Lock()
	if !q.closed {
		q.packet("transport:packet_received", kind, q.recv, wireLen, kcp)
		q.recv++
	}
	q.mu.Unlock()
}

func (q *QlogTracer) packet(name string, kind DatagramKind, num uint64, wireLen int, kcp []byte) {
	b := q.begin(name)
	b = append(b, `"header":{"packet_type":"`...)
	b = append(b, kind.String()...)
	b = append(b, `","packet_number":`...)
	b = strconv.AppendUint(b, num, 10)
	b = append(b, `},"raw":{"length":`...)
	b = strconv.AppendInt(b, int64(wireLen), 10)
	b = append(b, '}')
	if kind == DatagramKCP {
		b = append(b, `,"frames":`...)
		b = appendKCPFrames(b, kcp)
	}
	q.end(b)
}

// appendKCPFrames appends the segments of the KCP datagram p as a JSON array
// of qlog frames. p comes from the network: parsing stops at the first
// segment that does not fit, which is reported as a "malformed" frame.
func appendKCPFrames(b, p []byte) []byte {
	b = append(b, '[')
	first := true
	for len(p) > 0 {
		if !first {
			b = append(b, ',')
		}
		first = false
		if len(p) < IKCP_OVERHEAD {
			b = append(b, `{"frame_type":"malformed","length":`...)
			b = strconv.AppendInt(b, int64(len(p)), 10)
			b = append(b, '}')
			break
		}
		cmd, frg := p[4], p[5]
		wnd := binary.LittleEndian.Uint16(p[6:])
		ts := binary.LittleEndian.Uint32(p[8:])
		sn := binary.LittleEndian.Uint32(p[12:])
		una := binary.LittleEndian.Uint32(p[16:])
		length := binary.LittleEndian.Uint32(p[20:])
		b = append(b, `{"frame_type":"`...)
		switch cmd {
		case IKCP_CMD_PUSH:
			b = append(b, `push","sn":`...)
			b = strconv.AppendUint(b, uint64(sn), 10)
			b = append(b, `,"frg":`...)
			b = strconv.AppendUint(b, uint64(frg), 10)
			b = append(b, `,"length":`...)
			b = strconv.AppendUint(b, uint64(length), 10)
		case IKCP_CMD_ACK:
			b = append(b, `ack","acked_ranges":[[`...)
			b = strconv.AppendUint(b, uint64(sn), 10)
			b = append(b, ',')
			b = strconv.AppendUint(b, uint64(sn), 10)
			b = append(b, `]]`...)
		case IKCP_CMD_WASK:
			b = append(b, `window_probe"`...)
		case IKCP_CMD_WINS:
			b = append(b, `window_update"`...)
		default:
			b = append(b, `unknown","cmd":`...)
			b = strconv.AppendUint(b, uint64(cmd), 10)
		}
		b = append(b, `,"una":`...)
		b = strconv.AppendUint(b, uint64(una), 10)
		b = append(b, `,"wnd":`...)
		b = strconv.AppendUint(b, uint64(wnd), 10)
		b = append(b, `,"ts":`...)
		b = strconv.AppendUint(b, uint64(ts), 10)
		b = append(b, '}')
		if uint64(length) > uint64(len(p)-IKCP_OVERHEAD) {
			b = append(b, `,{"frame_type":"malformed","length":`...)
			b = strconv.AppendInt(b, int64(len(p)-IKCP_OVERHEAD), 10)
			b = append(b, '}')
			break
		}
		p = p[IKCP_OVERHEAD+int(length):]
	}
	return append(b, ']')
}

// SegmentLost records "recovery:packet_lost" with the segment's sn as the
// packet number.
func (q *QlogTracer) SegmentLost(sn uint32, reason LossReason) {
	q.mu.Lock()
	if !q.closed {
		b := q.begin("recovery:packet_lost")
		b = append(b, `"header":{"packet_type":"kcp","packet_number":`...)
		b = strconv.AppendUint(b, uint64(sn), 10)
		b = append(b, `},"trigger":"`...)
		b = append(b, reason.String()...)
		b = append(b, '"')
		q.end(b)
	}
	q.mu.Unlock()
}

// SegmentRetransmitted records "kcp:segment_retransmitted".
func (q *QlogTracer) SegmentRetransmitted(sn uint32, xmit uint32) {
	q.mu.Lock()
	if !q.closed {
		b := q.begin("kcp:segment_retransmitted")
		b = append(b, `"sn":`...)
		b = strconv.AppendUint(b, uint64(sn), 10)
		b = append(b, `,"xmit":`...)
		b = strconv.AppendUint(b, uint64(xmit), 10)
		q.end(b)
	}
	q.mu.Unlock()
}

// MetricsUpdated records "recovery:metrics_updated": RTTs in ms, the
// congestion window and bytes in flight in bytes, the pacing rate in bits
// per second (as qlog defines them), plus the window in segments and the RTO.
func (q *QlogTracer) MetricsUpdated(m TraceMetrics) {
	q.mu.Lock()
	if !q.closed {
		b := q.begin("recovery:metrics_updated")
		b = appendMs(b, `"min_rtt":`, m.MinRTT)
		b = appendMs(b, `,"smoothed_rtt":`, m.SmoothedRTT)
		b = appendMs(b, `,"latest_rtt":`, m.LatestRTT)
		b = appendMs(b, `,"rtt_variance":`, m.RTTVar)
		b = append(b, `,"congestion_window":`...)
		b = strconv.AppendUint(b, m.CwndBytes, 10)
		b = append(b, `,"bytes_in_flight":`...)
		b = strconv.AppendInt(b, m.BytesInFlight, 10)
		b = append(b, `,"ssthresh":`...)
		b = strconv.AppendUint(b, uint64(m.Ssthresh), 10)
		if m.PacingRate > 0 {
			b = append(b, `,"pacing_rate":`...)
			b = strconv.AppendUint(b, min(m.PacingRate, math.MaxUint64/8)*8, 10)
		}
		b = append(b, `,"kcp_cwnd_segments":`...)
		b = strconv.AppendUint(b, uint64(m.Cwnd), 10)
		b = appendMs(b, `,"kcp_rto":`, m.RTO)
		q.end(b)
	}
	q.mu.Unlock()
}

func appendMs(b []byte, key string, d time.Duration) []byte {
	b = append(b, key...)
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
}

// FECRecovered records "kcp:fec_recovered".
func (q *QlogTracer) FECRecovered(size int) {
	q.mu.Lock()
	if !q.closed {
		b := q.begin("kcp:fec_recovered")
		b = append(b, `"length":`...)
		b = strconv.AppendInt(b, int64(size), 10)
		q.end(b)
	}
	q.mu.Unlock()
}

// StateChanged records "transport:connection_state_updated". After
// StateClosed it closes the tracer.
func (q *QlogTracer) StateChanged(state SessionState) {
	q.mu.Lock()
	if !q.closed {
		b := q.begin("transport:connection_state_updated")
		if q.state != 0 {
			b = append(b, `"old":"`...)
			b = append(b, q.state.String()...)
			b = append(b, `",`...)
		}
		b = append(b, `"new":"`...)
		b = append(b, state.String()...)
		b = append(b, '"')
		q.end(b)
		q.state = state
	}
	q.mu.Unlock()
	if state == StateClosed {
		q.Close()
	}
}

func appendHex32(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for i := 28; i >= 0; i -= 4 {
		b = append(b, digits[(v>>uint(i))&0xf])
	}
	return b
}
