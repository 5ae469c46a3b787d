package kcp

import (
	"testing"
)

// TestSecureBatchIO: secure sockets are read with recvmmsg and written with
// sendmmsg like plain ones (the secure conns are datagram filters the engine
// calls per datagram, udp_filter.go), on the listener and on the dialled
// session, and a bulk transfer through them arrives whole.
func TestSecureBatchIO(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	for _, tc := range secureLoopCases() {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ListenSecure("127.0.0.1:0", tc.srv())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cli, srv := securePair(t, l, tc.cli(), 0, 0)
			defer cli.Close()
			defer srv.Close()
			tuneFast(cli, srv)
			echoCheck(t, cli, srv, 1<<20)
			for _, c := range []struct {
				name string
				st   IOStats
			}{{"listener", l.IOStats()}, {"client", cli.IOStats()}} {
				if !c.st.RxBatch || !c.st.TxBatch {
					t.Errorf("%s: RxBatch %v TxBatch %v, want the batch paths", c.name, c.st.RxBatch, c.st.TxBatch)
				}
				if c.st.TxPerCall() <= 1 {
					t.Errorf("%s: %.2f datagrams per send call, want batches (%+v)", c.name, c.st.TxPerCall(), c.st)
				}
			}
		})
	}
}
