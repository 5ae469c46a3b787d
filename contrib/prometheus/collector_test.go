package kcpprom

import (
	"io"
	"strings"
	"testing"
	"time"

	kcp "github.com/kcpx/kcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"RingBufferSndQueue": "ring_buffer_snd_queue",
		"FECErrs":            "fec_errs",
		"KCPInErrors":        "kcp_in_errors",
		"InPkts":             "in_pkts",
		"OOBPackets":         "oob_packets",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestCollectors: after an echo over loopback, the registry holds the Snmp
// columns and the session metrics with the bytes that moved, and the
// exposition passes the linter.
func TestCollectors(t *testing.T) {
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, err := kcp.DialWithOptions(l.Addr().String(), nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	msg := []byte(strings.Repeat("x", 3000))
	if _, err := cli.Write(msg); err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Now().Add(10 * time.Second))
	srv, err := l.AcceptKCP()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	buf := make([]byte, len(msg))
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(srv, buf); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewSnmpCollector("kcp", kcp.DefaultSnmp))
	reg.MustRegister(NewSessionCollector("kcp", l.Sessions, false))
	reg.MustRegister(NewListenerCollector("kcp", l))
	per := prometheus.NewPedanticRegistry()
	per.MustRegister(NewSessionCollector("kcp", func() []*kcp.UDPSession { return []*kcp.UDPSession{cli} }, true))

	if n := testutil.CollectAndCount(NewSnmpCollector("kcp", kcp.DefaultSnmp)); n != 30 {
		t.Errorf("%d Snmp metrics, want 30", n)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	val := func(name string) float64 {
		f := byName[name]
		if f == nil || len(f.Metric) != 1 {
			t.Fatalf("metric %s missing", name)
		}
		m := f.Metric[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	if v := val("kcp_sessions"); v != 1 {
		t.Errorf("kcp_sessions %v", v)
	}
	if v := val("kcp_session_bytes_received_total"); v != float64(len(msg)) {
		t.Errorf("server bytes received %v, want %d", v, len(msg))
	}
	if v := val("kcp_listener_sessions"); v != 1 {
		t.Errorf("kcp_listener_sessions %v", v)
	}
	if v := val("kcp_listener_rx_datagrams_total"); v == 0 || v > float64(l.IOStats().RxDatagrams) {
		t.Errorf("kcp_listener_rx_datagrams_total %v", v)
	}
	if v := val("kcp_snmp_in_pkts_total"); v == 0 {
		t.Error("kcp_snmp_in_pkts_total is 0")
	}
	if v := val("kcp_snmp_curr_estab"); v < 2 {
		t.Errorf("kcp_snmp_curr_estab %v", v)
	}

	pf, err := per.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range pf {
		if f.GetName() != "kcp_session_bytes_sent_total" {
			continue
		}
		found = true
		m := f.Metric[0]
		labels := map[string]string{}
		for _, lp := range m.Label {
			labels[lp.GetName()] = lp.GetValue()
		}
		if m.Counter.GetValue() != float64(len(msg)) || labels["remote"] != l.Addr().String() {
			t.Errorf("per-session bytes sent %v labels %v", m.Counter.GetValue(), labels)
		}
	}
	if !found {
		t.Error("no per-session kcp_session_bytes_sent_total")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
