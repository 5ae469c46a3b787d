package kcp

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// muteConn discards every datagram written once mute is set: a peer that
// goes away without a word.
type muteConn struct {
	net.PacketConn
	mute atomic.Bool
}

func (c *muteConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.mute.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestCloseEndsOnRefusal: a dialled session whose peer's socket is gone
// (it sent no FIN) stops lingering at the first ICMP port unreachable its
// retransmissions draw, instead of waiting for the bound. (Linux: how other
// systems report ICMP errors on connected UDP sockets varies.)
func TestCloseEndsOnRefusal(t *testing.T) {
	leakCheck(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mc := &muteConn{PacketConn: pc}
	l, err := ServeConn(nil, 0, 0, mc)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, srv := acceptedPair(t, l, nil, 0, 0)
	fast(cli)
	fast(srv)
	roundTripPair(t, cli, srv, []byte("ping"))
	mc.mute.Store(true) // the server's end says nothing more, not even a FIN
	pc.Close()
	if _, err := cli.Write(make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	const linger = 20 * time.Second
	cli.SetLinger(linger)
	start := time.Now()
	cli.Close()
	took := time.Since(start)
	t.Logf("Close returned after %v", took)
	if took > linger/4 {
		t.Errorf("Close returned after %v: the refusals did not end the linger", took)
	}
}
