package kcp

// The traps a newcomer hit: errors to branch on, configuration mistakes
// reported instead of ignored, net.Conn corner cases, and message mode
// towards a C KCP peer.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestIdleTimeoutErrorIsExported(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	n := newMemNet(21)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	a.SetIdleTimeout(200 * time.Millisecond)
	roundTripPair(t, a, b, []byte("ping"))
	b.SetLinger(100 * time.Millisecond)
	n.setCut(true)
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := a.Read(make([]byte, 10))
	if !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("Read: %v, want ErrIdleTimeout", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error with Timeout() true", err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrDeadLink) {
		t.Errorf("%v matches a deadline or the dead link", err)
	}
	if errors.Is(ErrDeadLink, ErrIdleTimeout) || errors.Is(ErrDeadLink, os.ErrDeadlineExceeded) {
		t.Error("ErrDeadLink matches another error")
	}
}

func TestKeySizeErrors(t *testing.T) {
	cases := []struct {
		name  string
		ctor  func([]byte) (BlockCrypt, error)
		valid string
		good  int
	}{
		{"AES", NewAESBlockCrypt, "16, 24 or 32", 32},
		{"AES-GCM", NewAESGCMCrypt, "16, 24 or 32", 16},
		{"SM4", NewSM4BlockCrypt, "16", 16},
		{"Twofish", NewTwofishBlockCrypt, "16, 24 or 32", 24},
		{"3DES", NewTripleDESBlockCrypt, "24", 24},
		{"CAST5", NewCast5BlockCrypt, "16", 16},
		{"Blowfish", NewBlowfishBlockCrypt, "1 to 56", 56},
		{"TEA", NewTEABlockCrypt, "16", 16},
		{"XTEA", NewXTEABlockCrypt, "16", 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.ctor(make([]byte, 57))
			var ke *KeySizeError
			if !errors.As(err, &ke) {
				t.Fatalf("57-byte key: %v, want a *KeySizeError", err)
			}
			if ke.Cipher != c.name || ke.Len != 57 || ke.Valid != c.valid || ke.Err == nil {
				t.Errorf("got %+v", ke)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "kcp: ") || !strings.Contains(msg, c.valid) || !strings.Contains(msg, c.name) {
				t.Errorf("message %q does not name kcp, %s and %s", msg, c.name, c.valid)
			}
			if b, err := c.ctor(make([]byte, c.good)); err != nil || b == nil {
				t.Errorf("%d-byte key: %v", c.good, err)
			}
		})
	}
}

func TestFECShardCountsChecked(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	bad := [][2]int{{-1, 3}, {10, -1}, {200, 56}, {128, 128}}
	for _, sh := range bad {
		if s, err := DialWithOptions("127.0.0.1:9", nil, sh[0], sh[1]); err == nil {
			s.SetLinger(0)
			s.Close()
			t.Errorf("DialWithOptions %v: no error", sh)
		}
		if l, err := ListenWithOptions("127.0.0.1:0", nil, sh[0], sh[1]); err == nil {
			l.Close()
			t.Errorf("ListenWithOptions %v: no error", sh)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if s, err := NewConn("127.0.0.1:9", nil, sh[0], sh[1], pc); err == nil {
			s.Close()
			t.Errorf("NewConn %v: no error", sh)
		}
		if l, err := ServeConn(nil, sh[0], sh[1], pc); err == nil {
			l.Close()
			t.Errorf("ServeConn %v: no error", sh)
		}
		pc.Close()
	}
	// Zero data or zero parity shards is FEC off, as in kcp-go; the most
	// shards together is 255.
	for _, sh := range [][2]int{{0, 0}, {10, 0}, {0, 3}, {200, 55}} {
		s, err := DialWithOptions("127.0.0.1:9", nil, sh[0], sh[1])
		if err != nil {
			t.Fatalf("DialWithOptions %v: %v", sh, err)
		}
		on := s.fecEnc != nil
		s.SetLinger(0) // nobody to say goodbye to
		s.Close()
		if want := sh[0] > 0 && sh[1] > 0; on != want {
			t.Errorf("%v: FEC on %v, want %v", sh, on, want)
		}
	}
}

func TestDialNeedsAddress(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:0", ":0"} {
		if s, err := DialWithOptions(addr, nil, 0, 0); err == nil {
			s.Close()
			t.Errorf("DialWithOptions(%q): no error", addr)
		}
	}
	if c, err := Dial(""); err == nil {
		c.Close()
		t.Error(`Dial(""): no error`)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if s, err := NewConn("", nil, 0, 0, pc); err == nil {
		s.Close()
		t.Error(`NewConn(""): no error`)
	}
}

func TestReadEmptyBuffer(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	a, b := udpPair(t, "udp", "127.0.0.1:0", func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	// Nothing to read: it returns at once, without waiting for data.
	if n, err := b.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	roundTripPair(t, a, b, []byte("first"))
	if _, err := a.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "data queued at b", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.kcp.recvQueued() > 0
	})
	// With data waiting, an empty read consumes none of it.
	if n, err := b.Read([]byte{}); n != 0 || err != nil {
		t.Fatalf("Read([]byte{}) = %d, %v", n, err)
	}
	buf := make([]byte, 16)
	if n, err := b.Read(buf); err != nil || string(buf[:n]) != "kept" {
		t.Fatalf("Read after the empty read: %q, %v", buf[:n], err)
	}
	b.Close()
	if _, err := b.Read(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read(nil) after Close: %v", err)
	}
}

func TestDeadlineOnClosedSession(t *testing.T) {
	leakCheck(t)
	a, b := udpPair(t, "udp", "127.0.0.1:0", func() BlockCrypt { return nil }, 0, 0)
	noLinger(a, b)
	defer b.Close()
	when := time.Now().Add(time.Second)
	if err := a.SetDeadline(when); err != nil {
		t.Fatalf("SetDeadline on an open session: %v", err)
	}
	a.Close()
	for name, set := range map[string]func(time.Time) error{
		"SetDeadline": a.SetDeadline, "SetReadDeadline": a.SetReadDeadline, "SetWriteDeadline": a.SetWriteDeadline,
	} {
		if err := set(when); !errors.Is(err, net.ErrClosed) || !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
		}
	}
}

// cPeer is a bare KCP core on a loopback socket, configured as C KCP's
// ikcp_create leaves it (receive window 128, message mode) and driven the
// way a C program drives it: input every datagram, update every 10 ms. Its
// core is created by the first datagram, with that datagram's conv, like a
// C server's. It reports the length of every message it receives.
type cPeer struct {
	pc   net.PacketConn
	msgs chan int
	done chan struct{}
}

func newCPeer(t *testing.T, rcvWnd int) *cPeer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cPeer{pc: pc, msgs: make(chan int, 64), done: make(chan struct{})}
	go p.run(rcvWnd)
	t.Cleanup(func() {
		pc.Close()
		<-p.done
	})
	return p
}

func (p *cPeer) run(rcvWnd int) {
	defer close(p.done)
	var (
		k    *KCP
		from net.Addr
	)
	buf := make([]byte, 2048)
	msg := make([]byte, 256*IKCP_MTU_DEF)
	for {
		p.pc.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) // the update tick
		n, addr, err := p.pc.ReadFrom(buf)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if n >= IKCP_OVERHEAD {
			if k == nil {
				from = addr
				k = NewKCP(uint32(buf[0])|uint32(buf[1])<<8|uint32(buf[2])<<16|uint32(buf[3])<<24,
					func(b []byte, size int) { p.pc.WriteTo(b[:size], from) })
				k.WndSize(128, rcvWnd)
				k.NoDelay(1, 10, 2, 1)
			}
			k.Input(buf[:n], IKCP_PACKET_REGULAR, false)
		}
		if k == nil {
			continue
		}
		k.Update()
		for {
			m := k.Recv(msg)
			if m < 0 {
				break
			}
			p.msgs <- m
		}
	}
}

// TestMessageModeToCPeer: a kcpx session that speaks first, in message
// mode, sends a C KCP peer (window 128) a 100-segment message whole: the
// write waits for the peer's window instead of assuming 32 segments. A
// message over the peer's window is cut at it.
func TestMessageModeToCPeer(t *testing.T) {
	leakCheck(t)
	peer := newCPeer(t, 128)
	s, err := DialWithOptions(peer.pc.LocalAddr().String(), nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetLinger(0) // the C peer knows no close signal
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(256, 256)
	mss := s.kcp.segmentSize()
	s.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for _, c := range []struct{ size, want int }{
		{100 * mss, 100 * mss},
		{128 * mss, 128 * mss},
		{130 * mss, 128 * mss},
	} {
		if _, err := s.Write(make([]byte, c.size)); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < c.size {
			select {
			case m := <-peer.msgs:
				if m != c.want && got+m != c.size {
					t.Fatalf("write of %d segments: a message of %d bytes, want %d (segment %d)", c.size/mss, m, c.want, mss)
				}
				got += m
			case <-time.After(10 * time.Second):
				t.Fatalf("write of %d segments: %d bytes arrived", c.size/mss, got)
			}
		}
	}
}

// TestMessageModeFirstWriteToListener: the window probe of a first write
// opens a session at a kcpx listener, which answers with its window, so the
// message arrives as one Read.
//
// The server's window is set after Accept, but the session answers the
// probe that created it as soon as it runs: with the default window (32
// segments) when that comes first. So the listener's socket sends nothing
// until the window is set; the client's next probe (one RTO later) gets
// the answer.
func TestMessageModeFirstWriteToListener(t *testing.T) {
	leakCheck(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := &gatedConn{PacketConn: pc}
	l, err := ServeConn(nil, 10, 3, gate)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	defer l.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	got := make(chan []byte, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv, err := l.AcceptKCP()
		if err != nil {
			got <- nil
			return
		}
		defer srv.Close()
		fast(srv)
		gate.open.Store(true)
		buf := make([]byte, 512<<10)
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := srv.Read(buf)
		got <- buf[:n]
	}()
	cli, err := DialWithOptions(l.Addr().String(), nil, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	fast(cli)
	msg := randBytes(3, 200*cli.kcp.segmentSize())
	cli.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := cli.Write(msg); err != nil {
		t.Fatal(err)
	}
	if m := <-got; !bytes.Equal(m, msg) {
		t.Fatalf("one Read returned %d bytes of a %d-byte message", len(m), len(msg))
	}
}

// TestMessageModeSilentPeer: towards a peer that never answers, a write
// that waits for the peer's window ends at the write deadline with nothing
// queued; a small write does not wait.
func TestMessageModeSilentPeer(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := DialWithOptions(pc.LocalAddr().String(), nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetLinger(0)
	s.SetWindowSize(128, 128)
	s.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := s.Write(make([]byte, 40*s.kcp.segmentSize())); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write: %v, want the deadline", err)
	}
	s.mu.Lock()
	queued := s.kcp.WaitSnd()
	s.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d segments queued by a failed write", queued)
	}
	s.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write(make([]byte, 32*s.kcp.segmentSize())); err != nil {
		t.Fatalf("a 32-segment write: %v", err)
	}
}

// gatedConn drops every datagram written until open is set, and after
// that every FEC data shard whose first KCP segment still advertises the
// default receive window (32 segments). The listener's sender may have
// taken a datagram built before the test set the window and write it just
// after the gate opened: under -race on a loaded box one such window
// answer got through, and the client cut the message at 32 segments.
// (Once the window is 256, a 200-segment message leaves at least 56 free.)
type gatedConn struct {
	net.PacketConn
	open atomic.Bool
}

func (c *gatedConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !c.open.Load() || advertisesDefaultWnd(b) {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// advertisesDefaultWnd reports an FEC data shard (no cipher) whose first
// KCP segment advertises a window of at most IKCP_WND_RCV.
func advertisesDefaultWnd(b []byte) bool {
	const wndAt = fecHeaderSizePlus2 + 6 // conv u32, cmd u8, frg u8, then wnd u16
	if len(b) < wndAt+2 || binary.LittleEndian.Uint16(b[4:]) != typeData {
		return false
	}
	return binary.LittleEndian.Uint16(b[wndAt:]) <= IKCP_WND_RCV
}
