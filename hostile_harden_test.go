package kcp

import (
	"net"
	"testing"
	"time"
)

// TestHostileSpoofedSources: 5,000 spoofed sources each send one 25-byte
// opener (no cipher: anyone can forge one) to a listener whose application
// accepts and echoes everything. Before, every source got a session that
// stayed (2,000 of 2,000 alive 12 s later, 41.8 KiB each). Now the listener
// ends at its default session cap, and the heap stays under 64 MiB.
func TestHostileSpoofedSources(t *testing.T) {
	const sources, limit = 5000, DefaultMaxSessions
	n := newImpNet(8192)
	sEP := n.listen(t)
	l, err := ServeConn(nil, 0, 0, sEP)
	if err != nil {
		t.Fatal(err)
	}
	relEchoServer(t, l, relFast)
	heap0 := relHeap()
	addrs := make([]net.Addr, sources)
	for i := range addrs {
		addrs[i] = n.addr()
	}
	for i, a := range addrs {
		// Keep the backlog from refusing: the attacker waits for Accept as
		// a patient one would, so the cap, not the backlog, is what stops it.
		if i%64 == 0 {
			eventually(10*time.Second, func() bool { return len(sEP.in) == 0 && l.Stats().Pending < acceptBacklog/2 })
		}
		sEP.inject(a, guardOpener(uint32(0x1000+i)))
	}
	st := guardSettled(t, l, sEP, sources-limit)
	heap1 := relHeap()
	t.Logf("%d spoofed sources: %+v; heap %+.1f MiB (%.1f KiB per session)", sources, st,
		(float64(heap1)-float64(heap0))/(1<<20), (float64(heap1)-float64(heap0))/1024/float64(max(st.Sessions, 1)))
	if st.Sessions > limit || st.Rejected.OverCap < sources-limit {
		t.Fatalf("the listener holds %d sessions with a cap of %d (%d refused)", st.Sessions, limit, st.Rejected.OverCap)
	}
	if st.Sessions < limit*9/10 {
		t.Fatalf("only %d sessions: the flood did not reach the cap of %d", st.Sessions, limit)
	}
	if heap1 > heap0+64<<20 {
		t.Fatalf("heap grew by %.1f MiB", float64(heap1-heap0)/(1<<20))
	}
}
