package kcp

// Fuzz targets above the codecs: the listener's input path with random
// source addresses, and a session pair driven by an op-code stream.
// Seed corpora: f.Add below and testdata/fuzz/<FuzzName>/.
// Run: go test -run='^$' -fuzz=FuzzListenerInput -fuzztime=5m
//      go test -run='^$' -fuzz=FuzzSessionPair -fuzztime=5m

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// relFuzzAddr is a source that is not a UDP address: the listener keys it
// by its string.
type relFuzzAddr string

func (a relFuzzAddr) Network() string { return "fuzz" }
func (a relFuzzAddr) String() string  { return string(a) }

// relFuzzCiphers are the listener configurations the fuzzers pick from.
var relFuzzCiphers = []relCipher{relNoCipher, relCFB, relAEAD}

// relFuzzDatagrams splits the fuzz input into (source, datagram) pairs:
// each record is a source byte, a length byte, and that many bytes (the
// last record takes what is left).
func relFuzzDatagrams(data []byte, yield func(src byte, dgram []byte)) {
	for len(data) >= 2 {
		src, n := data[0], int(data[1])
		data = data[2:]
		if n > len(data) || n == 0 {
			n = len(data)
		}
		yield(src, data[:n])
		data = data[n:]
	}
}

// relFuzzSource maps a source byte to an address: 16 UDP sources, v4 and
// v4-mapped v6 for the same host (which must be one key), and a few custom
// addresses.
func relFuzzSource(src byte) (netip.AddrPort, net.Addr) {
	if src&0x80 != 0 {
		return netip.AddrPort{}, relFuzzAddr("peer-" + string(rune('a'+src%4)))
	}
	ip := netip.AddrFrom4([4]byte{127, 88, 0, src % 8})
	if src&0x40 != 0 {
		ip = netip.AddrFrom16(ip.As16()) // v4-mapped
	}
	return netip.AddrPortFrom(ip, 4000+uint16(src%16)), nil
}

// FuzzListenerInput feeds datagrams from random sources to a listener's
// demux. mode picks the cipher (bits 0-1), FEC on the listener (bit 2) and
// whether the datagrams are sealed with the listener's key first (bit 3), so
// the fuzzer also reaches what lies behind decryption. Invariants: no panic,
// never more sessions than the backlog allows plus live ones, and Close
// releases everything.
func FuzzListenerInput(f *testing.F) {
	push := relSegment(0x11223344, IKCP_CMD_PUSH, 0, 32, 1, 0, 0, 5, []byte("hello"))
	ack := relSegment(0x11223344, IKCP_CMD_ACK, 0, 32, 1, 0, 1, 0, nil)
	fecData := append([]byte{0, 0, 0, 0, typeData, 0, byte(len(push) + 2), 0}, push...)
	closeSig := []byte{0xff, 0xff, 0xff, 0xff, typeClose, 0, closeSignalLen, 0, 0x44, 0x33, 0x22, 0x11, closeFIN, 0, 0, 0, 0, 0, 0, 0, 0}
	rec := func(src byte, d []byte) []byte { return append([]byte{src, byte(len(d))}, d...) }
	f.Add(byte(0), rec(1, push))
	f.Add(byte(8|1), append(rec(1, push), rec(1, ack)...))
	f.Add(byte(8|2|4), append(rec(2, fecData), rec(0x82, push)...))
	f.Add(byte(8), append(rec(3, push), rec(3, closeSig)...))
	f.Add(byte(1), rec(5, []byte("garbage that will not decrypt")))
	f.Add(byte(8), append(rec(1, push), rec(1, relSegment(0x55, IKCP_CMD_PUSH, 0, 32, 1, 0, 0, 1, []byte("x")))...))
	f.Add(byte(8|4), append(rec(0x41, push), rec(1, relSegment(0x11223344, IKCP_CMD_WASK, 0, 0, 0, 0, 0, 0, nil))...))

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		c := relFuzzCiphers[int(mode&3)%len(relFuzzCiphers)]
		block := c.block(t)
		ds, ps := 0, 0
		if mode&4 != 0 {
			ds, ps = 4, 2
		}
		n := newImpNet(64)
		ep := n.listen(t)
		l, err := ServeConn(block, ds, ps, ep)
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		relFuzzDatagrams(data, func(src byte, d []byte) {
			if mode&8 != 0 && block != nil {
				d = relSeal(block, d)
			}
			if len(d) > mtuLimit {
				return
			}
			ap, addr := relFuzzSource(src)
			l.handle(append([]byte(nil), d...), ap, addr)
			count++
		})
		s, p := relListenerLoad(l)
		if p > acceptBacklog || s > count {
			t.Fatalf("%d datagrams made %d sessions, %d pending", count, s, p)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if s, p := relListenerLoad(l); s != 0 || p != 0 {
			t.Fatalf("after Close: %d sessions, %d pending", s, p)
		}
	})
}

// Op codes of FuzzSessionPair; each takes one argument byte.
const (
	relOpCliWrite = iota
	relOpSrvWrite
	relOpLoss     // both directions lose arg/512 of their datagrams
	relOpDropNext // the next arg%16 client datagrams are lost
	relOpCorrupt  // the next client datagram has a bit flipped
	relOpDup      // the next arg%8 client datagrams arrive twice
	relOpWindow
	relOpNoDelay
	relOpMtu
	relOpWait // let arg%8 ms pass
	relOpCliClose
	relOpSrvClose
	relOpCount
)

// relFuzzLink is the scripted client→server impairment of FuzzSessionPair.
type relFuzzLink struct {
	mu      sync.Mutex
	drop    int
	corrupt bool
	dup     int
	ep      *impEndpoint // server endpoint, for corrupted and duplicate copies
	from    net.Addr
}

func (k *relFuzzLink) hook(_ uint64, b []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.drop > 0:
		k.drop--
		return true
	case k.corrupt && len(b) > 0:
		k.corrupt = false
		c := append([]byte(nil), b...)
		c[len(c)/2] ^= 0x10
		k.ep.inject(k.from, c)
		return true
	case k.dup > 0:
		k.dup--
		k.ep.inject(k.from, b)
	}
	return false
}

// relCollector reads a session in stream mode into a buffer until the
// session fails.
type relCollector struct {
	mu   sync.Mutex
	got  []byte
	done chan struct{}
}

func relCollect(s *UDPSession) *relCollector {
	c := &relCollector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			c.mu.Lock()
			c.got = append(c.got, buf[:n]...)
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *relCollector) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.got...)
}

// FuzzSessionPair drives a client and a server session in stream mode over
// an in-memory link from an op-code stream: writes both ways, losses,
// drops, corruption and duplication of the client's datagrams, window, nodelay
// and MTU changes, pauses and closes. Invariants: no panic; each side only
// ever receives a prefix of what the other wrote (nothing reordered,
// duplicated or corrupted); once the link is clean and neither side closed,
// everything arrives; everything shuts down.
func FuzzSessionPair(f *testing.F) {
	f.Add([]byte{relOpCliWrite, 200, relOpSrvWrite, 50, relOpWait, 5})
	f.Add([]byte{relOpLoss, 100, relOpCliWrite, 255, relOpCliWrite, 255, relOpSrvWrite, 255})
	f.Add([]byte{relOpDropNext, 5, relOpCliWrite, 40, relOpCorrupt, 0, relOpCliWrite, 40, relOpDup, 3, relOpCliWrite, 40})
	f.Add([]byte{relOpWindow, 1, relOpCliWrite, 255, relOpNoDelay, 3, relOpMtu, 200, relOpCliWrite, 255})
	f.Add([]byte{relOpCliWrite, 10, relOpCliClose, 0, relOpSrvWrite, 10})
	f.Add([]byte{relOpSrvClose, 0, relOpCliWrite, 10, relOpWait, 7})
	f.Add([]byte{relOpMtu, 0, relOpMtu, 255, relOpWindow, 255, relOpCliWrite, 1})

	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		link := &relFuzzLink{}
		tune := func(s *UDPSession) { s.SetNoDelay(1, 10, 2, 1); s.SetStreamMode(true) }
		p := newRelPair(t, relOpts{cipher: relCFB, up: impairConfig{Drop: link.hook}, tune: tune, hello: true})
		link.ep, link.from = relEndpoint(p.down), p.cli.LocalAddr()
		p.cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
		p.srv.SetWriteDeadline(time.Now().Add(2 * time.Second))
		atCli, atSrv := relCollect(p.cli), relCollect(p.srv)
		var sentCli, sentSrv []byte // what each side wrote
		closed := false
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%relOpCount, ops[i+1]
			switch op {
			case relOpCliWrite, relOpSrvWrite:
				b := bytes.Repeat([]byte{arg, byte(i)}, 1+int(arg)*8)
				binary.LittleEndian.PutUint16(b, uint16(i))
				if op == relOpCliWrite {
					if n, _ := p.cli.Write(b); n > 0 {
						sentCli = append(sentCli, b[:n]...)
					}
				} else if n, _ := p.srv.Write(b); n > 0 {
					sentSrv = append(sentSrv, b[:n]...)
				}
			case relOpLoss:
				p.up.setLoss(float64(arg) / 512)
				p.down.setLoss(float64(arg) / 512)
			case relOpDropNext:
				link.mu.Lock()
				link.drop = int(arg % 16)
				link.mu.Unlock()
			case relOpCorrupt:
				link.mu.Lock()
				link.corrupt = true
				link.mu.Unlock()
			case relOpDup:
				link.mu.Lock()
				link.dup = int(arg % 8)
				link.mu.Unlock()
			case relOpWindow:
				p.cli.SetWindowSize(int(arg), int(arg)+1)
				p.srv.SetWindowSize(int(arg)+1, int(arg))
			case relOpNoDelay:
				p.cli.SetNoDelay(int(arg&1), 10+int(arg%40), int(arg%3), int(arg>>7))
			case relOpMtu:
				p.cli.SetMtu(int(arg) * 8)
			case relOpWait:
				time.Sleep(time.Duration(arg%8) * time.Millisecond) // letting the link run
			case relOpCliClose:
				p.cli.Close()
				closed = true
			case relOpSrvClose:
				p.srv.Close()
				closed = true
			}
		}
		// The link turns clean: scripted drops still pending would cost up
		// to 15 more back-offs of one segment (5.5 s for 10 at nodelay 0's
		// 100 ms steps), which is loss, not a clean link.
		p.up.setLoss(0)
		p.down.setLoss(0)
		link.mu.Lock()
		link.drop, link.dup, link.corrupt = 0, 0, false
		link.mu.Unlock()
		complete := func() bool {
			return len(atSrv.bytes()) >= len(sentCli) && len(atCli.bytes()) >= len(sentSrv)
		}
		if !closed {
			if !eventually(5*time.Second, complete) {
				t.Fatalf("clean link: server has %d of %d bytes, client %d of %d",
					len(atSrv.bytes()), len(sentCli), len(atCli.bytes()), len(sentSrv))
			}
		}
		for _, c := range []struct {
			name      string
			got, sent []byte
		}{{"server", atSrv.bytes(), sentCli}, {"client", atCli.bytes(), sentSrv}} {
			if len(c.got) > len(c.sent) || !bytes.Equal(c.got, c.sent[:len(c.got)]) {
				t.Fatalf("%s received %d bytes that are not a prefix of the %d sent", c.name, len(c.got), len(c.sent))
			}
		}
		p.cli.Close()
		p.srv.Close()
		p.l.Close()
		for _, c := range []*relCollector{atCli, atSrv} {
			select {
			case <-c.done:
			case <-time.After(time.Second):
				t.Fatal("a Read still blocked 1 s after Close")
			}
		}
	})
}
