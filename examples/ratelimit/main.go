// Command ratelimit sends a fixed amount of data through a session capped
// with SetRateLimit and prints the counters kcp keeps: the session's own
// (GetSnmp) and the process-wide DefaultSnmp as CSV, the format kcptun logs.
//
//	go run ./examples/ratelimit                       # 4 MB at 2 MB/s
//	go run ./examples/ratelimit -rate 500000 -size 1000000
//
// The rate is in bytes per second. A capped session keeps its segments in
// the send window until the rate lets them go, so Write blocks once the
// window is full instead of flooding the link, and the cap causes no
// retransmissions.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	kcp "github.com/kcpx/kcp"
)

func main() {
	rate := flag.Uint("rate", 2_000_000, "send rate cap, bytes per second (0: none)")
	size := flag.Int("size", 4_000_000, "bytes to send")
	flag.Parse()
	log.SetFlags(0)
	if _, err := run(uint32(*rate), *size, os.Stdout); err != nil {
		log.Fatal("ratelimit: ", err)
	}
}

// run sends size bytes capped at rate bytes per second to a receiver in the
// same process, prints what it measured, and returns the sender's counters.
func run(rate uint32, size int, report io.Writer) (*kcp.Snmp, error) {
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	recvd := make(chan error, 1)
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			recvd <- err
			return
		}
		defer s.Close()
		s.SetStreamMode(true)
		s.SetNoDelay(1, 10, 2, 1) // both ends alike: a slow ACK looks like loss
		s.SetWindowSize(256, 256)
		s.SetReadDeadline(time.Now().Add(time.Minute))
		_, err = io.CopyN(io.Discard, s, int64(size))
		if err == nil {
			_, err = s.Write([]byte{1}) // done: tell the sender
		}
		recvd <- err
	}()

	s, err := kcp.DialWithOptions(l.Addr().String(), nil, 0, 0)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.SetStreamMode(true)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(256, 256)
	s.SetRateLimit(rate)

	start := time.Now()
	chunk := make([]byte, 64<<10)
	for left := size; left > 0; left -= len(chunk) {
		if _, err := s.Write(chunk[:min(len(chunk), left)]); err != nil {
			return nil, err
		}
	}
	s.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		return nil, fmt.Errorf("waiting for the receiver: %w", err)
	}
	elapsed := time.Since(start)
	if err := <-recvd; err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}

	// Counters are published once per update tick; Close publishes the
	// last ones, so this snapshot of the session's counters is complete.
	s.Close()
	st := s.GetSnmp()
	fmt.Fprintf(report, "sent %d bytes in %v: %.2f MB/s (cap %.2f MB/s)\n",
		size, elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6, float64(rate)/1e6)
	fmt.Fprintf(report, "session: BytesSent %d, OutPkts %d, OutBytes %d (on the wire), RetransSegs %d, LostSegs %d\n",
		st.BytesSent, st.OutPkts, st.OutBytes, st.RetransSegs, st.LostSegs)

	// DefaultSnmp sums every session of the process; kcptun appends one
	// such row to a CSV file every minute.
	w := csv.NewWriter(report)
	w.Write(append([]string{"Unix"}, kcp.DefaultSnmp.Header()...))
	w.Write(append([]string{fmt.Sprint(time.Now().Unix())}, kcp.DefaultSnmp.ToSlice()...))
	w.Flush()
	return st, errors.Join(w.Error())
}
