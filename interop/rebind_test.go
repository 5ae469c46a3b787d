package interop

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// detourConn is a client conn over two loopback sockets: it sends from
// home until detour is set, then from away (a new source port, as after a
// NAT rebinding), and reads from both.
type detourConn struct {
	home, away *net.UDPConn
	detour     atomic.Bool
	in         chan detourPkt
	done       chan struct{}
	once       sync.Once
}

type detourPkt struct {
	b    []byte
	from net.Addr
}

func newDetourConn(t *testing.T) *detourConn {
	c := &detourConn{in: make(chan detourPkt, 1024), done: make(chan struct{})}
	for _, p := range []**net.UDPConn{&c.home, &c.away} {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		*p = u
		go func() {
			for {
				b := make([]byte, 2048)
				n, from, err := u.ReadFrom(b)
				if err != nil {
					return
				}
				select {
				case c.in <- detourPkt{b[:n], from}:
				case <-c.done:
					return
				}
			}
		}()
	}
	return c
}

func (c *detourConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.from, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *detourConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.detour.Load() {
		return c.away.WriteTo(b, addr)
	}
	return c.home.WriteTo(b, addr)
}

func (c *detourConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.home.Close()
		c.away.Close()
	})
	return nil
}

func (c *detourConn) LocalAddr() net.Addr                { return c.home.LocalAddr() }
func (c *detourConn) SetDeadline(t time.Time) error      { return nil }
func (c *detourConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *detourConn) SetWriteDeadline(t time.Time) error { return nil }

// A kcp-go client under AES-GCM whose datagrams come from a new source
// port draws path challenges from a kcpx listener (NAT rebinding,
// listener_rebind.go). kcp-go does not know them: it must ignore them (a
// 21-byte datagram is shorter than a KCP segment) and never answer, so its
// session does not move; back on its old port it goes on byte-exact.
func TestKCPGoClientIgnoresPathChallenge(t *testing.T) {
	for _, f := range []struct{ ds, ps int }{{0, 0}, {10, 3}} {
		t.Run(fmt.Sprintf("fec%d.%d", f.ds, f.ps), func(t *testing.T) { kcpgoIgnoresPathChallenge(t, f.ds, f.ps) })
	}
}

func kcpgoIgnoresPathChallenge(t *testing.T, ds, ps int) {
	c, _ := CipherByName("aes-128-gcm")
	pass := KcptunPass("rebinding")
	srv := startServer(t, KCPX, c, pass, ds, ps, fast, echoHandler)
	dc := newDetourConn(t)
	cli := dialConn(t, KCPGo, 0x0bad0bad, srv.l.Addr(), c, pass, ds, ps, dc, fast)
	echo(t, cli, payload(1, 8<<10), 1024)
	l := srv.l.(kcpxListener).Listener

	before := KCPGo.Snmp()
	dc.detour.Store(true)
	// A write from the new port; its echo goes to the old one, which the
	// client still reads, but the listener challenges the new port first.
	cli.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := cli.Write(payload(2, 512)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ioTimeout)
	for l.Stats().Paths.Challenges == 0 || KCPGo.Snmp().KCPInErrors == before.KCPInErrors {
		if time.Now().After(deadline) {
			t.Fatalf("no challenge seen by the kcp-go client: listener %+v, kcp-go KCPInErrors %d -> %d",
				l.Stats().Paths, before.KCPInErrors, KCPGo.Snmp().KCPInErrors)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dc.detour.Store(false)
	buf := make([]byte, 512)
	cli.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := readFull(cli, buf); err != nil {
		t.Fatal(err)
	}
	echo(t, cli, payload(3, 64<<10), 1024)
	st := l.Stats()
	if st.Paths.Moves != 0 {
		t.Fatalf("a kcp-go client moved: %+v", st.Paths)
	}
	t.Logf("kcp-go client got %d challenge(s), ignored (KCPInErrors +%d); listener %+v",
		st.Paths.Challenges, KCPGo.Snmp().KCPInErrors-before.KCPInErrors, st.Paths)
}

func readFull(s Session, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := s.Read(b[n:])
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}
