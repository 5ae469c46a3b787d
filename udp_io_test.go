package kcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ioCase is one combination of reader and writer paths.
type ioCase struct {
	name           string
	reader, writer ioMode
}

// ioModes are the paths of packetReader/packetWriter, forced with their
// forceMode knobs. On Linux (kernel 5.0 or later) each is asserted to be in
// effect; on other OSes every case takes the plain path.
var ioModes = []ioCase{
	{"gso+gro", ioOffload, ioOffload},
	{"gso", ioBatch, ioOffload},
	{"gro", ioOffload, ioBatch},
	{"batch", ioBatch, ioBatch},
	{"plain", ioPlain, ioPlain},
}

func (c ioCase) String() string { return c.name }

func forceMode(t testing.TB, c ioCase, r *packetReader, w *packetWriter) {
	t.Helper()
	if r != nil {
		if got := r.forceMode(c.reader); runtime.GOOS == "linux" && r.udp != nil && got != c.reader {
			t.Fatalf("reader mode %d, want %d", got, c.reader)
		}
	}
	if w != nil {
		if got := w.forceMode(c.writer); runtime.GOOS == "linux" && w.udp != nil && got != c.writer {
			t.Fatalf("writer mode %d, want %d", got, c.writer)
		}
	}
}

func listenUDP(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Loopback drops nothing while the receive buffer has room.
	if err := c.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	return c
}

func localAP(c net.PacketConn) netip.AddrPort {
	return unmapAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort())
}

// datagram builds datagram i: its index in the first bytes, then a pattern.
func datagram(i, size int) []byte {
	p := make([]byte, size)
	for k := range p {
		p[k] = byte(i*31 + k)
	}
	if size >= 4 {
		binary.BigEndian.PutUint32(p, uint32(i))
	}
	return p
}

var datagramSizes = []int{1, 24, 100, 576, 1400, 1472, mtuLimit, 0, 7}

type received struct {
	data []byte
	ap   netip.AddrPort
	addr net.Addr
}

// collect reads until n datagrams arrived; the read deadline turns loss or
// a hang into a test failure.
func collect(t testing.TB, r *packetReader, n int) []received {
	t.Helper()
	if err := r.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	defer r.conn.SetReadDeadline(time.Time{})
	var got []received
	handle := func(data []byte, ap netip.AddrPort, addr net.Addr) {
		if cap(data) != len(data) {
			t.Errorf("data has spare capacity %d: an append would overwrite the next datagram", cap(data)-len(data))
		}
		got = append(got, received{bytes.Clone(data), ap, addr})
	}
	for len(got) < n {
		if err := r.readOnce(handle); err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d datagrams, want %d", len(got), n)
	}
	return got
}

func TestPacketIORoundTrip(t *testing.T) {
	tests := []struct {
		name          string
		rxNet, rxAddr string
		txNet, txAddr string
		dest          func(rx *net.UDPConn) netip.AddrPort
	}{
		{"udp4", "udp4", "127.0.0.1:0", "udp4", "127.0.0.1:0", nil},
		{"udp6", "udp6", "[::1]:0", "udp6", "[::1]:0", nil},
		{"dualstack-from-v4", "udp", ":0", "udp4", "127.0.0.1:0", func(rx *net.UDPConn) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), localAP(rx).Port())
		}},
		{"dualstack-from-v6", "udp", ":0", "udp6", "[::1]:0", func(rx *net.UDPConn) netip.AddrPort {
			return netip.AddrPortFrom(netip.IPv6Loopback(), localAP(rx).Port())
		}},
	}
	const n = 300
	for _, tc := range tests {
		for _, mode := range ioModes {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				rx := listenUDP(t, tc.rxNet, tc.rxAddr)
				tx := listenUDP(t, tc.txNet, tc.txAddr)
				r, w := newPacketReader(rx), newPacketWriter(tx)
				forceMode(t, mode, r, w)
				dest := localAP(rx)
				if tc.dest != nil {
					dest = tc.dest(rx)
				}
				pkts := make([][]byte, n)
				for i := range pkts {
					pkts[i] = datagram(i, datagramSizes[i%len(datagramSizes)])
				}
				sent, err := w.write(pkts, dest, nil)
				if err != nil || sent != n {
					t.Fatalf("write = %d, %v", sent, err)
				}
				got := collect(t, r, n)
				wantSrc := localAP(tx)
				for i, g := range got {
					if !bytes.Equal(g.data, pkts[i]) {
						t.Fatalf("datagram %d: got %d bytes %x..., want %d bytes", i, len(g.data),
							g.data[:min(8, len(g.data))], len(pkts[i]))
					}
					if g.ap != wantSrc || g.addr != nil {
						t.Fatalf("datagram %d from %v/%v, want %v", i, g.ap, g.addr, wantSrc)
					}
				}

				// Reply to the source as reported: the reader's key must be
				// a usable destination, also an unmapped IPv4 one on a
				// dual-stack socket.
				rw, tr := newPacketWriter(rx), newPacketReader(tx)
				forceMode(t, mode, tr, rw)
				if sent, err := rw.write(pkts[:5], got[0].ap, nil); err != nil || sent != 5 {
					t.Fatalf("reply write = %d, %v", sent, err)
				}
				back := collect(t, tr, 5)
				for i, g := range back {
					if !bytes.Equal(g.data, pkts[i]) {
						t.Fatalf("reply %d differs", i)
					}
				}
			})
		}
	}
}

func TestPacketIOManySources(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp", ":0") // dual-stack
			r := newPacketReader(rx)
			forceMode(t, mode, r, nil)
			port := localAP(rx).Port()
			type sender struct {
				conn *net.UDPConn
				dest netip.AddrPort
			}
			senders := []sender{
				{listenUDP(t, "udp4", "127.0.0.1:0"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
				{listenUDP(t, "udp6", "[::1]:0"), netip.AddrPortFrom(netip.IPv6Loopback(), port)},
				{listenUDP(t, "udp4", "127.0.0.1:0"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
			}
			const rounds, per = 20, 5
			writers := make([]*packetWriter, len(senders))
			for i, s := range senders {
				writers[i] = newPacketWriter(s.conn)
				forceMode(t, mode, nil, writers[i])
			}
			for k := range rounds {
				for i, s := range senders {
					pkts := make([][]byte, per)
					for j := range pkts {
						pkts[j] = datagram(k*per+j, 40+i)
					}
					if n, err := writers[i].write(pkts, s.dest, nil); n != per || err != nil {
						t.Fatalf("write = %d, %v", n, err)
					}
				}
			}
			next := map[netip.AddrPort]int{}
			for _, g := range collect(t, r, rounds*per*len(senders)) {
				i := slices.IndexFunc(senders, func(s sender) bool { return localAP(s.conn) == g.ap })
				if i < 0 {
					t.Fatalf("datagram from unknown source %v", g.ap)
				}
				if want := datagram(next[g.ap], 40+i); !bytes.Equal(g.data, want) {
					t.Fatalf("from %v: got %x, want datagram %d", g.ap, g.data[:4], next[g.ap])
				}
				next[g.ap]++
			}
			if len(next) != len(senders) {
				t.Fatalf("saw %d sources, want %d", len(next), len(senders))
			}
		})
	}
}

func TestPacketIOAddrPortEquivalence(t *testing.T) {
	// A reply addressed with a *net.UDPAddr, or with an IPv4-mapped
	// AddrPort, reaches the same peer as the plain AddrPort.
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			tx := listenUDP(t, "udp", ":0")
			r, w := newPacketReader(rx), newPacketWriter(tx)
			forceMode(t, mode, r, w)
			port := localAP(rx).Port()
			mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), port)
			if _, err := w.write([][]byte{{1}}, mapped, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := w.write([][]byte{{2}}, netip.AddrPort{}, rx.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			got := collect(t, r, 2)
			if got[0].data[0] != 1 || got[1].data[0] != 2 || got[0].ap != got[1].ap || !got[0].ap.Addr().Is4() {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestPacketWriterConnectedSocket(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			c, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			r, w := newPacketReader(rx), newPacketWriter(c)
			forceMode(t, mode, r, w)
			pkts := [][]byte{datagram(0, 50), datagram(1, 60)}
			if n, err := w.write(pkts, netip.AddrPort{}, nil); n != 2 || err != nil {
				t.Fatalf("write = %d, %v", n, err)
			}
			got := collect(t, r, 2)
			if !bytes.Equal(got[1].data, pkts[1]) || got[0].ap != localAP(c) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestPacketWriterNoDestination(t *testing.T) {
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	w := newPacketWriter(tx)
	n, err := w.write([][]byte{{1}}, netip.AddrPort{}, nil)
	var oe *net.OpError
	if n != 0 || !errors.As(err, &oe) {
		t.Fatalf("write without destination = %d, %v", n, err)
	}
	if n, err := w.write(nil, netip.AddrPort{}, nil); n != 0 || err != nil {
		t.Fatalf("empty write = %d, %v", n, err)
	}
}

func TestPacketReaderDropsOversize(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			tx := listenUDP(t, "udp4", "127.0.0.1:0")
			r := newPacketReader(rx)
			forceMode(t, mode, r, nil)
			for _, size := range []int{mtuLimit + 1, 4000, 10} {
				if _, err := tx.WriteTo(datagram(size, size), rx.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			// Read until the 10-byte datagram shows up; the two before it
			// must be dropped, not delivered cut short.
			var got [][]byte
			rx.SetReadDeadline(time.Now().Add(10 * time.Second))
			for len(got) == 0 {
				if err := r.readOnce(func(d []byte, _ netip.AddrPort, _ net.Addr) { got = append(got, bytes.Clone(d)) }); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != 1 || len(got[0]) != 10 || r.dropped() != 2 {
				t.Fatalf("delivered %d datagrams (first %d bytes), dropped %d; want one of 10 bytes, 2 dropped",
					len(got), len(got[0]), r.dropped())
			}
		})
	}
}

func TestPacketReaderUnblocks(t *testing.T) {
	tests := []struct {
		name  string
		wake  func(c *net.UDPConn)
		check func(error) bool
	}{
		{"close", func(c *net.UDPConn) { c.Close() }, func(err error) bool { return errors.Is(err, net.ErrClosed) }},
		{"deadline", func(c *net.UDPConn) { c.SetReadDeadline(time.Now().Add(-time.Second)) }, func(err error) bool {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
		}},
	}
	for _, tc := range tests {
		for _, mode := range ioModes {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				rx := listenUDP(t, "udp4", "127.0.0.1:0")
				r := newPacketReader(rx)
				forceMode(t, mode, r, nil)
				errc := make(chan error, 1)
				go func() {
					errc <- r.read(func([]byte, netip.AddrPort, net.Addr) { t.Error("unexpected datagram") })
				}()
				tc.wake(rx)
				select {
				case err := <-errc:
					var oe *net.OpError
					if !tc.check(err) || !errors.As(err, &oe) {
						t.Fatalf("read returned %#v", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("read did not return")
				}
			})
		}
	}
}

func TestPacketReaderDeadlineAlreadyPast(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			r := newPacketReader(rx)
			forceMode(t, mode, r, nil)
			rx.SetReadDeadline(time.Now().Add(-time.Second))
			err := r.read(func([]byte, netip.AddrPort, net.Addr) {})
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read = %v", err)
			}
		})
	}
}

func TestPacketWriterDeadline(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			tx := listenUDP(t, "udp4", "127.0.0.1:0")
			w := newPacketWriter(tx)
			forceMode(t, mode, nil, w)
			tx.SetWriteDeadline(time.Now().Add(-time.Second))
			n, err := w.write([][]byte{{1}, {2}}, localAP(rx), nil)
			var ne net.Error
			if n != 0 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write past the deadline = %d, %v", n, err)
			}
			if runtime.GOOS == "linux" && (mode.writer != ioPlain) != w.batching() {
				t.Fatal("a deadline changed the path")
			}
			tx.SetWriteDeadline(time.Time{})
			if n, err := w.write([][]byte{{1}, {2}}, localAP(rx), nil); n != 2 || err != nil {
				t.Fatalf("write after clearing the deadline = %d, %v", n, err)
			}
		})
	}
}

func TestPacketWriterConcurrentUse(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp6", "[::1]:0")
			tx := listenUDP(t, "udp6", "[::1]:0")
			r, w := newPacketReader(rx), newPacketWriter(tx)
			forceMode(t, mode, r, w)
			const writers, rounds, per = 4, 25, 4
			var wg sync.WaitGroup
			for g := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range rounds {
						pkts := make([][]byte, per)
						for j := range pkts {
							pkts[j] = []byte{byte(g), byte(k*per + j), 0xAA}
						}
						if n, err := w.write(pkts, localAP(rx), nil); n != per || err != nil {
							t.Errorf("write = %d, %v", n, err)
							return
						}
					}
				}()
			}
			got := collect(t, r, writers*rounds*per)
			wg.Wait()
			next := make([]int, writers)
			for _, g := range got {
				id, seq := int(g.data[0]), int(g.data[1])
				if seq != next[id] {
					t.Fatalf("writer %d: datagram %d arrived when %d was due", id, seq, next[id])
				}
				next[id]++
			}
		})
	}
}

// udpAddrConn is a custom PacketConn (not a *net.UDPConn) whose addresses
// are *net.UDPAddr.
type udpAddrConn struct{ net.PacketConn }

// tagAddr is a non-UDP address of a custom conn.
type tagAddr struct{ ap netip.AddrPort }

func (a tagAddr) Network() string { return "tag" }
func (a tagAddr) String() string  { return "tag:" + a.ap.String() }

// tagConn is a custom PacketConn whose addresses are tagAddr.
type tagConn struct{ c *net.UDPConn }

func (c tagConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.c.ReadFromUDPAddrPort(b)
	return n, tagAddr{ap}, err
}
func (c tagConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	return c.c.WriteToUDPAddrPort(b, addr.(tagAddr).ap)
}
func (c tagConn) Close() error                       { return c.c.Close() }
func (c tagConn) LocalAddr() net.Addr                { return tagAddr{localAP(c.c)} }
func (c tagConn) SetDeadline(t time.Time) error      { return c.c.SetDeadline(t) }
func (c tagConn) SetReadDeadline(t time.Time) error  { return c.c.SetReadDeadline(t) }
func (c tagConn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }

func TestPacketIOCustomConn(t *testing.T) {
	t.Run("udp-addresses", func(t *testing.T) {
		rx := listenUDP(t, "udp4", "127.0.0.1:0")
		tx := listenUDP(t, "udp4", "127.0.0.1:0")
		r, w := newPacketReader(udpAddrConn{rx}), newPacketWriter(udpAddrConn{tx})
		if r.udp != nil || r.batch != nil || w.udp != nil || w.batch != nil {
			t.Fatal("custom conn took the *net.UDPConn path")
		}
		pkts := [][]byte{datagram(0, 10), datagram(1, 1400), datagram(2, 3)}
		if n, err := w.write(pkts, localAP(rx), nil); n != 3 || err != nil {
			t.Fatalf("write = %d, %v", n, err)
		}
		if n, err := w.write(pkts[:1], netip.AddrPort{}, rx.LocalAddr()); n != 1 || err != nil {
			t.Fatalf("write with net.Addr = %d, %v", n, err)
		}
		got := collect(t, r, 4)
		for i, g := range got {
			if !bytes.Equal(g.data, pkts[i%3]) || g.ap != localAP(tx) || g.addr != nil {
				t.Fatalf("datagram %d: %+v", i, g)
			}
		}
	})
	t.Run("custom-addresses", func(t *testing.T) {
		rx := listenUDP(t, "udp4", "127.0.0.1:0")
		tx := listenUDP(t, "udp4", "127.0.0.1:0")
		r, w := newPacketReader(tagConn{rx}), newPacketWriter(tagConn{tx})
		pkts := [][]byte{datagram(0, 10), datagram(1, 20)}
		if n, err := w.write(pkts, netip.AddrPort{}, tagAddr{localAP(rx)}); n != 2 || err != nil {
			t.Fatalf("write = %d, %v", n, err)
		}
		got := collect(t, r, 2)
		for i, g := range got {
			if !bytes.Equal(g.data, pkts[i]) || g.ap.IsValid() || g.addr != (tagAddr{localAP(tx)}) {
				t.Fatalf("datagram %d: %+v", i, g)
			}
		}
		if n, err := w.write(pkts, netip.AddrPort{}, nil); n != 0 || err == nil {
			t.Fatalf("write without address = %d, %v", n, err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		rx := listenUDP(t, "udp4", "127.0.0.1:0")
		r := newPacketReader(tagConn{rx})
		rx.Close()
		if err := r.read(func([]byte, netip.AddrPort, net.Addr) {}); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on closed custom conn = %v", err)
		}
	})
}

func TestPacketIOZeroAllocs(t *testing.T) {
	tests := []struct{ net, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}}
	for _, tc := range tests {
		for _, mode := range ioModes {
			t.Run(tc.net+"/"+mode.name, func(t *testing.T) {
				rx := listenUDP(t, tc.net, tc.addr)
				tx := listenUDP(t, tc.net, tc.addr)
				r, w := newPacketReader(rx), newPacketWriter(tx)
				forceMode(t, mode, r, w)
				pkts := make([][]byte, 32)
				for i := range pkts {
					pkts[i] = datagram(i, 1400)
				}
				batch := outPackets(pkts, localAP(rx))
				var got, bad int
				want := localAP(tx)
				handle := func(data []byte, ap netip.AddrPort, _ net.Addr) {
					got++
					if len(data) != 1400 || ap != want {
						bad++
					}
				}
				var failure error
				round := func() {
					got = 0
					if _, err := w.send(batch); err != nil && failure == nil {
						failure = err
					}
					for got < len(pkts) && failure == nil {
						if err := r.readOnce(handle); err != nil {
							failure = err
						}
					}
				}
				rx.SetReadDeadline(time.Now().Add(20 * time.Second))
				round() // warm up
				allocs := testing.AllocsPerRun(50, round)
				if failure != nil || bad != 0 {
					t.Fatalf("round trip failed: %v, %d bad datagrams", failure, bad)
				}
				if allocs != 0 {
					t.Fatalf("%v allocations per round of %d datagrams, want 0", allocs, len(pkts))
				}
			})
		}
	}
}

func TestSetDSCP(t *testing.T) {
	tests := []struct{ name, net, addr string }{
		{"udp4", "udp4", "127.0.0.1:0"},
		{"udp6", "udp6", "[::1]:0"},
		{"dualstack", "udp", ":0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := listenUDP(t, tc.net, tc.addr)
			if err := setDSCP(c, 46); err != nil {
				t.Fatalf("setDSCP: %v", err)
			}
			if runtime.GOOS == "windows" {
				return // Windows keeps the option but does not report it back
			}
			if tc.net == "udp4" {
				if tos, err := ipv4.NewConn(c).TOS(); err != nil || tos != 46<<2 {
					t.Fatalf("TOS = %d, %v; want %d", tos, err, 46<<2)
				}
			} else if tc, err := ipv6.NewConn(c).TrafficClass(); err != nil || tc != 46<<2 {
				t.Fatalf("traffic class = %d, %v; want %d (dscp<<2, as kcp-go v5.7)", tc, err, 46<<2)
			}
		})
	}
	t.Run("range", func(t *testing.T) {
		c := listenUDP(t, "udp4", "127.0.0.1:0")
		for _, v := range []int{-1, 64} {
			if err := setDSCP(c, v); err == nil {
				t.Errorf("setDSCP(%d) accepted", v)
			}
		}
	})
	t.Run("duck-typed", func(t *testing.T) {
		c := &optConn{PacketConn: udpAddrConn{listenUDP(t, "udp4", "127.0.0.1:0")}}
		if err := setDSCP(c, 10); err != nil || c.dscp != 10 {
			t.Fatalf("setDSCP = %v, conn saw %d", err, c.dscp)
		}
		if err := setReadBuffer(c, 1000); err != nil || c.rbuf != 1000 {
			t.Fatalf("setReadBuffer = %v, conn saw %d", err, c.rbuf)
		}
		if err := setWriteBuffer(c, 2000); err != nil || c.wbuf != 2000 {
			t.Fatalf("setWriteBuffer = %v, conn saw %d", err, c.wbuf)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		c := udpAddrConn{listenUDP(t, "udp4", "127.0.0.1:0")}
		for name, err := range map[string]error{
			"dscp": setDSCP(c, 1), "read": setReadBuffer(c, 1), "write": setWriteBuffer(c, 1),
		} {
			if !errors.Is(err, errNoSockopt) {
				t.Errorf("%s: %v, want errNoSockopt", name, err)
			}
		}
	})
}

func TestSetSocketBuffers(t *testing.T) {
	c := listenUDP(t, "udp4", "127.0.0.1:0")
	if err := setReadBuffer(c, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := setWriteBuffer(c, 1<<20); err != nil {
		t.Fatal(err)
	}
}

type optConn struct {
	net.PacketConn
	dscp, rbuf, wbuf int
}

func (c *optConn) SetDSCP(v int) error        { c.dscp = v; return nil }
func (c *optConn) SetReadBuffer(v int) error  { c.rbuf = v; return nil }
func (c *optConn) SetWriteBuffer(v int) error { c.wbuf = v; return nil }

func TestErrorClassification(t *testing.T) {
	wrap := func(e error) error { return &net.OpError{Op: "read", Err: os.NewSyscallError("x", e)} }
	for _, tc := range []struct {
		err                             error
		refused, recvRefused, transient bool
	}{
		{wrap(errENOSYS), true, true, false},
		// EPERM: a sandbox refusing recvmmsg, but for sendmmsg possibly a
		// firewall refusing one datagram (packetWriter.send tells them apart).
		{wrap(errEPERM), false, true, false},
		{wrap(errECONNREFUSED), false, false, true},
		{wrap(errEMSGSIZE), false, false, true},
		{os.ErrDeadlineExceeded, false, false, false},
		{net.ErrClosed, false, false, false},
	} {
		if got := batchRefused(tc.err); got != tc.refused {
			t.Errorf("batchRefused(%v) = %v", tc.err, got)
		}
		if got := recvRefused(tc.err); got != tc.recvRefused {
			t.Errorf("recvRefused(%v) = %v", tc.err, got)
		}
		if got := transientReadError(tc.err); got != tc.transient {
			t.Errorf("transientReadError(%v) = %v", tc.err, got)
		}
	}
}

// BenchmarkPacketIO moves bursts of 64 datagrams from a packetWriter to a
// packetReader over loopback on one goroutine, so the figures compare the
// syscall paths side by side: plain (one datagram per syscall), batch
// (sendmmsg/recvmmsg), gso (GSO send, recvmmsg without GRO) and gso+gro.
// cpu-ns/datagram is process CPU time (user+system) for both ends, which a
// busy shared host distorts less than wall time.
func BenchmarkPacketIO(b *testing.B) {
	tests := []struct {
		net, addr string
		size      int
	}{{"udp4", "127.0.0.1:0", 1400}, {"udp6", "[::1]:0", 1400}, {"udp4", "127.0.0.1:0", 64}}
	for _, tc := range tests {
		for _, mode := range ioModes {
			b.Run(fmt.Sprintf("%s/%d/%s", tc.net, tc.size, mode.name), func(b *testing.B) {
				benchPacketIO(b, tc.net, tc.addr, tc.size, mode)
			})
		}
	}
}

func benchPacketIO(b *testing.B, network, addr string, size int, mode ioCase) {
	rx := listenUDP(b, network, addr)
	tx := listenUDP(b, network, addr)
	r, w := newPacketReader(rx), newPacketWriter(tx)
	forceMode(b, mode, r, w)
	const burst = 64
	pkts := make([][]byte, burst)
	for i := range pkts {
		pkts[i] = make([]byte, size)
	}
	batch := outPackets(pkts, localAP(rx))
	got := 0
	handle := func([]byte, netip.AddrPort, net.Addr) { got++ }
	rx.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu0 := processCPU()
	i := 0
	for b.Loop() {
		if i++; i%burst != 0 {
			continue
		}
		got = 0
		if _, err := w.send(batch); err != nil {
			b.Fatal(err)
		}
		for got < burst {
			if err := r.readOnce(handle); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "datagrams/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(i), "cpu-ns/datagram")
	}
}

var (
	errENOSYS       error = syscall.ENOSYS
	errEPERM        error = syscall.EPERM
	errECONNREFUSED error = syscall.ECONNREFUSED
	errEMSGSIZE     error = syscall.EMSGSIZE
)

// outPackets addresses every datagram of pkts to one destination.
func outPackets(pkts [][]byte, to netip.AddrPort) []outPacket {
	out := make([]outPacket, len(pkts))
	for i, p := range pkts {
		out[i] = outPacket{b: p, to: to}
	}
	return out
}

// TestPacketWriterManyDestinations sends one batch that interleaves three
// receivers, in every writer mode: each receiver gets exactly its own
// datagrams, in order, and the batch counts as sent whole.
func TestPacketWriterManyDestinations(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tx := listenUDP(t, "udp4", "127.0.0.1:0")
			w := newPacketWriter(tx)
			forceMode(t, mode, nil, w)
			var rxs []*packetReader
			var batch []outPacket
			for range 3 {
				rxs = append(rxs, newPacketReader(listenUDP(t, "udp4", "127.0.0.1:0")))
			}
			// Runs of equal sizes per destination, so GSO has runs to cut
			// at each change of destination.
			for i := range 90 {
				r := (i / 5) % 3
				batch = append(batch, outPacket{b: datagram(i, 1200), to: localAP(rxs[r].conn)})
			}
			if n, err := w.send(batch); n != len(batch) || err != nil {
				t.Fatalf("send: %d of %d, %v", n, len(batch), err)
			}
			for r, rx := range rxs {
				got := collect(t, rx, 30)
				k := 0
				for i, p := range batch {
					if (i/5)%3 != r {
						continue
					}
					if !bytes.Equal(got[k].data, p.b) || got[k].ap != localAP(tx) {
						t.Fatalf("receiver %d datagram %d: wrong bytes or source", r, k)
					}
					k++
				}
			}
			if runtime.GOOS == "linux" && mode.writer == ioOffload && w.gsoSegments() == 0 {
				t.Error("GSO carried none of the runs")
			}
		})
	}
}

// A listener's IOStats sums its lanes: add must carry every counter (a
// counter added to IOStats and forgotten here would read lane 0's only).
func TestIOStatsAddSumsEveryCounter(t *testing.T) {
	var o IOStats
	v := reflect.ValueOf(&o).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Uint64 {
			f.SetUint(uint64(i + 1))
		}
	}
	var st IOStats
	st.add(o)
	st.add(o)
	got := reflect.ValueOf(st)
	for i := range got.NumField() {
		if f := got.Field(i); f.Kind() == reflect.Uint64 && f.Uint() != 2*uint64(i+1) {
			t.Errorf("%s = %d after adding %d twice", got.Type().Field(i).Name, f.Uint(), i+1)
		}
	}
}
