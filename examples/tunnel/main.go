// Command tunnel forwards TCP connections over KCP, the core of kcptun in
// a page: the local end accepts TCP connections and carries each on its own
// smux stream over one KCP session; the remote end opens a TCP connection
// to the target for every stream.
//
//	app ──TCP──▶ local (-listen) ══ KCP + smux ══▶ remote (-kcp) ──TCP──▶ target
//
//	go run . -role remote -kcp 0.0.0.0:29900 -target 127.0.0.1:22 -key secret
//	go run . -role local -listen 127.0.0.1:2222 -remote server:29900 -key secret
//	ssh -p 2222 127.0.0.1
//	go run .                       # both ends and an echo target in one process, one self-check
//
// Half-closes pass through: when one side stops sending (TCP FIN), the
// stream's write side is closed (smux CloseWrite) and the far side's TCP
// connection is half-closed in turn, so request/response protocols that
// signal the end of a request with a FIN work. A connection ends when both
// directions have. This directory is a module of its own so that the kcp
// module does not depend on smux.
package main

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"

	kcp "github.com/kcpx/kcp"
	"github.com/xtaci/smux"
)

func main() {
	var (
		role   = flag.String("role", "both", "local, remote or both")
		listen = flag.String("listen", "127.0.0.1:0", "local: TCP address to accept connections on")
		remote = flag.String("remote", "", "local: the remote end's KCP address")
		kcpAt  = flag.String("kcp", "127.0.0.1:0", "remote: UDP address to serve KCP on")
		target = flag.String("target", "", "remote: TCP address every connection is forwarded to")
		key    = flag.String("key", "it's a secret", "pre-shared secret (both ends alike); AES-256 key by PBKDF2")
	)
	flag.Parse()
	log.SetFlags(0)
	block, err := newBlock(*key)
	if err != nil {
		log.Fatal(err)
	}
	switch *role {
	case "local":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("forwarding %v to %s", ln.Addr(), *remote)
		log.Fatal(serveLocal(ln, &muxDialer{addr: *remote, block: block}))
	case "remote":
		l, err := kcp.ListenWithOptions(*kcpAt, block, 10, 3)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("serving KCP on %v for %s", l.Addr(), *target)
		log.Fatal(serveRemote(l, *target))
	case "both":
		if err := selfCheck(block, 4, 1<<20, os.Stdout); err != nil {
			log.Fatal("tunnel: ", err)
		}
	default:
		log.Fatalf("unknown role %q", *role)
	}
}

// newBlock derives the cipher from the shared secret. Both ends must agree
// on the secret, the salt and the FEC settings.
func newBlock(secret string) (kcp.BlockCrypt, error) {
	k, err := pbkdf2.Key(sha256.New, secret, []byte("kcpx tunnel example"), 4096, 32)
	if err != nil {
		return nil, err
	}
	return kcp.NewAESBlockCrypt(k)
}

// tune sets a session up for a tunnel: stream mode under smux, kcptun's
// "fast" preset, windows of 1024 segments.
func tune(s *kcp.UDPSession) {
	s.SetStreamMode(true)
	s.SetNoDelay(0, 30, 2, 1)
	s.SetWindowSize(1024, 1024)
}

// muxDialer keeps one smux session over one KCP session to the remote end,
// and dials a new one when the last has failed.
type muxDialer struct {
	addr  string
	block kcp.BlockCrypt
	mu    sync.Mutex
	mux   *smux.Session
}

func (d *muxDialer) open() (*smux.Stream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mux == nil || d.mux.IsClosed() {
		s, err := kcp.DialWithOptions(d.addr, d.block, 10, 3)
		if err != nil {
			return nil, err
		}
		tune(s)
		mux, err := smux.Client(s, smux.DefaultConfig())
		if err != nil {
			s.Close()
			return nil, err
		}
		d.mux = mux // closing mux closes s
	}
	return d.mux.OpenStream()
}

func (d *muxDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mux != nil {
		d.mux.Close()
	}
}

// serveLocal carries every TCP connection ln accepts over a stream of d,
// until ln is closed.
func serveLocal(ln net.Listener, d *muxDialer) error {
	defer d.close()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			st, err := d.open()
			if err != nil {
				log.Printf("tunnel: %v", err)
				c.Close()
				return
			}
			pipe(c, st)
		}()
	}
}

// serveRemote connects every stream of every session l accepts to target,
// until l is closed.
func serveRemote(l *kcp.Listener, target string) error {
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return err
		}
		tune(s)
		go func() {
			mux, err := smux.Server(s, smux.DefaultConfig())
			if err != nil {
				s.Close()
				return
			}
			defer mux.Close() // closes s
			for {
				st, err := mux.AcceptStream()
				if err != nil {
					return
				}
				go func() {
					c, err := net.DialTimeout("tcp", target, 10*time.Second)
					if err != nil {
						log.Printf("tunnel: %v", err)
						st.Close()
						return
					}
					pipe(c, st)
				}()
			}
		}()
	}
}

// halfCloser is a connection whose write side closes alone
// (*net.TCPConn, *smux.Stream).
type halfCloser interface{ CloseWrite() error }

// pipe copies a to b and b to a. When one side stops sending, the other's
// write side is closed; once both directions are done, both are closed.
func pipe(a, b io.ReadWriteCloser) {
	var wg sync.WaitGroup
	one := func(dst, src io.ReadWriteCloser) {
		defer wg.Done()
		io.Copy(dst, src)
		if hc, ok := dst.(halfCloser); ok {
			hc.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go one(a, b)
	go one(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// selfCheck runs a TCP echo target, a remote and a local end in this
// process, sends size bytes on each of conns TCP connections through the
// tunnel, and checks that each gets its own bytes back, then EOF.
func selfCheck(block kcp.BlockCrypt, conns, size int, report io.Writer) error {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c) // echoes until the tunnel passes on the client's FIN
			}()
		}
	}()

	l, err := kcp.ListenWithOptions("127.0.0.1:0", block, 10, 3)
	if err != nil {
		return err
	}
	defer l.Close()
	go serveRemote(l, echo.Addr().String())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go serveLocal(ln, &muxDialer{addr: l.Addr().String(), block: block})

	start := time.Now()
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = roundTrip(ln.Addr().String(), i, size)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(report, "%d TCP connections through the tunnel echoed %d bytes each in %v\n",
		conns, size, elapsed.Round(time.Millisecond))
	return nil
}

// roundTrip connects to the tunnel's local end, sends size bytes, half-closes,
// and reads back the echo up to EOF.
func roundTrip(addr string, id, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	data := make([]byte, size)
	for j := range data {
		data[j] = byte(id*13 + j*5)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite() // the end of our request
		}
		werr <- err
	}()
	got, err := io.ReadAll(c) // up to the EOF that crossed the tunnel
	if err != nil {
		return fmt.Errorf("connection %d: %w", id, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("connection %d: %w", id, err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("connection %d: %d bytes back of %d, or altered", id, len(got), len(data))
	}
	return nil
}
