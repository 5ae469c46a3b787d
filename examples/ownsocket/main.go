// Command ownsocket runs KCP over sockets the program opened itself:
// ServeConn serves a listener on the server's UDP socket, NewConn starts a
// session on the client's. Any net.PacketConn works; here the client's is
// wrapped to count its datagrams, as a program would to log, shape or
// tunnel them.
//
//	go run ./examples/ownsocket
//
// kcp never closes a socket it was given: Listener.Close and a session's
// release stop reading it (by setting a read deadline in the past, so reset
// the deadline before reading it yourself) and leave closing to you.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync/atomic"
	"time"

	kcp "github.com/kcpx/kcp"
)

func main() {
	log.SetFlags(0)
	if _, err := run(10, os.Stdout); err != nil {
		log.Fatal("ownsocket: ", err)
	}
}

// countingConn is a net.PacketConn that counts what crosses it.
type countingConn struct {
	net.PacketConn
	in, out atomic.Int64 // datagrams
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.in.Add(1)
	}
	return n, addr, err
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	if err == nil {
		c.out.Add(1)
	}
	return n, err
}

// result is what run measured: the client's datagrams each way.
type result struct{ in, out int64 }

// run echoes count messages through a listener on one socket and a session
// on another, both owned here, and closes the sockets itself at the end.
func run(count int, report io.Writer) (result, error) {
	srvSock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return result{}, err
	}
	defer srvSock.Close()
	srvSock.SetReadBuffer(4 << 20) // socket options are yours to set
	cliSock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return result{}, err
	}
	defer cliSock.Close()

	l, err := kcp.ServeConn(nil, 0, 0, srvSock)
	if err != nil {
		return result{}, err
	}
	defer l.Close()
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				io.Copy(s, s)
			}()
		}
	}()

	cc := &countingConn{PacketConn: cliSock}
	s, err := kcp.NewConn(srvSock.LocalAddr().String(), nil, 0, 0, cc)
	if err != nil {
		return result{}, err
	}
	s.SetNoDelay(1, 10, 2, 1)
	s.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64)
	for i := range count {
		msg := fmt.Sprintf("message %d", i)
		if _, err := s.Write([]byte(msg)); err != nil {
			return result{}, err
		}
		n, err := s.Read(buf)
		if err != nil {
			return result{}, err
		}
		if string(buf[:n]) != msg {
			return result{}, fmt.Errorf("echo %q, want %q", buf[:n], msg)
		}
	}
	s.Close()
	l.Close()
	r := result{in: cc.in.Load(), out: cc.out.Load()}
	fmt.Fprintf(report, "%d echoes; the client socket carried %d datagrams out, %d in\n", count, r.out, r.in)

	// Both sockets are still open and ours: closing them now succeeds.
	if err := cliSock.Close(); err != nil {
		return r, fmt.Errorf("client socket: %w", err)
	}
	if err := srvSock.Close(); err != nil {
		return r, fmt.Errorf("server socket: %w", err)
	}
	fmt.Fprintln(report, "closed both sockets ourselves")
	return r, nil
}
