package kcp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

const testConv = 0x11223344

// rawSeg builds one segment from its wire fields, independently of the core.
func rawSeg(conv uint32, cmd, frg uint8, wnd uint16, ts, sn, una uint32, data []byte) []byte {
	b := make([]byte, 24, 24+len(data))
	binary.LittleEndian.PutUint32(b[0:], conv)
	b[4], b[5] = cmd, frg
	binary.LittleEndian.PutUint16(b[6:], wnd)
	binary.LittleEndian.PutUint32(b[8:], ts)
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[16:], una)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(data)))
	return append(b, data...)
}

// capture returns a KCP whose datagrams are appended to *out as hex.
func capture(out *[]string) *KCP {
	return NewKCP(testConv, func(buf []byte, size int) {
		*out = append(*out, hex.EncodeToString(buf[:size]))
	})
}

func unhex(s string) string { return strings.ReplaceAll(s, " ", "") }

// TestKnownAnswerSegments compares the bytes the core emits with hex
// derived by hand from the segment layout: conv u32, cmd u8, frg u8, wnd
// u16, ts u32, sn u32, una u32, len u32, all little-endian, then the data.
func TestKnownAnswerSegments(t *testing.T) {
	const now = 0x0a0b0c0d
	tests := []struct {
		name string
		run  func(out *[]string)
		want []string
	}{
		{
			name: "PUSH",
			run: func(out *[]string) {
				k := capture(out)
				k.Send([]byte("hi"))
				k.flush(now, IKCP_FLUSH_FULL)
			},
			want: []string{"44332211 51 00 2000 0d0c0b0a 00000000 00000000 02000000 6869"},
		},
		{
			name: "PUSH fragments",
			run: func(out *[]string) {
				k := capture(out)
				k.SetMtu(24 + 4)
				k.NoDelay(-1, -1, -1, 1)
				k.Send([]byte("abcdefghij"))
				k.flush(now, IKCP_FLUSH_FULL)
			},
			want: []string{
				"44332211 51 02 2000 0d0c0b0a 00000000 00000000 04000000 61626364",
				"44332211 51 01 2000 0d0c0b0a 01000000 00000000 04000000 65666768",
				"44332211 51 00 2000 0d0c0b0a 02000000 00000000 02000000 696a",
			},
		},
		{
			name: "ACK",
			run: func(out *[]string) {
				k := capture(out)
				k.input(5, rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, now, 0, 0, []byte("hi")), IKCP_PACKET_REGULAR, false)
				k.flush(6, IKCP_FLUSH_ACKONLY)
			},
			// one segment waits in the receive queue: window 31
			want: []string{"44332211 52 00 1f00 0d0c0b0a 00000000 01000000 00000000"},
		},
		{
			name: "two ACKs in one datagram",
			run: func(out *[]string) {
				k := capture(out)
				k.input(5, rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 7, 2, 0, []byte("x")), IKCP_PACKET_REGULAR, false)
				k.input(5, rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 9, 1, 0, []byte("y")), IKCP_PACKET_REGULAR, false)
				k.flush(6, IKCP_FLUSH_ACKONLY)
			},
			want: []string{"44332211 52 00 2000 07000000 02000000 00000000 00000000" +
				"44332211 52 00 2000 09000000 01000000 00000000 00000000"},
		},
		{
			name: "WASK",
			run: func(out *[]string) {
				k := capture(out)
				k.input(0, rawSeg(testConv, IKCP_CMD_WINS, 0, 0, 0, 0, 0, nil), IKCP_PACKET_REGULAR, false)
				k.flush(1000, IKCP_FLUSH_FULL) // starts the 500 ms probe timer
				k.flush(1500, IKCP_FLUSH_FULL)
			},
			want: []string{"44332211 53 00 2000 00000000 00000000 00000000 00000000"},
		},
		{
			name: "WINS",
			run: func(out *[]string) {
				k := capture(out)
				k.input(0, rawSeg(testConv, IKCP_CMD_WASK, 0, 0, 0, 0, 0, nil), IKCP_PACKET_REGULAR, false)
				k.flush(1, IKCP_FLUSH_ACKONLY)
			},
			want: []string{"44332211 54 00 2000 00000000 00000000 00000000 00000000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []string
			tt.run(&out)
			if len(out) != len(tt.want) {
				t.Fatalf("got %d datagrams %q, want %d", len(out), out, len(tt.want))
			}
			for i := range out {
				if out[i] != unhex(tt.want[i]) {
					t.Errorf("datagram %d:\n got %s\nwant %s", i, out[i], unhex(tt.want[i]))
				}
			}
		})
	}
}

func TestInputReturnCodes(t *testing.T) {
	push := rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 0, 0, 0, []byte("abc"))
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"valid", push, 0},
		{"short", push[:23], -1},
		{"empty", nil, -1},
		{"other conv", rawSeg(testConv+1, IKCP_CMD_PUSH, 0, 32, 0, 0, 0, nil), -1},
		{"length past end", push[:len(push)-1], -2},
		{"huge length", append(rawSeg(testConv, IKCP_CMD_ACK, 0, 32, 0, 0, 0, nil)[:20], 0xff, 0xff, 0xff, 0xff), -2},
		{"unknown cmd", rawSeg(testConv, 80, 0, 32, 0, 0, 0, nil), -3},
		{"bad after good", append(append([]byte{}, push...), rawSeg(testConv, 85, 0, 32, 0, 1, 0, nil)...), -3},
		{"trailing bytes ignored", append(append([]byte{}, push...), 1, 2, 3), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := NewKCP(testConv, func([]byte, int) {})
			if got := k.input(0, tt.data, IKCP_PACKET_REGULAR, false); got != tt.want {
				t.Fatalf("input = %d, want %d", got, tt.want)
			}
		})
	}
	// a good segment before a bad one is still delivered
	k := NewKCP(testConv, func([]byte, int) {})
	k.input(0, append(append([]byte{}, push...), rawSeg(testConv, 85, 0, 32, 0, 1, 0, nil)...), IKCP_PACKET_REGULAR, false)
	buf := make([]byte, 10)
	if n := k.Recv(buf); n != 3 || string(buf[:3]) != "abc" {
		t.Fatalf("Recv = %d %q, want the segment before the bad one", n, buf[:max(n, 0)])
	}
}

// TestZeroLengthPush: a C peer can send a PUSH with no data. kcp-go's Read
// wedged on it (PeekSize 0 was read as "nothing"). Here it is discarded and
// the data behind it is readable.
func TestZeroLengthPush(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{true: "stream", false: "message"}[stream], func(t *testing.T) {
			k := NewKCP(testConv, func([]byte, int) {})
			k.setStream(stream)
			in := func(sn uint32, frg uint8, data string) {
				t.Helper()
				if r := k.input(0, rawSeg(testConv, IKCP_CMD_PUSH, frg, 32, 0, sn, 0, []byte(data)), IKCP_PACKET_REGULAR, false); r != 0 {
					t.Fatalf("input = %d", r)
				}
			}
			in(0, 0, "")
			if got := k.PeekSize(); got != -1 {
				t.Fatalf("PeekSize with only an empty message = %d, want -1", got)
			}
			in(1, 1, "") // an empty message in two fragments
			in(2, 0, "")
			in(3, 0, "hello")
			if got := k.PeekSize(); got != 5 {
				t.Fatalf("PeekSize = %d, want 5", got)
			}
			buf := make([]byte, 16)
			if n := k.Recv(buf); n != 5 || string(buf[:n]) != "hello" {
				t.Fatalf("Recv = %d %q", n, buf[:max(n, 0)])
			}
			if k.rcvQueue.len() != 0 || k.rcvMsgEnds != 0 {
				t.Fatalf("queue not empty: %d segments, %d ends", k.rcvQueue.len(), k.rcvMsgEnds)
			}
			if n := k.Recv(buf); n != -1 {
				t.Fatalf("Recv on empty = %d, want -1", n)
			}
		})
	}
}

// TestPeekSizeFrg255: kcp-go computed frg+1 in a byte, so a message of 256
// fragments (first frg 255) looked complete after one fragment.
func TestPeekSizeFrg255(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	k.WndSize(0, 512)
	total := 0
	for i := 0; i < 256; i++ {
		if got := k.PeekSize(); got != -1 {
			t.Fatalf("after %d of 256 fragments PeekSize = %d, want -1", i, got)
		}
		data := bytes.Repeat([]byte{byte(i)}, 1+i%7)
		total += len(data)
		k.input(0, rawSeg(testConv, IKCP_CMD_PUSH, uint8(255-i), 512, 0, uint32(i), 0, data), IKCP_PACKET_REGULAR, false)
	}
	if got := k.PeekSize(); got != total {
		t.Fatalf("PeekSize = %d, want %d", got, total)
	}
	buf := make([]byte, total)
	if n := k.Recv(buf[:total-1]); n != -2 {
		t.Fatalf("Recv into a short buffer = %d, want -2", n)
	}
	if n := k.Recv(buf); n != total || buf[total-1] != 255 {
		t.Fatalf("Recv = %d, want %d", n, total)
	}
}

// TestLargerPeerMessage: a peer with a larger window sends a 100-fragment
// message to a receiver whose window is 32. Such a message can never
// complete (as in C KCP and kcp-go; kcpx senders split at maxMessageSize),
// and the receiver holds no more than its window of it in the receive queue
// and its window in the reorder slots: a peer sending only fragments pins
// at most 2 x window x mss (issue 13). Before, the queue held 256 segments.
func TestLargerPeerMessage(t *testing.T) {
	a, b := newPair(presetFast3, false, 32)
	a.WndSize(256, 256)
	msg := make([]byte, 100*a.segmentSize())
	if r := a.Send(msg); r != 0 {
		t.Fatalf("Send = %d", r)
	}
	b.WndSize(0, 32)
	l := newSimLink(3, linkConfig{delay: 5}, a, b)
	buf := make([]byte, len(msg))
	for l.now < 5_000 {
		l.deliver()
		if n := b.Recv(buf); n >= 0 {
			t.Fatalf("Recv = %d: a message larger than the window completed", n)
		}
		if q := b.recvQueued(); q > b.recvWindow() {
			t.Fatalf("receive queue holds %d segments, window %d", q, b.recvWindow())
		}
		a.update(l.now)
		b.update(l.now)
		l.now = l.nextEvent()
	}
	if q, held := b.recvQueued(), b.rcvBuf.count; q != 32 || held > 32 {
		t.Fatalf("receiver holds %d queued and %d reordered segments; want 32 and at most 32", q, held)
	}
}

func TestSendLimits(t *testing.T) {
	tests := []struct {
		name   string
		stream bool
		rcvwnd int
		size   func(mss int) int
		want   int
	}{
		{"empty", false, 32, func(int) int { return 0 }, -1},
		{"one byte", false, 32, func(int) int { return 1 }, 0},
		{"window of fragments", false, 32, func(m int) int { return 32 * m }, 0},
		{"one past the window", false, 32, func(m int) int { return 32*m + 1 }, -2},
		{"255 fragments", false, 1024, func(m int) int { return 255 * m }, 0},
		{"256 fragments", false, 1024, func(m int) int { return 255*m + 1 }, -2},
		{"stream 255 segments", true, 32, func(m int) int { return 255 * m }, 0},
		{"stream 256 segments", true, 32, func(m int) int { return 255*m + 1 }, -2},
		{"stream empty", true, 32, func(int) int { return 0 }, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := NewKCP(testConv, func([]byte, int) {})
			k.setStream(tt.stream)
			k.WndSize(0, tt.rcvwnd)
			if probe := NewKCP(testConv, func([]byte, int) {}); !tt.stream {
				probe.WndSize(0, tt.rcvwnd)
				if probe.Send(make([]byte, probe.maxMessageSize())) != 0 {
					t.Fatalf("Send refused maxMessageSize %d", probe.maxMessageSize())
				}
			}
			got := k.Send(make([]byte, tt.size(k.segmentSize())))
			if got != tt.want {
				t.Fatalf("Send = %d, want %d", got, tt.want)
			}
			if got != 0 && k.WaitSnd() != 0 {
				t.Fatalf("a failed Send queued %d segments", k.WaitSnd())
			}
		})
	}
	k := NewKCP(testConv, func([]byte, int) {})
	if got, want := k.maxMessageSize(), 32*(IKCP_MTU_DEF-IKCP_OVERHEAD); got != want {
		t.Fatalf("maxMessageSize = %d, want %d", got, want)
	}
}

// TestStreamSendAppends: stream mode fills the last queued segment first, and
// a Send that fails leaves it untouched.
func TestStreamSendAppends(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	k.setStream(true)
	mss := k.segmentSize()
	k.Send(make([]byte, 10))
	k.Send(make([]byte, mss))
	if k.WaitSnd() != 2 || len(k.sndQueue.at(0).data) != mss || len(k.sndQueue.at(1).data) != 10 {
		t.Fatalf("segments %d: %d + %d bytes", k.WaitSnd(), len(k.sndQueue.at(0).data), len(k.sndQueue.at(1).data))
	}
	if r := k.Send(make([]byte, 256*mss)); r != -2 {
		t.Fatalf("Send = %d", r)
	}
	if len(k.sndQueue.at(1).data) != 10 {
		t.Fatal("a failed Send appended to the last segment")
	}
}

// ackSeg is an ACK from the peer for sn, echoing ts, with una and window.
func ackSeg(sn, ts, una uint32, wnd uint16) []byte {
	return rawSeg(testConv, IKCP_CMD_ACK, 0, wnd, ts, sn, una, nil)
}

// winsSeg builds a window report (WINS) advertising wnd.
func winsSeg(wnd uint16) []byte {
	return rawSeg(testConv, IKCP_CMD_WINS, 0, wnd, 0, 0, 0, nil)
}

// TestRTTEstimator feeds RTT samples through real ACKs and compares srtt,
// rttvar and rto with the formulas of the spec computed here.
func TestRTTEstimator(t *testing.T) {
	samples := []int32{80, 120, 60, 300, 90, 90, 90, 5, 1000}
	k := NewKCP(testConv, func([]byte, int) {})
	k.NoDelay(0, 20, 0, 1)
	var srtt, rttvar int32
	now := uint32(1000)
	for i, r := range samples {
		k.Send([]byte("x"))
		k.flush(now, IKCP_FLUSH_FULL)
		sn := uint32(i)
		now += uint32(r)
		k.input(now, ackSeg(sn, now-uint32(r), sn+1, 32), IKCP_PACKET_REGULAR, false)
		if i == 0 {
			srtt, rttvar = r, r/2
		} else {
			d := r - srtt
			if d < 0 {
				d = -d
			}
			rttvar += (d - rttvar) / 4
			srtt += (r - srtt) / 8
		}
		rto := min(max(uint32(srtt)+max(20, 4*uint32(rttvar)), IKCP_RTO_MIN), IKCP_RTO_MAX)
		if k.srttMs() != srtt || k.rttVarMs() != rttvar || k.rtoMs() != rto {
			t.Fatalf("after sample %d (%d ms): srtt %d rttvar %d rto %d, want %d %d %d",
				i, r, k.srttMs(), k.rttVarMs(), k.rtoMs(), srtt, rttvar, rto)
		}
	}
}

// TestFECPacketsTakeNoSample: an ACK rebuilt by FEC acknowledges, but does
// not feed the RTT estimator nor set the peer's window.
func TestFECPacketsTakeNoSample(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	k.Send([]byte("a"))
	k.flush(0, IKCP_FLUSH_FULL)
	k.input(50, ackSeg(0, 0, 1, 7), IKCP_PACKET_FEC, false)
	if k.WaitSnd() != 0 {
		t.Fatal("FEC ACK did not acknowledge")
	}
	if k.srttMs() != 0 || k.rtoMs() != IKCP_RTO_DEF || k.rmtWnd != IKCP_WND_RCV {
		t.Fatalf("FEC packet changed srtt %d rto %d rmtWnd %d", k.srttMs(), k.rtoMs(), k.rmtWnd)
	}
	k.Send([]byte("b"))
	k.flush(100, IKCP_FLUSH_FULL)
	k.input(150, ackSeg(1, 100, 2, 7), IKCP_PACKET_REGULAR, false)
	if k.srttMs() != 50 || k.rmtWnd != 7 {
		t.Fatalf("regular ACK: srtt %d rmtWnd %d, want 50 and 7", k.srttMs(), k.rmtWnd)
	}
}

// TestStaleAcksIgnored: an ACK that acknowledges nothing new (a duplicate,
// or one for a segment already covered by una) neither feeds the estimator
// nor counts as a skip for fast retransmission.
func TestStaleAcksIgnored(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	k.NoDelay(1, 10, 2, 1)
	k.Send(make([]byte, 3*k.segmentSize())) // sn 0, 1, 2
	k.flush(0, IKCP_FLUSH_FULL)
	k.input(40, ackSeg(2, 0, 0, 32), IKCP_PACKET_REGULAR, false) // sn 2 out of order
	if k.srttMs() != 40 {
		t.Fatalf("srtt %d after the first ACK, want 40", k.srttMs())
	}
	if f := k.sndBuf.at(0).fastack; f != 1 {
		t.Fatalf("fastack of sn 0 = %d, want 1", f)
	}
	k.input(400, ackSeg(2, 0, 0, 32), IKCP_PACKET_REGULAR, false) // duplicate
	if k.srttMs() != 40 {
		t.Fatalf("a duplicate ACK fed the estimator: srtt %d", k.srttMs())
	}
	if f := k.sndBuf.at(0).fastack; f != 1 {
		t.Fatalf("a duplicate ACK counted as a skip: fastack %d", f)
	}
}

// TestFastRetransmit: with resend 2, two newer ACKs skipping sn 0 resend it
// at once, without waiting for its RTO.
func TestFastRetransmit(t *testing.T) {
	var pushes []uint32
	k := NewKCP(testConv, func(buf []byte, size int) {
		for b := buf[:size]; len(b) >= 24; {
			n := binary.LittleEndian.Uint32(b[20:])
			if b[4] == IKCP_CMD_PUSH {
				pushes = append(pushes, binary.LittleEndian.Uint32(b[12:]))
			}
			b = b[24+n:]
		}
	})
	k.NoDelay(1, 10, 2, 1)
	k.Send(make([]byte, 4*k.segmentSize()))
	k.flush(0, IKCP_FLUSH_FULL)
	pushes = pushes[:0]
	k.input(20, ackSeg(1, 0, 0, 32), IKCP_PACKET_REGULAR, false)
	if len(pushes) != 0 {
		t.Fatalf("resent %v after one skipping ACK", pushes)
	}
	k.input(21, ackSeg(2, 0, 0, 32), IKCP_PACKET_REGULAR, false)
	if len(pushes) != 1 || pushes[0] != 0 {
		t.Fatalf("after two skipping ACKs resent %v, want [0]", pushes)
	}
	if st := k.takeStats(); st.FastRetransSegs != 1 || st.RetransSegs != 1 {
		t.Fatalf("stats %+v", st)
	}
	if st := k.takeStats(); st != (coreStats{}) {
		t.Fatalf("takeStats did not zero: %+v", st)
	}
	// early retransmit: sn 3 was skipped once; with no new data it goes now
	pushes = pushes[:0]
	k.input(22, ackSeg(1, 0, 0, 32), IKCP_PACKET_REGULAR, false) // stale: nothing
	k.flush(23, IKCP_FLUSH_FULL)
	if len(pushes) != 0 {
		t.Fatalf("resent %v with nothing skipped since", pushes)
	}
}

// TestRTOBackoff records when an unanswered segment is sent: the RTO grows
// by the current RTO per timeout (nodelay 0) or by half of it (nodelay 1),
// and the link is dead at the 20th transmission.
func TestRTOBackoff(t *testing.T) {
	tests := []struct {
		nodelay int
		want    []uint32
	}{
		{0, []uint32{0, 200, 600, 1200, 2000}},
		{1, []uint32{0, 200, 500, 900, 1400}},
	}
	for _, tt := range tests {
		t.Run(map[int]string{0: "nodelay0", 1: "nodelay1"}[tt.nodelay], func(t *testing.T) {
			var now uint32
			var times []uint32
			k := NewKCP(testConv, func(buf []byte, size int) { times = append(times, now) })
			k.NoDelay(tt.nodelay, 10, 0, 1)
			k.Send([]byte("x"))
			for now = 0; len(times) < len(tt.want); now++ {
				k.update(now)
			}
			for i := range tt.want {
				if times[i] != tt.want[i] {
					t.Fatalf("sent at %v, want %v", times, tt.want)
				}
			}
		})
	}
}

func TestDeadLink(t *testing.T) {
	var now uint32
	sends := 0
	k := NewKCP(testConv, func([]byte, int) { sends++ })
	k.NoDelay(1, 10, 0, 1)
	k.Send([]byte("x"))
	for now = 0; sends < IKCP_DEADLINK-1; now++ {
		k.update(now)
	}
	if k.dead() {
		t.Fatalf("dead after %d transmissions", sends)
	}
	for ; sends < IKCP_DEADLINK; now++ {
		k.update(now)
	}
	if !k.dead() {
		t.Fatalf("not dead after %d transmissions", sends)
	}
}

// TestProbeSchedule: with a zero remote window, WASK goes out 500 ms after
// the window closed, then every 1.5x longer.
func TestProbeSchedule(t *testing.T) {
	var now uint32
	var wasks []uint32
	k := NewKCP(testConv, func(buf []byte, size int) {
		if buf[4] == IKCP_CMD_WASK {
			wasks = append(wasks, now)
		}
	})
	k.NoDelay(0, 10, 0, 1)
	k.input(0, rawSeg(testConv, IKCP_CMD_WINS, 0, 0, 0, 0, 0, nil), IKCP_PACKET_REGULAR, false)
	for now = 0; now <= 3000; now++ {
		k.update(now)
	}
	// updates run every 10 ms, so each probe goes at the first tick at or
	// after its due time: 500, 500+750, 1250+1125
	want := []uint32{500, 1250, 2380}
	if len(wasks) != len(want) || wasks[0] != want[0] || wasks[1] != want[1] || wasks[2] != want[2] {
		t.Fatalf("WASK at %v, want %v", wasks, want)
	}
	// a non-zero window stops the probing
	k.input(now, rawSeg(testConv, IKCP_CMD_WINS, 0, 5, 0, 0, 0, nil), IKCP_PACKET_REGULAR, false)
	wasks = wasks[:0]
	for end := now + 5000; now < end; now++ {
		k.update(now)
	}
	if len(wasks) != 0 {
		t.Fatalf("probed with an open window at %v", wasks)
	}
}

func TestSetMtu(t *testing.T) {
	tests := []struct {
		mtu, want, mss int
	}{
		{-1, -1, 1376}, {0, -1, 1376}, {24, -1, 1376}, {25, 0, 1}, {1350, 0, 1326}, {1500, 0, 1476},
	}
	for _, tt := range tests {
		k := NewKCP(testConv, func([]byte, int) {})
		if got := k.SetMtu(tt.mtu); got != tt.want || k.segmentSize() != tt.mss {
			t.Errorf("SetMtu(%d) = %d mss %d, want %d mss %d", tt.mtu, got, k.segmentSize(), tt.want, tt.mss)
		}
	}
}

func TestNoDelayAndWndSize(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	if k.interval != IKCP_INTERVAL || k.rxMinrto != IKCP_RTO_MIN || k.sendWindow() != 32 || k.recvWindow() != 32 {
		t.Fatal("defaults differ from kcp-go")
	}
	k.NoDelay(1, 1, 3, 1)
	if k.interval != 10 || k.rxMinrto != IKCP_RTO_NDL || k.fastresend != 3 || !k.nocwnd {
		t.Fatalf("NoDelay(1,1,3,1): interval %d minrto %d resend %d nc %v", k.interval, k.rxMinrto, k.fastresend, k.nocwnd)
	}
	k.NoDelay(-1, 99999, -1, -1)
	if k.interval != 5000 || k.rxMinrto != IKCP_RTO_NDL || k.fastresend != 3 {
		t.Fatal("negative arguments changed settings or interval not clamped")
	}
	k.WndSize(0, 1<<20)
	if k.recvWindow() != 65535 || k.sendWindow() != 32 {
		t.Fatalf("WndSize: snd %d rcv %d", k.sendWindow(), k.recvWindow())
	}
	if k.convID() != testConv {
		t.Fatal("convID")
	}
}

// TestCheck: Check says when Update next has work: the flush interval, or
// sooner when a retransmission is due.
func TestCheck(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	k.NoDelay(1, 100, 0, 1)
	if got := k.check(7); got != 7 {
		t.Fatalf("check before update = %d, want now", got)
	}
	k.update(1000)
	if got := k.check(1000); got != 1100 {
		t.Fatalf("check idle = %d, want 1100", got)
	}
	k.Send([]byte("x"))
	k.flush(1130, IKCP_FLUSH_FULL) // sent at 1130, RTO 200: due at 1330
	for _, now := range []uint32{1100, 1200, 1300} {
		k.update(now)
	}
	if got := k.check(1310); got != 1330 {
		t.Fatalf("check = %d, want the retransmission at 1330 before the 1400 tick", got)
	}
	if got := k.flush(1310, IKCP_FLUSH_FULL); got != 20 {
		t.Fatalf("flush returned %d ms, want 20 until the RTO", got)
	}
	if got := k.flush(1330, IKCP_FLUSH_FULL); got < 1 || got > 100 {
		t.Fatalf("flush returned %d, want 1..interval", got)
	}
}

func TestDefaultClockAndLogger(t *testing.T) {
	var events []string
	var out int
	k := NewKCP(testConv, func([]byte, int) { out++ })
	k.SetLogger(IKCP_LOG_ALL, func(msg string, args ...any) { events = append(events, msg) })
	if now := k.clock(); now > 60_000 {
		t.Fatalf("default clock starts at %d ms, want near 0", now)
	}
	k.Send([]byte("hello"))
	k.Update()
	if out != 1 {
		t.Fatalf("Update emitted %d datagrams, want 1", out)
	}
	if c := k.Check(); int32(c-k.clock()) > IKCP_INTERVAL {
		t.Fatalf("Check = %d, more than an interval after %d", c, k.clock())
	}
	if len(events) < 3 {
		t.Fatalf("logger saw %v", events)
	}
	k.SetLogger(IKCP_LOG_ALL, nil)
	n := len(events)
	k.Send([]byte("x"))
	k.Update()
	if len(events) != n {
		t.Fatal("logger still called after SetLogger(nil)")
	}
	if r := k.Input([]byte{1}, IKCP_PACKET_REGULAR, false); r != -1 {
		t.Fatalf("Input = %d", r)
	}
}

// pipe joins two KCPs directly for the allocation test and benchmarks:
// datagrams are copied into fixed buffers and delivered in order.
type pipe struct {
	bufs [2][][]byte
	n    [2]int
}

func newPipe(a, b *KCP) *pipe {
	p := &pipe{}
	for i := range p.bufs {
		p.bufs[i] = make([][]byte, 512)
		for j := range p.bufs[i] {
			p.bufs[i][j] = make([]byte, 0, 1500)
		}
	}
	a.output = func(buf []byte, size int) { p.put(0, buf[:size]) }
	b.output = func(buf []byte, size int) { p.put(1, buf[:size]) }
	return p
}

func (p *pipe) put(from int, data []byte) {
	p.bufs[from][p.n[from]] = append(p.bufs[from][p.n[from]][:0], data...)
	p.n[from]++
}

// to delivers everything sent by from to k.
func (p *pipe) to(from int, k *KCP, now uint32) {
	for i := 0; i < p.n[from]; i++ {
		k.input(now, p.bufs[from][i], IKCP_PACKET_REGULAR, false)
	}
	p.n[from] = 0
}

// roundTrip sends msg from a to b and back, returning the bytes received.
func roundTrip(a, b *KCP, p *pipe, msg, buf []byte, now uint32) int {
	a.Send(msg)
	a.flush(now, IKCP_FLUSH_FULL)
	p.to(0, b, now)
	n := b.Recv(buf)
	b.Send(buf[:n])
	b.flush(now, IKCP_FLUSH_FULL)
	p.to(1, a, now)
	return a.Recv(buf)
}

// TestSteadyStateAllocs: once warm, a send/receive round trip allocates
// nothing: segments and payload buffers are reused.
func TestSteadyStateAllocs(t *testing.T) {
	a, b := newPair(presetFast3, false, 128)
	p := newPipe(a, b)
	msg := make([]byte, 3000)
	buf := make([]byte, 4096)
	now := uint32(0)
	for range 1000 {
		now++
		roundTrip(a, b, p, msg, buf, now)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		now++
		if n := roundTrip(a, b, p, msg, buf, now); n != len(msg) {
			t.Fatalf("round trip returned %d", n)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip, want 0", allocs)
	}
}

// BenchmarkFlush: 1023 segments in flight, none due, as in kcp-go's
// BenchmarkFlush. No bytes move, so it reports time per flush only.
func BenchmarkFlush(b *testing.B) {
	k := NewKCP(1, func([]byte, int) {})
	for i := range 1023 {
		k.sndBuf.push(segment{sn: uint32(i), xmit: 1, resendts: 10000})
	}
	k.sndNxt = 1023
	b.ReportAllocs()
	for b.Loop() {
		k.flush(0, IKCP_FLUSH_FULL)
	}
}

// BenchmarkInput: one full-size PUSH per datagram into a receiver that reads
// it at once; the ACKs it owes go out every 58 segments.
func BenchmarkInput(b *testing.B) {
	k := NewKCP(1, func([]byte, int) {})
	k.WndSize(1024, 1024)
	mss := k.segmentSize()
	dgram := rawSeg(1, IKCP_CMD_PUSH, 0, 1024, 0, 0, 0, make([]byte, mss))
	buf := make([]byte, mss)
	b.SetBytes(int64(mss))
	b.ReportAllocs()
	for b.Loop() {
		binary.LittleEndian.PutUint32(dgram[IKCP_SN_OFFSET:], k.rcvNxt)
		k.input(0, dgram, IKCP_PACKET_REGULAR, false)
		if k.Recv(buf) != mss {
			b.Fatal("Recv")
		}
	}
}

// BenchmarkRoundTrip: a 1 KiB message from one KCP to another and back,
// through Send, flush, Input and Recv on both ends.
func BenchmarkRoundTrip(b *testing.B) {
	a, c := newPair(presetFast3, false, 128)
	p := newPipe(a, c)
	msg := make([]byte, 1024)
	buf := make([]byte, 2048)
	now := uint32(0)
	b.SetBytes(2 * int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		now++
		if roundTrip(a, c, p, msg, buf, now) != len(msg) {
			b.Fatal("round trip")
		}
	}
}

// BenchmarkSlidingWindow uses only the exported API, so the same code runs
// against kcp-go: 1023 full segments in flight with a 60 s RTO; each
// iteration queues one segment and inputs the ACK that slides the window by
// one, which makes the core flush (send the new segment, scan the rest).
func BenchmarkSlidingWindow(b *testing.B) {
	k := NewKCP(1, func([]byte, int) {})
	k.WndSize(1024, 1024)
	k.NoDelay(1, 10, 2, 1)
	mss := IKCP_MTU_DEF - IKCP_OVERHEAD
	data := make([]byte, mss)
	k.Send(data)
	k.Update()
	for range 1022 {
		k.Send(data)
	}
	now := k.clock()
	ack := rawSeg(1, IKCP_CMD_ACK, 0, 1024, now-30000, 0, 1, nil)
	k.Input(ack, IKCP_PACKET_REGULAR, false) // RTT sample of 30 s: RTO 60 s
	if k.WaitSnd() != 1022 {
		b.Fatalf("WaitSnd %d", k.WaitSnd())
	}
	una := uint32(1)
	b.SetBytes(int64(mss))
	b.ReportAllocs()
	for b.Loop() {
		k.Send(data)
		binary.LittleEndian.PutUint32(ack[8:], k.clock()-30000)
		binary.LittleEndian.PutUint32(ack[12:], una)
		una++
		binary.LittleEndian.PutUint32(ack[16:], una)
		k.Input(ack, IKCP_PACKET_REGULAR, false)
	}
}

// TestMessageLimitFollowsPeerWindow: the largest message the session may
// send is bounded by the peer's advertised window as well as ours, so a
// kcp-go peer with a 32-segment receive window is never sent a message it
// cannot reassemble; a larger advertisement (regular packets only) raises it.
func TestMessageLimitFollowsPeerWindow(t *testing.T) {
	k := NewKCP(testConv, func([]byte, int) {})
	k.WndSize(1024, 1024)
	mss := k.segmentSize()
	if got := k.maxMessageSize(); got != 32*mss {
		t.Fatalf("before the peer spoke: %d, want %d (its assumed 32-segment window)", got, 32*mss)
	}
	k.input(0, winsSeg(200), IKCP_PACKET_FEC, false)
	if got := k.maxMessageSize(); got != 32*mss {
		t.Fatalf("after an FEC-recovered packet: %d, want %d", got, 32*mss)
	}
	k.input(0, winsSeg(200), IKCP_PACKET_REGULAR, false)
	if got := k.maxMessageSize(); got != 200*mss {
		t.Fatalf("after the peer advertised 200: %d, want %d", got, 200*mss)
	}
	k.input(0, winsSeg(10), IKCP_PACKET_REGULAR, false)
	if got := k.maxMessageSize(); got != 200*mss {
		t.Fatalf("a busy peer's smaller window lowered the limit to %d", got)
	}
	k.input(0, winsSeg(4000), IKCP_PACKET_REGULAR, false)
	if got := k.maxMessageSize(); got != 255*mss {
		t.Fatalf("limit %d above 255 fragments", got)
	}
}

// TestWindowReportOnlyAfterSpeaking: enlarging the receive window sends a
// window report (WINS) only once the peer has seen our old window in a
// datagram; before our first datagram, that datagram carries the new one.
func TestWindowReportOnlyAfterSpeaking(t *testing.T) {
	var out []string
	k := capture(&out)
	k.WndSize(0, 256)
	k.flush(0, IKCP_FLUSH_ACKONLY)
	if len(out) != 0 {
		t.Fatalf("a silent KCP sent %d datagrams after WndSize: %v", len(out), out)
	}
	k.Send([]byte("hi"))
	k.flush(10, IKCP_FLUSH_FULL)
	if len(out) != 1 {
		t.Fatalf("%d datagrams for one PUSH", len(out))
	}
	if wnd := out[0][12:16]; wnd != "0001" { // wnd u16 LE at offset 6: 256 free
		t.Fatalf("first datagram advertises wnd %s, want 0001 (256)", wnd)
	}
	out = out[:0]
	k.WndSize(0, 512)
	k.flush(20, IKCP_FLUSH_ACKONLY)
	if len(out) != 1 || out[0][8:10] != "54" { // cmd at offset 4: 84 = 0x54
		t.Fatalf("after speaking, WndSize sent %v, want one WINS", out)
	}
}
