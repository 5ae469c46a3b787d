package kcp

import (
	"strconv"
	"sync/atomic"
)

// Snmp holds the counters kcp-go exposes, with the same names, in the same
// order, all uint64. Every field is read and written atomically by the
// package; a caller that reads a live Snmp should use Copy or ToSlice rather
// than reading the fields directly.
//
// Most fields are monotonic counters. CurrEstab, RingBufferSndQueue,
// RingBufferRcvQueue, RingBufferSndBuffer, FECShardSet and FECShardMin are
// gauges (the last value reported by any session), and MaxConn is the
// highest CurrEstab seen.
//
// The package updates counters once per batch of datagrams, not once per
// segment: a session sums its counters in a private Snmp and then adds the
// whole batch with one atomic add per changed field, so cores do not fight
// over the counters' cache lines on every packet.
type Snmp struct {
	BytesSent           uint64 // bytes accepted by Write
	BytesReceived       uint64 // bytes returned by Read
	MaxConn             uint64 // highest CurrEstab seen
	ActiveOpens         uint64 // sessions opened by dialing
	PassiveOpens        uint64 // sessions opened by a listener
	CurrEstab           uint64 // sessions open now
	InErrs              uint64 // datagrams dropped on input: socket errors, wrong source, truncated
	InCsumErrors        uint64 // datagrams that failed to decrypt or verify
	KCPInErrors         uint64 // datagrams the ARQ core rejected; kcpx adds segments ignored as forged acknowledgements (SessionStats.ForgedAcks, BadTsAcks)
	InPkts              uint64 // datagrams received
	OutPkts             uint64 // datagrams sent
	InSegs              uint64 // KCP segments received
	OutSegs             uint64 // KCP segments sent
	InBytes             uint64 // datagram bytes received
	OutBytes            uint64 // datagram bytes sent
	RetransSegs         uint64 // segments retransmitted, for any reason
	FastRetransSegs     uint64 // segments retransmitted after duplicate acks
	EarlyRetransSegs    uint64 // segments retransmitted early
	LostSegs            uint64 // segments retransmitted after their timeout
	RepeatSegs          uint64 // duplicate segments received
	FECFullShardSet     uint64 // FEC groups received complete
	FECRecovered        uint64 // datagrams rebuilt by FEC
	FECErrs             uint64 // FEC rebuilds that failed or were invalid
	FECParityShards     uint64 // FEC parity datagrams received
	FECShardSet         uint64 // FEC groups still incomplete (gauge)
	FECShardMin         uint64 // lowest FEC shard id still tracked (gauge)
	RingBufferSndQueue  uint64 // segments waiting in the send queue (gauge)
	RingBufferRcvQueue  uint64 // segments waiting in the receive queue (gauge)
	RingBufferSndBuffer uint64 // segments in flight (gauge)
	OOBPackets          uint64 // out-of-band datagrams received
}

// snmpColumns is the number of counters in Snmp.
const snmpColumns = 30

// snmpHeader names the columns of Header and ToSlice, in kcp-go's order.
// It follows the field order except for the four FEC columns, and the first
// of those is called FECFullShards, not FECFullShardSet, as in kcp-go.
var snmpHeader = [snmpColumns]string{
	"BytesSent", "BytesReceived", "MaxConn", "ActiveOpens", "PassiveOpens",
	"CurrEstab", "InErrs", "InCsumErrors", "KCPInErrors", "InPkts",
	"OutPkts", "InSegs", "OutSegs", "InBytes", "OutBytes",
	"RetransSegs", "FastRetransSegs", "EarlyRetransSegs", "LostSegs", "RepeatSegs",
	"FECFullShards", "FECParityShards", "FECErrs", "FECRecovered", "FECShardSet",
	"FECShardMin", "RingBufferSndQueue", "RingBufferRcvQueue", "RingBufferSndBuffer", "OOBPackets",
}

// columns returns a pointer to every counter of s, in snmpHeader's order.
// It is the one place that lists the fields; everything else iterates it.
func (s *Snmp) columns() [snmpColumns]*uint64 {
	return [snmpColumns]*uint64{
		&s.BytesSent, &s.BytesReceived, &s.MaxConn, &s.ActiveOpens, &s.PassiveOpens,
		&s.CurrEstab, &s.InErrs, &s.InCsumErrors, &s.KCPInErrors, &s.InPkts,
		&s.OutPkts, &s.InSegs, &s.OutSegs, &s.InBytes, &s.OutBytes,
		&s.RetransSegs, &s.FastRetransSegs, &s.EarlyRetransSegs, &s.LostSegs, &s.RepeatSegs,
		&s.FECFullShardSet, &s.FECParityShards, &s.FECErrs, &s.FECRecovered, &s.FECShardSet,
		&s.FECShardMin, &s.RingBufferSndQueue, &s.RingBufferRcvQueue, &s.RingBufferSndBuffer, &s.OOBPackets,
	}
}

// isGauge reports whether the column at index i (snmpHeader's order) holds a
// level rather than a running total; add leaves such columns alone.
func isGauge(i int) bool {
	switch snmpHeader[i] {
	case "MaxConn", "FECShardSet", "FECShardMin",
		"RingBufferSndQueue", "RingBufferRcvQueue", "RingBufferSndBuffer":
		return true
	}
	return false
}

// snmpGauge is a bitmask of the gauge columns, computed once.
var snmpGauge = func() (m uint32) {
	for i := range snmpColumns {
		if isGauge(i) {
			m |= 1 << i
		}
	}
	return m
}()

func newSnmp() *Snmp { return new(Snmp) }

// Header returns the names of the columns ToSlice reports, in kcp-go's order
// (the order of the fields, except that the FEC columns are FECFullShards,
// FECParityShards, FECErrs, FECRecovered). The caller owns the returned slice.
func (s *Snmp) Header() []string {
	h := snmpHeader
	return h[:]
}

// ToSlice returns the counters as decimal strings in Header's order, read
// atomically one by one. It is safe to call while the counters change.
func (s *Snmp) ToSlice() []string {
	out := make([]string, snmpColumns)
	for i, p := range s.columns() {
		out[i] = strconv.FormatUint(atomic.LoadUint64(p), 10)
	}
	return out
}

// Copy returns a snapshot of s, each field read atomically. It is safe to
// call while the counters change; the snapshot is not one instant across
// fields.
func (s *Snmp) Copy() *Snmp {
	d := newSnmp()
	dst := d.columns()
	for i, p := range s.columns() {
		*dst[i] = atomic.LoadUint64(p)
	}
	return d
}

// Reset sets every counter of s to zero, each field atomically. It is safe
// to call while the counters change.
func (s *Snmp) Reset() {
	for _, p := range s.columns() {
		atomic.StoreUint64(p, 0)
	}
}

// add folds a batch of counts into s: one atomic add for each counter that
// is non-zero in d, none for the others. d is a plain Snmp owned by one
// goroutine (a session's per-batch delta), written without atomics; gauge
// columns of d are ignored (see setQueues, setFECShards, connOpened).
// CurrEstab in d is a signed change in two's complement (^uint64(0) is -1).
func (s *Snmp) add(d *Snmp) {
	dst := s.columns()
	for i, p := range d.columns() {
		if v := *p; v != 0 && snmpGauge&(1<<i) == 0 {
			atomic.AddUint64(dst[i], v)
		}
	}
}

// commit adds the batch d to session (a session's own counters, may be nil)
// and to DefaultSnmp, then zeroes d for the next batch. d is owned by the
// calling goroutine.
func (d *Snmp) commit(session *Snmp) {
	if session != nil {
		session.add(d)
	}
	DefaultSnmp.add(d)
	*d = Snmp{}
}

// setQueues stores the ARQ queue gauges.
func (s *Snmp) setQueues(sndQueue, rcvQueue, sndBuffer int) {
	atomic.StoreUint64(&s.RingBufferSndQueue, uint64(max(sndQueue, 0)))
	atomic.StoreUint64(&s.RingBufferRcvQueue, uint64(max(rcvQueue, 0)))
	atomic.StoreUint64(&s.RingBufferSndBuffer, uint64(max(sndBuffer, 0)))
}

// setFECShards stores the FEC decoder gauges.
func (s *Snmp) setFECShards(shardSets, minShard uint64) {
	atomic.StoreUint64(&s.FECShardSet, shardSets)
	atomic.StoreUint64(&s.FECShardMin, minShard)
}

// connOpened counts a new session (passive when a listener accepted it) and
// raises MaxConn when CurrEstab passes it.
func (s *Snmp) connOpened(passive bool) {
	if passive {
		atomic.AddUint64(&s.PassiveOpens, 1)
	} else {
		atomic.AddUint64(&s.ActiveOpens, 1)
	}
	cur := atomic.AddUint64(&s.CurrEstab, 1)
	for {
		old := atomic.LoadUint64(&s.MaxConn)
		if cur <= old || atomic.CompareAndSwapUint64(&s.MaxConn, old, cur) {
			return
		}
	}
}

// connClosed counts a session that closed.
func (s *Snmp) connClosed() { atomic.AddUint64(&s.CurrEstab, ^uint64(0)) }

// DefaultSnmp collects the counters of every session in the process, as in
// kcp-go. It is one of the package's three globals (with SystemTimedSched
// and the buffer pool) because kcp-go users read it directly and expect
// process-wide totals; each session also keeps its own Snmp. Safe for
// concurrent use; never nil.
var DefaultSnmp = newSnmp()
