package kcp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestRecvStream checks that one recvStream call drains as many whole
// segments as fit in stream mode, and stays Recv (one message) in message
// mode.
func TestRecvStream(t *testing.T) {
	tests := []struct {
		name   string
		stream bool
		segs   int // 4-byte PUSH segments fed in order
		buf    int
		want   []int // lengths returned by successive calls
	}{
		{"stream, all fit", true, 5, 64, []int{20}},
		{"stream, buffer cut at a segment", true, 5, 10, []int{8, 8, 4}},
		{"stream, buffer of one segment", true, 3, 4, []int{4, 4, 4}},
		{"message mode, one message per call", false, 3, 64, []int{4, 4, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := NewKCP(testConv, func([]byte, int) {})
			k.setStream(tc.stream)
			var all []byte
			for sn := range tc.segs {
				d := []byte{byte(sn), byte(sn), byte(sn), byte(sn)}
				all = append(all, d...)
				if r := k.input(1, rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 1, uint32(sn), 0, d), IKCP_PACKET_REGULAR, false); r != 0 {
					t.Fatalf("input: %d", r)
				}
			}
			var got []byte
			buf := make([]byte, tc.buf)
			for i, w := range tc.want {
				n := k.recvStream(buf)
				if n != w {
					t.Fatalf("call %d: got %d bytes, want %d", i, n, w)
				}
				got = append(got, buf[:n]...)
			}
			if n := k.recvStream(buf); n != -1 {
				t.Fatalf("drained queue: got %d, want -1", n)
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("bytes: got %x, want %x", got, all)
			}
		})
	}
}

// TestWindowReportOnOpen checks that a receiver whose last advertised
// window was small tells the peer (WINS) once reading opens it by half the
// receive window, and stays quiet for smaller openings.
func TestWindowReportOnOpen(t *testing.T) {
	const rcvWnd = 32
	tests := []struct {
		name     string
		queued   int // in-order segments queued before the flush that advertises the window
		read     int // segments read afterwards
		wantTell bool
	}{
		{"window nearly closed, fully drained", 30, 30, true},
		{"opened by exactly half", 20, 16, true},
		{"opened by less than half", 20, 15, false},
		{"window closed, one read", rcvWnd, 1, true},
		{"window wide open, read", 2, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out [][]byte
			k := NewKCP(testConv, func(b []byte, size int) { out = append(out, append([]byte(nil), b[:size]...)) })
			k.WndSize(32, rcvWnd)
			for sn := range tc.queued {
				k.input(1, rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 1, uint32(sn), 0, []byte{1}), IKCP_PACKET_REGULAR, false)
			}
			k.flush(2, IKCP_FLUSH_ACKONLY) // ACKs carry the window left: rcvWnd - queued
			if k.lastWnd != uint32(rcvWnd-tc.queued) {
				t.Fatalf("advertised %d, want %d", k.lastWnd, rcvWnd-tc.queued)
			}
			buf := make([]byte, 1)
			for range tc.read {
				if n := k.Recv(buf); n != 1 {
					t.Fatalf("Recv: %d", n)
				}
			}
			if got := k.windowReportDue(); got != tc.wantTell {
				t.Fatalf("windowReportDue = %v, want %v", got, tc.wantTell)
			}
			out = out[:0]
			k.flush(3, IKCP_FLUSH_ACKONLY)
			var wins []byte
			for _, d := range out {
				for len(d) >= IKCP_OVERHEAD {
					if d[4] == IKCP_CMD_WINS {
						wins = d[:IKCP_OVERHEAD]
					}
					d = d[IKCP_OVERHEAD+binary.LittleEndian.Uint32(d[20:]):]
				}
			}
			if (wins != nil) != tc.wantTell {
				t.Fatalf("WINS sent = %v, want %v", wins != nil, tc.wantTell)
			}
			if wins != nil {
				if w := binary.LittleEndian.Uint16(wins[6:]); int(w) != rcvWnd-tc.queued+tc.read {
					t.Fatalf("WINS window %d, want %d", w, rcvWnd-tc.queued+tc.read)
				}
				if k.windowReportDue() {
					t.Fatal("report still due after the flush that sent it")
				}
			}
		})
	}
}
