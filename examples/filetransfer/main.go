// Command filetransfer copies a file over KCP, reports progress, and ends
// the session only once the receiver has confirmed every byte.
//
//	go run ./examples/filetransfer -in big.iso -out copy.iso          # both ends in one process
//	go run ./examples/filetransfer -role recv -addr 0.0.0.0:29900 -out copy.iso
//	go run ./examples/filetransfer -role send -addr server:29900 -in big.iso
//
// The protocol is three steps over one session in stream mode: the sender
// writes the length (8 bytes, big-endian) and the bytes; the receiver writes
// back the SHA-256 of what it wrote to disk; the sender compares it with its
// own and closes. The receiver then reads io.EOF and closes too.
//
// Why the digest: Write returns once the bytes are queued, not delivered.
// Close waits until the receiver's session acknowledged them, but for at
// most the linger (SetLinger, 5 s by default), and an acknowledgement does
// not say the receiver's disk took them. An answer from the receiver is the
// one proof that everything arrived.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	kcp "github.com/kcpx/kcp"
)

func main() {
	var (
		role = flag.String("role", "both", "both, send or recv")
		addr = flag.String("addr", "127.0.0.1:0", "listen address (recv, both) or receiver address (send)")
		in   = flag.String("in", "", "file to send (send, both)")
		out  = flag.String("out", "received.bin", "where to write the copy (recv, both)")
	)
	flag.Parse()
	log.SetFlags(0)
	if err := run(*role, *addr, *in, *out, os.Stderr); err != nil {
		log.Fatal("filetransfer: ", err)
	}
}

// run plays role; progress lines go to report.
func run(role, addr, in, out string, report io.Writer) error {
	switch role {
	case "recv":
		l, err := kcp.ListenWithOptions(addr, nil, 0, 0)
		if err != nil {
			return err
		}
		defer l.Close()
		fmt.Fprintln(report, "waiting on", l.Addr())
		return receiveOne(l, out, report)
	case "send":
		return sendFile(addr, in, report)
	case "both":
		report = &lockedWriter{w: report} // both ends print
		l, err := kcp.ListenWithOptions(addr, nil, 0, 0)
		if err != nil {
			return err
		}
		defer l.Close()
		done := make(chan error, 1)
		go func() { done <- receiveOne(l, out, report) }()
		serr := sendFile(l.Addr().String(), in, report)
		if serr != nil {
			l.Close() // the receiver may still wait in Accept
		}
		return errors.Join(serr, <-done)
	}
	return fmt.Errorf("unknown role %q", role)
}

// tune sets a session up for bulk transfer: stream mode, kcptun's "fast2"
// preset, windows of 1024 segments (about 1.4 MB in flight).
func tune(s *kcp.UDPSession) {
	s.SetStreamMode(true)
	s.SetNoDelay(1, 20, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetReadBuffer(4 << 20)
	s.SetWriteBuffer(4 << 20)
}

// sendFile sends the file named in to the receiver at addr.
func sendFile(addr, in string, report io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	s, err := kcp.DialWithOptions(addr, nil, 0, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	tune(s)

	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(fi.Size()))
	if _, err := s.Write(hdr[:]); err != nil {
		return err
	}
	sum := sha256.New()
	p := newProgress("sent", fi.Size(), report)
	// io.Copy hands the session 32 KiB at a time; Write blocks while the
	// send window is full, so memory stays bounded whatever the file size.
	if _, err := io.Copy(io.MultiWriter(s, sum, p), f); err != nil {
		return err
	}
	p.done()

	// Wait for the receiver's digest: proof of delivery. A dead peer or a
	// lost link ends this Read with an error instead of blocking forever.
	s.SetReadDeadline(time.Now().Add(time.Minute))
	var theirs [sha256.Size]byte
	if _, err := io.ReadFull(s, theirs[:]); err != nil {
		return fmt.Errorf("waiting for the receiver's digest: %w", err)
	}
	if !bytes.Equal(theirs[:], sum.Sum(nil)) {
		return errors.New("the receiver's digest differs")
	}
	fmt.Fprintf(report, "receiver confirmed sha256 %x\n", theirs[:8])
	return nil // the deferred Close sends the close signal
}

// receiveOne accepts one session from l and writes what it carries to out.
func receiveOne(l *kcp.Listener, out string, report io.Writer) error {
	s, err := l.AcceptKCP()
	if err != nil {
		return err
	}
	defer s.Close()
	tune(s)
	s.SetReadDeadline(time.Now().Add(time.Minute))

	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return err
	}
	size := int64(binary.BigEndian.Uint64(hdr[:]))
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	p := newProgress("received", size, report)
	s.SetReadDeadline(time.Time{}) // the transfer may take long; a dead peer still ends Read
	if _, err := io.CopyN(io.MultiWriter(f, sum, p), s, size); err != nil {
		return err
	}
	p.done()
	if err := f.Sync(); err != nil {
		return err
	}
	if _, err := s.Write(sum.Sum(nil)); err != nil {
		return err
	}
	// The sender closes once it has the digest; its close signal makes
	// Read return io.EOF after every byte it sent.
	s.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		return fmt.Errorf("after the transfer: %v, want EOF", err)
	}
	return nil
}

// progress is an io.Writer that counts bytes and prints a line at most
// every half second.
type progress struct {
	verb        string
	total, n    int64
	start, last time.Time
	w           io.Writer
}

func newProgress(verb string, total int64, w io.Writer) *progress {
	now := time.Now()
	return &progress{verb: verb, total: total, start: now, last: now, w: w}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 500*time.Millisecond {
		p.last = now
		p.line()
	}
	return len(b), nil
}

func (p *progress) done() { p.line() }

func (p *progress) line() {
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.n) / float64(p.total)
	}
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "%s %d of %d bytes (%.0f%%), %.2f MB/s\n", p.verb, p.n, p.total, pct, float64(p.n)/secs/1e6)
}

// lockedWriter serialises writes to w from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
