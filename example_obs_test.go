package kcp_test

import (
	"expvar"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	kcp "github.com/kcpx/kcp"
)

// Polling a session's statistics while it transfers.
func ExampleUDPSession_Stats() {
	s, err := kcp.DialWithOptions("127.0.0.1:4000", nil, 10, 3)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	go func() {
		for range time.Tick(time.Second) {
			st := s.Stats()
			fmt.Printf("rtt %v cwnd %d in flight %d B, retransmitted %d (%.2f%%)\n",
				st.SmoothedRTT, st.Cwnd, st.BytesInFlight, st.SegmentsRetransmitted, 100*st.LossRate())
		}
	}()
	s.Write(make([]byte, 1<<20))
}

// Tracing one session to a qlog file that qvis opens. Setting the
// KCPX_QLOGDIR environment variable does the same for every session.
func ExampleQlogTracer() {
	s, err := kcp.DialWithOptions("127.0.0.1:4000", nil, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	q, err := kcp.OpenQlogFile(os.TempDir(), "client", s.GetConv())
	if err != nil {
		log.Fatal(err)
	}
	s.SetTracer(q) // the file is flushed and closed when the session is
	s.Write([]byte("traced"))
	s.Close()
}

// Publishing the process-wide counters and a listener's sessions on
// /debug/vars.
func ExamplePublishSnmp() {
	l, err := kcp.ListenWithOptions(":4000", nil, 10, 3)
	if err != nil {
		log.Fatal(err)
	}
	if err := kcp.PublishSnmp("kcp"); err != nil {
		log.Fatal(err)
	}
	expvar.Publish("kcp_listener", kcp.ListenerVar(l))
	log.Fatal(http.ListenAndServe("127.0.0.1:6060", nil)) // expvar registers /debug/vars
}
