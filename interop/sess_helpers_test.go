//go:build interop_sess

package interop

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// direction is one client/server pairing of the two libraries.
type direction struct {
	name           string
	client, server Impl
}

// directions are the two cross pairings every session test runs.
func directions() []direction {
	return []direction{
		{"kcpx_client_kcpgo_server", KCPX, KCPGo},
		{"kcpgo_client_kcpx_server", KCPGo, KCPX},
	}
}

// ioTimeout bounds every blocking call of a session test, so a stall fails
// the test instead of hanging it.
const ioTimeout = 30 * time.Second

// fast sets what kcp-go's own echo tests set on both ends: nodelay 1,10,2,1,
// windows 1024, stream mode. Windows are set on both sides because a kcp-go
// listener session starts with 32.
func fast(s Session) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetStreamMode(true)
}

// server is a listener of one library with an accept loop.
type server struct {
	l        Listener
	accepted atomic.Int32
	mu       sync.Mutex
	sessions []Session
	done     chan struct{}
}

// echoHandler writes back whatever it reads, one Write per Read (so message
// boundaries survive in message mode).
func echoHandler(s Session) {
	buf := make([]byte, 256<<10)
	for {
		n, err := s.Read(buf)
		if err != nil {
			return
		}
		if _, err := s.Write(buf[:n]); err != nil {
			return
		}
	}
}

// startServer listens on 127.0.0.1:0 with impl, runs setup on every accepted
// session and then handle in its own goroutine. Cleanup closes the listener
// and every session.
func startServer(t *testing.T, impl Impl, c Cipher, pass []byte, ds, ps int, setup func(Session), handle func(Session)) *server {
	t.Helper()
	l, err := impl.Listen("127.0.0.1:0", c, pass, ds, ps)
	if err != nil {
		t.Fatalf("%s Listen: %v", impl.Name, err)
	}
	return serve(t, l, setup, handle)
}

// startServerConn is startServer over a caller-owned conn (ServeConn); the
// conn is closed at cleanup.
func startServerConn(t *testing.T, impl Impl, c Cipher, pass []byte, ds, ps int, conn net.PacketConn, setup func(Session), handle func(Session)) *server {
	t.Helper()
	l, err := impl.ServeConn(c, pass, ds, ps, conn)
	if err != nil {
		t.Fatalf("%s ServeConn: %v", impl.Name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return serve(t, l, setup, handle)
}

func serve(t *testing.T, l Listener, setup func(Session), handle func(Session)) *server {
	l.SetReadBuffer(4 << 20)
	l.SetWriteBuffer(4 << 20)
	srv := &server{l: l, done: make(chan struct{})}
	go func() {
		defer close(srv.done)
		for {
			s, err := l.AcceptSession()
			if err != nil {
				return
			}
			srv.accepted.Add(1)
			if setup != nil {
				setup(s)
			}
			s.SetDeadline(time.Now().Add(2 * ioTimeout))
			srv.mu.Lock()
			srv.sessions = append(srv.sessions, s)
			srv.mu.Unlock()
			if handle != nil {
				go handle(s)
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-srv.done
		srv.mu.Lock()
		for _, s := range srv.sessions {
			s.Close()
		}
		srv.mu.Unlock()
	})
	return srv
}

// session returns the i-th accepted session, waiting for it.
func (srv *server) session(t *testing.T, i int) Session {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		srv.mu.Lock()
		if len(srv.sessions) > i {
			s := srv.sessions[i]
			srv.mu.Unlock()
			return s
		}
		srv.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("session %d never accepted", i)
		}
		<-tick.C
	}
}

// dialConn connects a client of impl over a caller-owned conn (NewConn3).
func dialConn(t *testing.T, impl Impl, conv uint32, addr net.Addr, c Cipher, pass []byte, ds, ps int, conn net.PacketConn, setup func(Session)) Session {
	t.Helper()
	s, err := impl.NewConn(conv, addr, c, pass, ds, ps, conn)
	if err != nil {
		t.Fatalf("%s NewConn: %v", impl.Name, err)
	}
	if setup != nil {
		setup(s)
	}
	t.Cleanup(func() { s.Close(); conn.Close() })
	return s
}

// listenUDP opens a loopback UDP socket wrapped in a TapConn.
func listenUDP(t *testing.T) *TapConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.UDPConn).SetReadBuffer(4 << 20)
	c.(*net.UDPConn).SetWriteBuffer(4 << 20)
	return NewTapConn(c)
}

// dial connects a client of impl to srv and runs setup on it.
func dial(t *testing.T, impl Impl, addr net.Addr, c Cipher, pass []byte, ds, ps int, setup func(Session)) Session {
	t.Helper()
	s, err := impl.Dial(addr.String(), c, pass, ds, ps)
	if err != nil {
		t.Fatalf("%s Dial: %v", impl.Name, err)
	}
	s.SetReadBuffer(4 << 20)
	s.SetWriteBuffer(4 << 20)
	if setup != nil {
		setup(s)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payload is n seeded random bytes.
func payload(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, ^seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// echo writes data through s in chunk-sized Writes while reading the echo
// back, and checks it is byte-exact.
func echo(t *testing.T, s Session, data []byte, chunk int) {
	t.Helper()
	s.SetDeadline(time.Now().Add(ioTimeout))
	defer s.SetDeadline(time.Time{})
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += chunk {
			if _, err := s.Write(data[off:min(off+chunk, len(data))]); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	got := make([]byte, len(data))
	n, err := io.ReadFull(s, got)
	if err != nil {
		t.Fatalf("echo: read %d of %d bytes: %v (write: %v)", n, len(data), err, errors.Join(<-werr))
	}
	if err := <-werr; err != nil {
		t.Fatalf("echo: write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo: %d bytes came back, first difference at byte %d", len(got), firstDiff(got, data))
	}
}
