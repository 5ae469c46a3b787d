package kcp

import (
	"testing"
)

// TestSecureLargestDatagram: at the largest session MTU (maxDatagram) a
// secure datagram is SecureOverhead bytes longer than any plain one, beyond
// mtuLimit; the readers of secure sockets take it whole (their slots are
// widened, udp_filter.go) and a transfer at that size arrives intact.
func TestSecureLargestDatagram(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, 0, 0)
	defer cli.Close()
	defer srv.Close()
	tuneFast(cli, srv)
	for _, s := range []*UDPSession{cli, srv} {
		if !s.SetMtu(maxDatagram) {
			t.Fatal("SetMtu(maxDatagram) refused")
		}
		s.SetStreamMode(true) // full segments: datagrams of maxDatagram bytes
	}
	echoCheck(t, cli, srv, 512<<10)
	if st := l.IOStats(); st.RxDropped != 0 {
		t.Errorf("listener dropped %d datagrams on read", st.RxDropped)
	}
	if st := cli.IOStats(); st.RxDropped != 0 {
		t.Errorf("client dropped %d datagrams on read", st.RxDropped)
	}
}
