package kcp

import (
	"encoding/binary"
	"testing"
)

// Fuzz program format: a sequence of operations, each one opcode byte then
// its operands. Unknown or truncated operations end the program.
const (
	opInput  = iota // u16 length, then that many bytes: one datagram
	opRecv          // u8: buffer size = value*64
	opSend          // u8: send value*37+1 bytes
	opTick          // u8: advance the clock by value ms and update
	opWnd           // u8: receive window = value+1
	opStream        // u8: stream mode = value&1
	opCC            // u8: congestion control = ccNames[value%4]
	opCount
)

// fuzzProgram encodes datagrams as input operations, each followed by a
// read and a tick, to seed the corpus with real encodings.
func fuzzProgram(dgrams ...[]byte) []byte {
	var p []byte
	for _, d := range dgrams {
		p = append(p, opInput, byte(len(d)), byte(len(d)>>8))
		p = append(p, d...)
		p = append(p, opRecv, 255, opTick, 20)
	}
	return p
}

// FuzzInput feeds arbitrary datagrams, interleaved with reads, writes,
// clock ticks and window changes, into a live core that already has data in
// flight both ways. It must never panic, and its invariants must hold after
// every operation.
func FuzzInput(f *testing.F) {
	hello := []byte("hello, world")
	f.Add(fuzzProgram(rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 100, 0, 0, hello)))
	f.Add(fuzzProgram(
		rawSeg(testConv, IKCP_CMD_PUSH, 2, 32, 100, 0, 0, hello),
		rawSeg(testConv, IKCP_CMD_PUSH, 1, 32, 100, 1, 0, hello),
		rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 100, 2, 0, hello)))
	f.Add(fuzzProgram(append(rawSeg(testConv, IKCP_CMD_ACK, 0, 32, 0, 1, 0, nil), rawSeg(testConv, IKCP_CMD_ACK, 0, 32, 0, 0, 2, nil)...)))
	f.Add(fuzzProgram(rawSeg(testConv, IKCP_CMD_WASK, 0, 0, 0, 0, 0, nil), rawSeg(testConv, IKCP_CMD_WINS, 0, 0, 0, 0, 0, nil)))
	f.Add(fuzzProgram(rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 0, 0, 0, nil), rawSeg(testConv, IKCP_CMD_PUSH, 255, 32, 0, 1, 0, hello)))
	f.Add(fuzzProgram(rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 0, 0xFFFFFFFF, 0xFFFFFFF0, hello)))
	f.Add(append(fuzzProgram(rawSeg(testConv, IKCP_CMD_PUSH, 0, 32, 0, 5, 3, hello)), opWnd, 200, opStream, 1, opSend, 200, opTick, 255))
	f.Add(append([]byte{opCC, 2, opSend, 255, opTick, 10}, fuzzProgram(
		rawSeg(testConv, IKCP_CMD_ACK, 0, 32, 1000, 1, 0, nil),
		rawSeg(testConv, IKCP_CMD_ACK, 0, 32, 1000, 3, 1, nil))...))
	f.Fuzz(func(t *testing.T, prog []byte) {
		var now uint32 = 1000
		mtu := 0
		k := NewKCP(testConv, func(buf []byte, size int) {
			if size != len(buf) || size > mtu {
				t.Fatalf("output of %d bytes (len %d), mtu %d", size, len(buf), mtu)
			}
		})
		mtu = int(k.mtu)
		k.NoDelay(1, 10, 2, 0)
		// data in flight and acknowledged, so ACK and una paths have work
		k.Send(make([]byte, 5*k.segmentSize()))
		k.update(now)
		rbuf := make([]byte, 255*64)
		sbuf := make([]byte, 255*37+1)
		// The receive queue holds at most the window, but a window the
		// application shrinks leaves what was queued before: the queue may
		// exceed the window by what it held then, and may not grow while
		// it does. qMax is the bound; it falls back to the window as the
		// queue drains.
		qMax := int(k.rcvWnd)
		check := func() {
			checkInvariants(t, k, qMax)
			qMax = max(int(k.rcvWnd), min(qMax, k.rcvQueue.len()))
		}
		for len(prog) > 0 {
			op := prog[0] % opCount
			prog = prog[1:]
			if op == opInput {
				if len(prog) < 2 {
					return
				}
				n := min(int(binary.LittleEndian.Uint16(prog)), len(prog)-2)
				d := prog[2 : 2+n]
				prog = prog[2+n:]
				pt := IKCP_PACKET_REGULAR
				if n%3 == 1 {
					pt = IKCP_PACKET_FEC
				}
				if r := k.input(now, d, pt, n%2 == 1); r > 0 || r < -3 {
					t.Fatalf("input returned %d", r)
				}
				check()
				continue
			}
			if len(prog) < 1 {
				return
			}
			v := int(prog[0])
			prog = prog[1:]
			switch op {
			case opRecv:
				buf := rbuf[:v*64]
				peek := k.PeekSize()
				n := k.Recv(buf)
				if n > len(buf) || n < -2 || (n >= 0 && n != peek) || (n == -1) != (peek == -1) || (n == -2 && peek <= len(buf)) {
					t.Fatalf("Recv(%d bytes) = %d, PeekSize was %d", len(buf), n, peek)
				}
			case opSend:
				k.Send(sbuf[:v*37+1])
			case opTick:
				now += uint32(v)
				k.update(now)
			case opWnd:
				qMax = max(v+1, k.rcvQueue.len())
				k.WndSize(0, v+1)
			case opStream:
				k.setStream(v&1 == 1)
			case opCC:
				if err := k.SetCongestionControl(ccNames[v%len(ccNames)]); err != nil {
					t.Fatal(err)
				}
			}
			check()
		}
	})
}

// ccNames are the controllers opCC selects from.
var ccNames = []string{CongestionKCP, CongestionNone, CongestionBBR, CongestionCUBIC}

// checkInvariants verifies the core's bookkeeping after any operation;
// qMax bounds the receive queue.
func checkInvariants(t *testing.T, k *KCP, qMax int) {
	t.Helper()
	if got := int(k.sndNxt - k.sndUna); got != k.sndBuf.len() {
		t.Fatalf("sndNxt-sndUna = %d but %d segments in flight", got, k.sndBuf.len())
	}
	if k.sndBuf.len() > int(k.sndWnd) {
		t.Fatalf("%d segments in flight, send window %d", k.sndBuf.len(), k.sndWnd)
	}
	for i := 0; i < k.sndBuf.len(); i++ {
		if seg := k.sndBuf.at(i); seg.sn != k.sndUna+uint32(i) {
			t.Fatalf("in-flight segment %d has sn %d, una %d", i, seg.sn, k.sndUna)
		}
	}
	if k.sndBuf.len() > 0 && k.sndBuf.at(0).acked {
		t.Fatal("acknowledged segment at the front of the send buffer")
	}
	unacked, sent, queued := 0, 0, 0
	for i := 0; i < k.sndBuf.len(); i++ {
		if seg := k.sndBuf.at(i); !seg.acked {
			unacked++
			if seg.xmit > 0 {
				sent++
			}
		}
	}
	for i := 0; i < k.sndQueue.len(); i++ {
		queued += len(k.sndQueue.at(i).data)
	}
	if unacked != int(k.cc.unacked) || sent != int(k.cc.sentOut) || queued != k.cc.queued {
		t.Fatalf("congestion counters unacked %d sent %d queued %d, counted %d %d %d",
			k.cc.unacked, k.cc.sentOut, k.cc.queued, unacked, sent, queued)
	}
	if q := k.rcvQueue.len(); q > qMax {
		t.Fatalf("receive queue %d segments, window %d, bound %d", q, k.rcvWnd, qMax)
	}
	ends := 0
	for i := 0; i < k.rcvQueue.len(); i++ {
		if k.rcvQueue.at(i).frg == 0 {
			ends++
		}
	}
	if ends != k.rcvMsgEnds {
		t.Fatalf("rcvMsgEnds %d, counted %d", k.rcvMsgEnds, ends)
	}
	have := 0
	for i, h := range k.rcvBuf.have {
		if !h {
			continue
		}
		have++
		off := (i - k.rcvBuf.base) & (len(k.rcvBuf.have) - 1)
		if sn := k.rcvBuf.seg[i].sn; sn != k.rcvNxt+uint32(off) {
			t.Fatalf("reorder slot %d holds sn %d, want %d", i, sn, k.rcvNxt+uint32(off))
		}
	}
	if have != k.rcvBuf.count {
		t.Fatalf("rcvBuf.count %d, slots held %d", k.rcvBuf.count, have)
	}
	if k.rcvBuf.count > 0 && k.rcvBuf.have[k.rcvBuf.base] && k.rcvQueue.len() < k.rcvQueueLimit() {
		t.Fatal("an in-order segment waits in the reorder slots while the queue has room")
	}
}
