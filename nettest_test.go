package kcp

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestNetConn runs x/net's net.Conn conformance suite (11 checks) on
// session pairs: symmetric dialled pairs over loopback in message and
// stream mode with no cipher, AES with FEC 10/3 and AES-GCM, and a pair
// made by Dial and Accept.
func TestNetConn(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	plain := func() BlockCrypt { return nil }
	aes := func() BlockCrypt { b, _ := NewAESBlockCrypt(testKey); return b }
	gcm := func() BlockCrypt { b, _ := NewAESGCMCrypt(testKey); return b }
	tune := func(stream bool, ss ...*UDPSession) {
		for _, s := range ss {
			s.SetNoDelay(1, 10, 2, 1)
			s.SetWindowSize(128, 128)
			s.SetStreamMode(stream)
		}
	}
	cases := []struct {
		name   string
		block  func() BlockCrypt
		ds, ps int
		stream bool
	}{
		{"plain/message", plain, 0, 0, false},
		{"plain/stream", plain, 0, 0, true},
		{"aes+fec10.3/message", aes, 10, 3, false},
		{"aes-gcm/stream", gcm, 0, 0, true},
		{"aes-gcm/message", gcm, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				a, b := udpPair(t, "udp", "127.0.0.1:0", c.block, c.ds, c.ps)
				tune(c.stream, a, b)
				stop := func() { closeBoth(a, b) }
				return a, b, stop, nil
			})
		})
	}
	t.Run("accepted/aes+fec10.3", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			l, err := ListenWithOptions("127.0.0.1:0", aes(), 10, 3)
			if err != nil {
				return nil, nil, nil, err
			}
			cli, srv := acceptedPair(t, l, aes(), 10, 3)
			tune(false, cli, srv)
			stop := func() {
				closeBoth(cli, srv)
				l.Close()
			}
			return cli, srv, stop, nil
		})
	})
	_ = time.Second
}

// closeBoth closes the two ends of a pair at once, as two programs would.
// One after the other, an end whose peer never read what it wrote
// (PresentTimeout) would linger in Close for the whole bound, its data
// unacknowledged; closed together, the other end's close signal tells it
// the peer is gone (Close, close.go).
func closeBoth(a, b io.Closer) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Close()
	}()
	b.Close()
	<-done
}
