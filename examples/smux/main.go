// Command smux multiplexes many streams over one KCP session with
// github.com/xtaci/smux, as kcptun does: one session and its windows, its
// congestion state and its socket serve every stream, and opening a stream
// costs no handshake.
//
//	cd examples/smux && go run .                     # 8 streams of 1 MB, echoed
//	cd examples/smux && go run . -streams 64 -size 100000
//
// KCP runs in stream mode under smux (smux frames are a byte stream). This
// directory is a module of its own so that the kcp module does not depend
// on smux.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	kcp "github.com/kcpx/kcp"
	"github.com/xtaci/smux"
)

func main() {
	streams := flag.Int("streams", 8, "streams opened at once")
	size := flag.Int("size", 1_000_000, "bytes echoed per stream")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*streams, *size, os.Stdout); err != nil {
		log.Fatal("smux: ", err)
	}
}

// tune sets a session up under smux: stream mode, kcptun's "fast2" preset,
// windows of 1024 segments.
func tune(s *kcp.UDPSession) {
	s.SetStreamMode(true)
	s.SetNoDelay(1, 20, 2, 1)
	s.SetWindowSize(1024, 1024)
}

// run echoes size bytes on each of streams smux streams, all over one KCP
// session to a server in the same process.
func run(streams, size int, report io.Writer) error {
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		return err
	}
	defer l.Close()
	go serve(l)

	s, err := kcp.DialWithOptions(l.Addr().String(), nil, 0, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	tune(s)
	mux, err := smux.Client(s, smux.DefaultConfig())
	if err != nil {
		return err
	}
	defer mux.Close()

	start := time.Now()
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = echoStream(mux, i, size)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(report, "%d streams echoed %d bytes each over one session (conv %08x) in %v: %.1f MB/s each way\n",
		streams, size, s.GetConv(), elapsed.Round(time.Millisecond), float64(streams*size)/elapsed.Seconds()/1e6)
	return nil
}

// echoStream opens a stream, writes size bytes of a pattern that depends on
// id, and checks that the same bytes come back.
func echoStream(mux *smux.Session, id, size int) error {
	st, err := mux.OpenStream()
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(time.Minute))
	data := make([]byte, size)
	for j := range data {
		data[j] = byte(id*31 + j*7)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		werr <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(st, got); err != nil {
		return fmt.Errorf("stream %d: %w", id, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("stream %d: %w", id, err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("stream %d: echo differs", id)
	}
	return nil
}

// serve runs an smux server on every session l accepts and echoes every
// stream, until l is closed.
func serve(l *kcp.Listener) {
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		tune(s)
		go func() {
			defer s.Close()
			mux, err := smux.Server(s, smux.DefaultConfig())
			if err != nil {
				return
			}
			defer mux.Close()
			for {
				st, err := mux.AcceptStream()
				if err != nil {
					return // the client closed its side, or the session failed
				}
				go func() {
					defer st.Close()
					io.Copy(st, st)
				}()
			}
		}()
	}
}
