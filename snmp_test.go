package kcp

import (
	"reflect"
	"strconv"
	"sync"
	"testing"
)

// kcp-go's exported API, checked at compile time.
var (
	_ *Snmp                = DefaultSnmp
	_ func(*Snmp) []string = (*Snmp).Header
	_ func(*Snmp) []string = (*Snmp).ToSlice
	_ func(*Snmp) *Snmp    = (*Snmp).Copy
	_ func(*Snmp)          = (*Snmp).Reset
)

// kcp-go v5.6.72's Snmp field names in declaration order.
var kcpgoSnmpFields = []string{
	"BytesSent", "BytesReceived", "MaxConn", "ActiveOpens", "PassiveOpens", "CurrEstab",
	"InErrs", "InCsumErrors", "KCPInErrors", "InPkts", "OutPkts", "InSegs", "OutSegs",
	"InBytes", "OutBytes", "RetransSegs", "FastRetransSegs", "EarlyRetransSegs", "LostSegs",
	"RepeatSegs", "FECFullShardSet", "FECRecovered", "FECErrs", "FECParityShards",
	"FECShardSet", "FECShardMin", "RingBufferSndQueue", "RingBufferRcvQueue",
	"RingBufferSndBuffer", "OOBPackets",
}

// kcp-go v5.6.72's Header() output.
var kcpgoSnmpHeader = []string{
	"BytesSent", "BytesReceived", "MaxConn", "ActiveOpens", "PassiveOpens", "CurrEstab",
	"InErrs", "InCsumErrors", "KCPInErrors", "InPkts", "OutPkts", "InSegs", "OutSegs",
	"InBytes", "OutBytes", "RetransSegs", "FastRetransSegs", "EarlyRetransSegs", "LostSegs",
	"RepeatSegs", "FECFullShards", "FECParityShards", "FECErrs", "FECRecovered",
	"FECShardSet", "FECShardMin", "RingBufferSndQueue", "RingBufferRcvQueue",
	"RingBufferSndBuffer", "OOBPackets",
}

// headerField maps a header column to the field kcp-go's ToSlice reads for it.
func headerField(col string) string {
	if col == "FECFullShards" {
		return "FECFullShardSet"
	}
	return col
}

func TestSnmpFieldsMatchKCPGo(t *testing.T) {
	typ := reflect.TypeFor[Snmp]()
	if typ.NumField() != len(kcpgoSnmpFields) {
		t.Fatalf("Snmp has %d fields, kcp-go has %d", typ.NumField(), len(kcpgoSnmpFields))
	}
	for i, want := range kcpgoSnmpFields {
		f := typ.Field(i)
		if f.Name != want || f.Type.Kind() != reflect.Uint64 {
			t.Errorf("field %d = %s %s, want %s uint64", i, f.Name, f.Type, want)
		}
	}
}

func TestSnmpHeaderAndToSliceOrder(t *testing.T) {
	s := newSnmp()
	if got := s.Header(); !reflect.DeepEqual(got, kcpgoSnmpHeader) {
		t.Fatalf("Header() = %v\nwant %v", got, kcpgoSnmpHeader)
	}
	// Give every field a distinct value, then check each column reads the
	// field kcp-go reads for that column.
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(1000 + i))
	}
	row := s.ToSlice()
	if len(row) != len(kcpgoSnmpHeader) {
		t.Fatalf("ToSlice has %d columns", len(row))
	}
	for i, col := range kcpgoSnmpHeader {
		want := strconv.FormatUint(v.FieldByName(headerField(col)).Uint(), 10)
		if row[i] != want {
			t.Errorf("column %d (%s) = %s, want %s", i, col, row[i], want)
		}
	}
	// The caller owns the header slice.
	h := s.Header()
	h[0] = "changed"
	if s.Header()[0] != "BytesSent" {
		t.Error("Header shares its backing array with the caller")
	}
}

func TestSnmpCopyReset(t *testing.T) {
	s := newSnmp()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i*7 + 1))
	}
	c := s.Copy()
	if c == s || !reflect.DeepEqual(*c, *s) {
		t.Fatalf("Copy = %+v, want %+v", *c, *s)
	}
	s.Reset()
	if !reflect.DeepEqual(*s, Snmp{}) {
		t.Errorf("after Reset: %+v", *s)
	}
	if c.OOBPackets != 30*7-6 {
		t.Errorf("Reset changed the copy: %+v", *c)
	}
}

func TestSnmpAddSkipsGaugesAndHandlesDecrement(t *testing.T) {
	s := newSnmp()
	s.RingBufferSndQueue = 5
	d := Snmp{InPkts: 3, OutBytes: 4200, RingBufferSndQueue: 99, MaxConn: 7, CurrEstab: 2}
	s.add(&d)
	if s.InPkts != 3 || s.OutBytes != 4200 || s.CurrEstab != 2 {
		t.Errorf("counters not added: %+v", *s)
	}
	if s.RingBufferSndQueue != 5 || s.MaxConn != 0 {
		t.Errorf("gauges changed by add: %+v", *s)
	}
	s.add(&Snmp{CurrEstab: ^uint64(0)})
	if s.CurrEstab != 1 {
		t.Errorf("CurrEstab after -1 = %d", s.CurrEstab)
	}
	s.setQueues(1, 2, -3)
	s.setFECShards(4, 5)
	if s.RingBufferSndQueue != 1 || s.RingBufferRcvQueue != 2 || s.RingBufferSndBuffer != 0 ||
		s.FECShardSet != 4 || s.FECShardMin != 5 {
		t.Errorf("gauges: %+v", *s)
	}
}

func TestSnmpCommit(t *testing.T) {
	before := DefaultSnmp.Copy()
	session := newSnmp()
	d := Snmp{InPkts: 4, OutSegs: 9}
	d.commit(session)
	d.InPkts = 1
	d.commit(nil)
	if d != (Snmp{}) {
		t.Errorf("delta not zeroed: %+v", d)
	}
	if session.InPkts != 4 || session.OutSegs != 9 {
		t.Errorf("session counters %+v", *session)
	}
	after := DefaultSnmp.Copy()
	if after.InPkts-before.InPkts != 5 || after.OutSegs-before.OutSegs != 9 {
		t.Errorf("DefaultSnmp moved by InPkts %d OutSegs %d, want 5 and 9",
			after.InPkts-before.InPkts, after.OutSegs-before.OutSegs)
	}
}

func TestSnmpConnOpenedClosed(t *testing.T) {
	s := newSnmp()
	s.connOpened(false)
	s.connOpened(true)
	s.connOpened(true)
	s.connClosed()
	s.connClosed()
	s.connOpened(false)
	want := Snmp{ActiveOpens: 2, PassiveOpens: 2, CurrEstab: 2, MaxConn: 3}
	if *s != want {
		t.Errorf("got %+v, want %+v", *s, want)
	}
}

func TestSnmpConcurrentAdd(t *testing.T) {
	s := newSnmp()
	const goroutines, batches = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d Snmp
			for b := range batches {
				d = Snmp{InPkts: 2, InBytes: 3000, OutSegs: uint64(g)}
				s.add(&d)
				if b%50 == 0 {
					s.connOpened(g%2 == 0)
					_ = s.Copy()
					_ = s.ToSlice()
					s.connClosed()
				}
			}
		}()
	}
	wg.Wait()
	if s.InPkts != 2*goroutines*batches || s.InBytes != 3000*goroutines*batches {
		t.Errorf("lost updates: InPkts=%d InBytes=%d", s.InPkts, s.InBytes)
	}
	if want := uint64(0+1+2+3+4+5+6+7) * batches; s.OutSegs != want {
		t.Errorf("OutSegs=%d want %d", s.OutSegs, want)
	}
	if s.CurrEstab != 0 || s.MaxConn == 0 || s.MaxConn > goroutines {
		t.Errorf("CurrEstab=%d MaxConn=%d", s.CurrEstab, s.MaxConn)
	}
}

func BenchmarkSnmpAdd(b *testing.B) {
	s := newSnmp()
	d := Snmp{InPkts: 64, InBytes: 64 * 1400, InSegs: 64}
	b.ReportAllocs()
	for b.Loop() {
		s.add(&d)
	}
}
