package kcp

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// TestSecureLargestDatagram: at the largest session MTU (maxDatagram) a
// secure datagram is SecureOverhead bytes longer than any plain one, beyond
// mtuLimit; the readers of secure sockets take it whole (their slots are
// widened, udp_filter.go) and a transfer at that size arrives intact.
func TestSecureLargestDatagram(t *testing.T) {
	parallelTest(t)
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

// TestSecureRebindMidTransfer moves the client to a new socket while it is
// sending: the engine's reader and sender follow the filter to the new
// socket (a write that failed on the closed one is sent again on the new
// one) and the session keeps going, no byte lost.
func TestSecureRebindMidTransfer(t *testing.T) {
	parallelTest(t)
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
	cc := cli.conn.(*secureClientConn)
	const total = 4 << 20
	want := randBytes(41, total)
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < total; off += 16 << 10 {
			if _, err := cli.Write(want[off : off+16<<10]); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	srv.SetReadDeadline(time.Now().Add(60 * time.Second))
	got := make([]byte, total)
	if _, err := io.ReadFull(srv, got[:total/4]); err != nil {
		t.Fatalf("before the rebind: %v", err)
	}
	if err := cc.rebind(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srv, got[total/4:]); err != nil {
		t.Fatalf("after the rebind: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
	if st := cli.IOStats(); !st.RxBatch || !st.TxBatch {
		t.Errorf("after the rebind: RxBatch %v TxBatch %v, want the batch paths", st.RxBatch, st.TxBatch)
	}
}
