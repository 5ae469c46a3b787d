// Package kcpprom exports kcpx counters and session statistics to
// Prometheus. It is a module of its own, so the kcpx library itself does
// not depend on client_golang.
//
//	reg.MustRegister(kcpprom.NewSnmpCollector("kcp", kcp.DefaultSnmp))
//	reg.MustRegister(kcpprom.NewSessionCollector("kcp", listener.Sessions, false))
//	reg.MustRegister(kcpprom.NewListenerCollector("kcp", listener))
package kcpprom

import (
	"strconv"
	"strings"
	"unicode"

	kcp "github.com/kcpx/kcp"
	"github.com/prometheus/client_golang/prometheus"
)

// snmpGauges are the Snmp columns that hold levels, not running totals.
var snmpGauges = map[string]bool{
	"MaxConn": true, "CurrEstab": true, "FECShardSet": true, "FECShardMin": true,
	"RingBufferSndQueue": true, "RingBufferRcvQueue": true, "RingBufferSndBuffer": true,
}

// snmpCollector exports one Snmp.
type snmpCollector struct {
	s     *kcp.Snmp
	descs []*prometheus.Desc
	kinds []prometheus.ValueType
}

// NewSnmpCollector returns a collector of s's 30 counters (usually
// kcp.DefaultSnmp), named namespace_snmp_<column in snake case>, with
// _total on counters (kcp_snmp_in_pkts_total, kcp_snmp_curr_estab). Each
// scrape reads a fresh snapshot.
func NewSnmpCollector(namespace string, s *kcp.Snmp) prometheus.Collector {
	c := &snmpCollector{s: s}
	for _, col := range s.Header() {
		name := prometheus.BuildFQName(namespace, "snmp", snake(col))
		kind := prometheus.GaugeValue
		if !snmpGauges[col] {
			kind = prometheus.CounterValue
			name += "_total"
		}
		c.descs = append(c.descs, prometheus.NewDesc(name, "kcp-go Snmp column "+col+".", nil, nil))
		c.kinds = append(c.kinds, kind)
	}
	return c
}

// Describe sends the descriptors of the 30 columns.
func (c *snmpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect sends one snapshot of the counters.
func (c *snmpCollector) Collect(ch chan<- prometheus.Metric) {
	for i, v := range c.s.ToSlice() {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], c.kinds[i], float64(n))
	}
}

// snake turns "RingBufferSndQueue" into "ring_buffer_snd_queue" and
// "FECErrs" into "fec_errs".
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 &&
			(unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// SessionSource lists the sessions to report, e.g. (*kcp.Listener).Sessions.
type SessionSource func() []*kcp.UDPSession

// sessionMetric is one SessionStats field.
type sessionMetric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(st *kcp.SessionStats) float64
}

var sessionMetrics = []sessionMetric{
	{"smoothed_rtt_seconds", "Smoothed round-trip time.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return st.SmoothedRTT.Seconds() }},
	{"min_rtt_seconds", "Smallest round-trip time sample.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return st.MinRTT.Seconds() }},
	{"rtt_variance_seconds", "Round-trip time variation.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return st.RTTVar.Seconds() }},
	{"rto_seconds", "Retransmission timeout.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return st.RTO.Seconds() }},
	{"cwnd_segments", "Congestion window in segments.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return float64(st.Cwnd) }},
	{"bytes_in_flight", "Payload bytes sent and not yet acknowledged.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return float64(st.BytesInFlight) }},
	{"pacing_rate_bytes_per_second", "Pacing rate (0: not paced).", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return float64(st.PacingRate) }},
	{"delivery_rate_bytes_per_second", "Payload bytes acknowledged per second.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return float64(st.DeliveryRate) }},
	{"send_queue_segments", "Segments written and waiting for the window.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return float64(st.SendQueue) }},
	{"receive_queue_segments", "Segments received and waiting for Read.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return float64(st.ReceiveQueue) }},
	{"since_last_datagram_seconds", "Time since the last datagram from the peer.", prometheus.GaugeValue, func(st *kcp.SessionStats) float64 { return st.SinceLastDatagram.Seconds() }},
	{"data_segments_sent_total", "Data segments sent for the first time.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.DataSegmentsSent) }},
	{"segments_retransmitted_total", "Data segments sent again.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.SegmentsRetransmitted) }},
	{"segments_fast_retransmitted_total", "Data segments sent again after skipping ACKs.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.SegmentsFastRetransmitted) }},
	{"segments_lost_total", "Data segments sent again after their RTO.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.SegmentsLost) }},
	{"fec_recovered_total", "Datagrams rebuilt by FEC.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.FECRecovered) }},
	{"bytes_sent_total", "Bytes accepted by Write.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.BytesSent) }},
	{"bytes_received_total", "Bytes returned by Read.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.BytesReceived) }},
	{"wire_bytes_sent_total", "Datagram bytes sent.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.WireBytesSent) }},
	{"wire_bytes_received_total", "Datagram bytes received.", prometheus.CounterValue, func(st *kcp.SessionStats) float64 { return float64(st.WireBytesReceived) }},
}

// sessionCollector exports SessionStats of a set of sessions.
type sessionCollector struct {
	src        SessionSource
	perSession bool
	sessions   *prometheus.Desc
	descs      []*prometheus.Desc
}

// NewSessionCollector returns a collector of the Stats of the sessions src
// lists at each scrape, named namespace_session_<metric>. With perSession
// each session is a series labelled conv and remote (mind the cardinality
// on a busy server); without, each metric is the sum over the sessions
// (RTTs and RTO: the mean) and namespace_sessions counts them.
func NewSessionCollector(namespace string, src SessionSource, perSession bool) prometheus.Collector {
	c := &sessionCollector{src: src, perSession: perSession}
	c.sessions = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "sessions"), "Sessions reported.", nil, nil)
	var labels []string
	if perSession {
		labels = []string{"conv", "remote"}
	}
	for _, m := range sessionMetrics {
		help := m.help
		if !perSession {
			help += " Summed over sessions (RTTs and RTO: averaged)."
		}
		c.descs = append(c.descs, prometheus.NewDesc(prometheus.BuildFQName(namespace, "session", m.name), help, labels, nil))
	}
	return c
}

// Describe sends the session count and the metrics' descriptors.
func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sessions
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect takes Stats of every listed session once per scrape.
func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	list := c.src()
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(len(list)))
	if c.perSession {
		for _, s := range list {
			st := s.Stats()
			conv := strconv.FormatUint(uint64(s.GetConv()), 10)
			remote := s.RemoteAddr().String()
			for i, m := range sessionMetrics {
				ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, m.value(&st), conv, remote)
			}
		}
		return
	}
	sums := make([]float64, len(sessionMetrics))
	for _, s := range list {
		st := s.Stats()
		for i, m := range sessionMetrics {
			sums[i] += m.value(&st)
		}
	}
	for i, m := range sessionMetrics {
		v := sums[i]
		if averaged(m.name) && len(list) > 0 {
			v /= float64(len(list))
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, v)
	}
}

// averaged reports the metrics whose sum means nothing.
func averaged(name string) bool {
	return strings.Contains(name, "rtt") || strings.HasPrefix(name, "rto")
}

// listenerMetric is one figure of a listener's Stats and IOStats.
type listenerMetric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(st *kcp.ListenerStats, io *kcp.IOStats) float64
}

var listenerMetrics = []listenerMetric{
	{"sessions", "Sessions the listener holds, accepted or not.", prometheus.GaugeValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Sessions) }},
	{"pending_sessions", "Sessions waiting for Accept.", prometheus.GaugeValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Pending) }},
	{"rejected_corrupt_total", "Datagrams that failed the checksum or AEAD.", prometheus.CounterValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Rejected.Corrupt) }},
	{"rejected_not_opener_total", "Datagrams from sources without a session that open no conversation.", prometheus.CounterValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Rejected.NotOpener) }},
	{"rejected_replay_total", "Replayed openers.", prometheus.CounterValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Rejected.Replay) }},
	{"rejected_over_cap_total", "Openers refused by the session caps or the accept backlog.", prometheus.CounterValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Rejected.OverCap) }},
	{"rejected_tombstoned_total", "Openers of a conversation that ended less than a minute ago.", prometheus.CounterValue, func(st *kcp.ListenerStats, _ *kcp.IOStats) float64 { return float64(st.Rejected.Tombstoned) }},
	{"rx_datagrams_total", "Datagrams read from the socket.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.RxDatagrams) }},
	{"rx_calls_total", "Read system calls that returned data.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.RxCalls) }},
	{"rx_gro_segments_total", "Datagrams that arrived in GRO runs.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.RxGROSegments) }},
	{"rx_dropped_total", "Datagrams dropped on read and transient read errors.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.RxDropped) }},
	{"tx_datagrams_total", "Datagrams handed to the kernel.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxDatagrams) }},
	{"tx_calls_total", "Write system calls.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxCalls) }},
	{"tx_gso_segments_total", "Datagrams sent inside GSO messages.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxGSOSegments) }},
	{"tx_errors_total", "Datagrams a transient send error dropped.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxErrors) }},
	{"tx_queue_drops_total", "Datagrams dropped because a session's send queue was full.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxQueueDrops) }},
	{"tx_amp_limited_total", "Output held back or dropped by the 3x budget toward unproven peers.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxAmpLimited) }},
	{"tx_ctl_drops_total", "Secure mode: handshake and control replies dropped because the reply ring was full.", prometheus.CounterValue, func(_ *kcp.ListenerStats, io *kcp.IOStats) float64 { return float64(io.TxCtlDrops) }},
}

// listenerCollector exports one listener's Stats and IOStats.
type listenerCollector struct {
	l     *kcp.Listener
	descs []*prometheus.Desc
}

// NewListenerCollector returns a collector of l's sessions, the datagrams
// it rejected per reason, and its socket's I/O counters, named
// namespace_listener_<metric> (kcp_listener_rejected_replay_total,
// kcp_listener_tx_calls_total, ...).
func NewListenerCollector(namespace string, l *kcp.Listener) prometheus.Collector {
	c := &listenerCollector{l: l}
	for _, m := range listenerMetrics {
		c.descs = append(c.descs, prometheus.NewDesc(prometheus.BuildFQName(namespace, "listener", m.name), m.help, nil, nil))
	}
	return c
}

// Describe sends the metrics' descriptors.
func (c *listenerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads Stats and IOStats once per scrape.
func (c *listenerCollector) Collect(ch chan<- prometheus.Metric) {
	st, io := c.l.Stats(), c.l.IOStats()
	for i, m := range listenerMetrics {
		ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, m.value(&st, &io))
	}
}
