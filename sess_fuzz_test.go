package kcp

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
)

// fuzzSeeds are real encodings of everything a session or listener may be
// handed after decryption: KCP segments, FEC data and parity, OOB, close
// signals, and near misses.
func fuzzSeeds() [][]byte {
	push := rawSegment(1, IKCP_CMD_PUSH, 0, []byte("hello"))
	ack := rawSegment(1, IKCP_CMD_ACK, 0, nil)
	fecData := make([]byte, 8+len(push))
	binary.LittleEndian.PutUint32(fecData, 0)
	binary.LittleEndian.PutUint16(fecData[4:], typeData)
	binary.LittleEndian.PutUint16(fecData[6:], uint16(2+len(push)))
	copy(fecData[8:], push)
	parity := make([]byte, 8+len(push))
	binary.LittleEndian.PutUint32(parity, 10)
	binary.LittleEndian.PutUint16(parity[4:], typeParity)
	oob := make([]byte, 12+4)
	putOOBHeader(oob, 1, 4)
	fin := make([]byte, closeSignalLen)
	binary.LittleEndian.PutUint32(fin, 0xFFFFFFFF)
	binary.LittleEndian.PutUint16(fin[4:], typeClose)
	binary.LittleEndian.PutUint16(fin[6:], closeSignalLen)
	binary.LittleEndian.PutUint32(fin[8:], 1)
	fin[12] = closeFIN
	finack := append([]byte(nil), fin...)
	finack[12] = closeFINACK
	return [][]byte{push, ack, fecData, parity, oob, fin, finack, push[:23], fecData[:7], {}, {0xf1, 0, 0, 0, 0xf1, 0}}
}

// FuzzSessionInput feeds arbitrary opened datagrams to a session with FEC
// and an OOB handler: no panic, and every datagram is counted (InPkts, or
// KCPInErrors below minInput bytes, as kcp-go counts).
func FuzzSessionInput(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	n := newMemNet(40)
	a, b, _, _ := memPair(f, n, func() BlockCrypt { return nil }, 10, 3)
	f.Cleanup(func() { a.Close(); b.Close() })
	var oobs atomic.Int64
	a.SetOOBHandler(func(p []byte) { oobs.Add(1) })
	counted := func() uint64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.pend.InPkts + atomic.LoadUint64(&a.snmp.InPkts)
	}
	errs := func() uint64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.pend.KCPInErrors + atomic.LoadUint64(&a.snmp.KCPInErrors)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before, errsBefore := counted(), errs()
		a.input(append([]byte(nil), data...), len(data))
		if len(data) < minInput {
			if counted() != before || errs() != errsBefore+1 {
				t.Fatalf("%d-byte datagram: InPkts moved by %d, KCPInErrors by %d; want 0 and 1",
					len(data), counted()-before, errs()-errsBefore)
			}
		} else if got := counted(); got != before+1 {
			t.Fatalf("InPkts moved by %d for one datagram", got-before)
		}
	})
}

// FuzzListenerHandle feeds arbitrary datagrams to a listener without a
// cipher from a fixed source: no panic, and never more sessions than the
// one source may have.
func FuzzListenerHandle(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	n := newMemNet(41)
	l, _ := ServeConn(nil, 10, 3, n.listen("srv"))
	f.Cleanup(func() { l.Close() })
	src := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, data []byte) {
		l.handle(append([]byte(nil), data...), src, nil)
		if c := l.sessionCount(); c > 1 {
			t.Fatalf("%d sessions for one source", c)
		}
	})
}
