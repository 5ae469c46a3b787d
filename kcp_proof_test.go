package kcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// oneWay moves data from a to b over l until b holds all of it or limit
// virtual ms pass; hook runs every step before the link delivers. It returns
// what b received.
func oneWay(l *simLink, data []byte, limit uint32, hook func()) []byte {
	a, b := l.ends[0], l.ends[1]
	var got []byte
	buf := make([]byte, 1<<16)
	sent := 0
	start := l.now
	for int32(l.now-start) < int32(limit) && len(got) < len(data) {
		if hook != nil {
			hook()
		}
		l.deliver()
		for {
			n := b.Recv(buf)
			if n < 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		for sent < len(data) && a.WaitSnd() < 2*a.sendWindow() {
			n := min(len(data)-sent, 4096)
			a.Send(data[sent : sent+n])
			sent += n
		}
		a.update(l.now)
		b.update(l.now)
		l.now = l.nextEvent()
	}
	return got
}

// TestForgedUnaKeepsInFlightData: one ACK whose una had a bit flipped
// (CFB, Salsa20, XOR and no-cipher framings let that pass the CRC32),
// arriving during a short outage, made the sender drop everything in
// flight as delivered: the receiver hung at 130,176 of 262,144 bytes. An
// una (or ACK sn) beyond what was sent is now ignored and counted.
func TestForgedUnaKeepsInFlightData(t *testing.T) {
	for _, off := range []uint32{0, 0x9e3779b9} {
		a, b := newPair(presetNormal, true, 128)
		a.setTsOffset(off)
		l := newSimLink(11, linkConfig{delay: 10}, a, b)
		data := make([]byte, 256<<10)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		forged, outageEnd := false, uint32(0)
		var flushedForged uint64
		got := oneWay(l, data, 120_000, func() {
			if forged {
				if l.blocked[0] && int32(l.now-outageEnd) >= 0 {
					l.blocked = [2]bool{}
				}
				return
			}
			if int32(a.sndNxt-b.rcvNxt) < 16 || b.rcvNxt < 64 {
				return
			}
			forged = true
			// The outage loses what is on the wire and what is sent during it.
			l.q = l.q[:0]
			l.blocked = [2]bool{true, true}
			outageEnd = l.now + 300
			una := a.sndUna ^ 1<<30
			if int32(una-a.sndUna) < 0 {
				una = a.sndUna ^ 1<<29
			}
			ack := rawSeg(a.conv, IKCP_CMD_ACK, 0, 128, l.now+off, a.sndUna, una, nil)
			a.input(l.now, ack, IKCP_PACKET_REGULAR, false)
			flushedForged = a.stats.ForgedAcks
		})
		if !forged {
			t.Fatal("the transfer ended before the forged ACK could be sent")
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("offset %#x: receiver got %d of %d bytes after a forged una", off, len(got), len(data))
		}
		if flushedForged == 0 {
			t.Fatal("the forged ACK was not counted")
		}
	}
}

// TestTsOffsetProof: with a random ts offset a transfer still works and
// samples the right RTT (the peer only echoes ts, so it needs no change);
// ACKs that echo a ts we never stamped, and a una carried by anything but a
// plausible ACK, neither validate the peer nor release data.
func TestTsOffsetProof(t *testing.T) {
	t.Run("transfer", func(t *testing.T) {
		a, b := newPair(presetFast3, true, 128)
		a.setTsOffset(0xfffffff0) // wraps at once
		b.setTsOffset(0x12345678)
		l := newSimLink(5, linkConfig{delay: 20}, a, b)
		data := make([]byte, 128<<10)
		if got := oneWay(l, data, 60_000, nil); len(got) != len(data) {
			t.Fatalf("got %d of %d bytes", len(got), len(data))
		}
		if !a.validated() {
			t.Fatal("the sender never saw its peer validated")
		}
		if srtt := a.srttMs(); srtt < 35 || srtt > 80 {
			t.Fatalf("srtt %d ms over a 40 ms round trip", srtt)
		}
		if a.stats.BadTsAcks != 0 || a.stats.ForgedAcks != 0 {
			t.Fatalf("genuine ACKs rejected: %+v", a.stats)
		}
	})
	t.Run("blind", func(t *testing.T) {
		const off = 0x40000000
		var out [][]byte
		k := NewKCP(testConv, func(b []byte, n int) { out = append(out, append([]byte(nil), b[:n]...)) })
		k.setTsOffset(off)
		k.NoDelay(1, 10, 0, 1) // no congestion window: all three go out
		k.Send(make([]byte, 3*k.segmentSize()))
		k.flush(1000, IKCP_FLUSH_FULL)
		if k.sndBuf.len() == 0 || len(out) == 0 {
			t.Fatal("nothing in flight")
		}
		inflight := k.sndBuf.len()
		// Sequence numbers are predictable; the offset is not.
		for _, seg := range [][]byte{
			ackSeg(0, 1000, 0, 128),                                     // ts without the offset
			ackSeg(0, off+5000, 0, 128),                                 // a ts from the future
			rawSeg(testConv, IKCP_CMD_PUSH, 0, 128, 7, 0, 2, []byte{1}), // una from a PUSH
			rawSeg(testConv, IKCP_CMD_WINS, 0, 128, 0, 0, 3, nil),       // una from a WINS
		} {
			k.input(1010, seg, IKCP_PACKET_REGULAR, false)
		}
		if inflight != 3 {
			t.Fatalf("%d segments in flight, want 3", inflight)
		}
		if k.validated() || k.sndBuf.len() != inflight || k.sndUna != 0 {
			t.Fatalf("blind segments moved state: validated %v, %d in flight (was %d), una %d",
				k.validated(), k.sndBuf.len(), inflight, k.sndUna)
		}
		if k.stats.BadTsAcks != 2 {
			t.Fatalf("BadTsAcks = %d, want 2", k.stats.BadTsAcks)
		}
		k.input(1020, ackSeg(0, off+1000, 1, 128), IKCP_PACKET_REGULAR, false)
		if !k.validated() || k.sndUna != 1 {
			t.Fatalf("a genuine ACK: validated %v, una %d", k.validated(), k.sndUna)
		}
		if k.srttMs() != 20 {
			t.Fatalf("srtt %d, want 20", k.srttMs())
		}
		// Once validated, a una from any segment counts again.
		k.input(1030, rawSeg(testConv, IKCP_CMD_WINS, 0, 128, 0, 0, 3, nil), IKCP_PACKET_REGULAR, false)
		if k.sndUna != 3 || k.stats.ForgedAcks != 0 {
			t.Fatalf("una %d, %d forged", k.sndUna, k.stats.ForgedAcks)
		}
	})
}

// TestZeroWindowPersistLimit: a peer that keeps its window shut while we
// have data for it is given up after the persist limit; one that opens it
// in time is not.
func TestZeroWindowPersistLimit(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		a, b := newPair(presetNormal, true, 32)
		a.setPersistLimit(10_000)
		l := newSimLink(9, linkConfig{delay: 5}, a, b)
		a.Send(make([]byte, 200*a.segmentSize())) // far more than b's window
		zeroAt := uint32(0)
		buf := make([]byte, 1<<16)
		for l.now < 60_000 && !a.dead() {
			l.deliver()
			if zeroAt == 0 && a.rmtWnd == 0 {
				zeroAt = l.now
			}
			if reopen && zeroAt != 0 && l.now-zeroAt > 8_000 {
				for b.Recv(buf) >= 0 {
				}
			}
			a.update(l.now)
			b.update(l.now)
			l.now = l.nextEvent()
		}
		if zeroAt == 0 {
			t.Fatal("the window never closed")
		}
		if reopen {
			if a.dead() {
				t.Fatal("a peer that reopened its window was given up")
			}
			continue
		}
		if !a.dead() {
			t.Fatal("a zero window held the link for 60 s with a 10 s persist limit")
		}
		if d := l.now - zeroAt; d < 10_000 || d > 12_000 {
			t.Fatalf("given up %d ms after the window closed, want ~10,000", d)
		}
	}
}
