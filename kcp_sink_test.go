package kcp

import (
	"bytes"
	"testing"
)

// testSink lends buffers with head bytes of room in front, as a session
// does, and keeps every datagram it is handed.
type testSink struct {
	head    int
	lent    []byte
	got     [][]byte
	inPlace int // datagrams handed back in the lent buffer
	unlent  int
}

func (t *testSink) lendFlushBuf() []byte {
	if t.lent == nil {
		t.lent = make([]byte, mtuLimit)
	}
	return t.lent[t.head:]
}

func (t *testSink) flushed(b []byte) {
	if t.lent != nil && len(b) > 0 && &b[0] == &t.lent[t.head] {
		t.inPlace++
	}
	t.got = append(t.got, bytes.Clone(b))
	t.lent = nil
}

func (t *testSink) unlend() {
	if t.lent != nil {
		t.unlent++
	}
	t.lent = nil
}

// A KCP with a sink emits the very bytes a bare KCP gives its output
// callback, datagram for datagram, each assembled in the buffer the sink
// lent (no copy), and gives a lent buffer back when SetMtu drops it.
func TestFlushSinkMatchesOutput(t *testing.T) {
	var viaOutput [][]byte
	bare := NewKCP(7, func(b []byte, n int) { viaOutput = append(viaOutput, bytes.Clone(b[:n])) })
	sunk := NewKCP(7, func([]byte, int) { t.Fatal("output called on a KCP with a sink") })
	sink := &testSink{head: 8 + fecHeaderSizePlus2}
	sunk.setSink(sink)
	msg := make([]byte, 40000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	for _, k := range []*KCP{bare, sunk} {
		k.WndSize(256, 256)
		k.NoDelay(1, 10, 2, 1)
		for _, m := range [][]byte{msg, msg[:100], msg[:1]} {
			if k.Send(m) != 0 {
				t.Fatal("Send refused")
			}
		}
		k.acklist = append(k.acklist, ackItem{sn: 3, ts: 99})
		k.flush(1000, IKCP_FLUSH_FULL)
	}
	if len(viaOutput) < 30 || len(viaOutput) != len(sink.got) {
		t.Fatalf("datagrams: output %d, sink %d", len(viaOutput), len(sink.got))
	}
	for i := range viaOutput {
		if !bytes.Equal(viaOutput[i], sink.got[i]) {
			t.Fatalf("datagram %d differs", i)
		}
	}
	if sink.inPlace != len(sink.got) {
		t.Fatalf("%d of %d datagrams assembled in the lent buffer", sink.inPlace, len(sink.got))
	}
	// A lent buffer held when the mtu changes goes back.
	sunk.takeFlushBuf()
	sunk.SetMtu(1200)
	if sink.unlent != 1 || sink.lent != nil || sunk.buffer != nil {
		t.Fatalf("SetMtu kept the lent buffer (unlent %d)", sink.unlent)
	}
}
