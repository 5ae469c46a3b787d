package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kcp "github.com/kcpx/kcp"
)

// TestDeriveKey: kcptun's key derivation, against a value computed
// independently (Python hashlib.pbkdf2_hmac).
func TestDeriveKey(t *testing.T) {
	got := hex.EncodeToString(deriveKey(kcptunDefaultKey))
	if want := "25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444"; got != want {
		t.Errorf("key %s, want %s", got, want)
	}
	for name := range ciphers {
		c := linkConfig{Crypt: name, key: "k"}
		if _, err := c.block(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// startPerfServer parses args as the server's flags and serves one client
// on a loopback listener; it returns the address and a channel with the
// server's result.
func startPerfServer(t *testing.T, args []string) (string, <-chan error, *bytes.Buffer) {
	t.Helper()
	var c perfConfig
	if err := c.flags(io.Discard).Parse(args); err != nil {
		t.Fatal(err)
	}
	block, err := c.block()
	if err != nil {
		t.Fatal(err)
	}
	l, err := kcp.ListenWithOptions("127.0.0.1:0", block, c.DataShards, c.Parity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	out := new(bytes.Buffer)
	done := make(chan error, 1)
	go func() { done <- perfServe(l, &c, out, true) }()
	return l.Addr().String(), done, out
}

// TestPerfLoopback: a perf client and server talk over loopback, with a
// cipher and FEC; the client prints live lines and the table, writes a
// valid SVG, and the -json result is consistent.
func TestPerfLoopback(t *testing.T) {
	link := []string{"-crypt", "aes-128", "-key", "perf test", "-datashard", "4", "-parityshard", "2", "-mode", "fast2", "-i", "200ms"}
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"upload", nil},
		{"reverse-message", []string{"-R", "-stream=false", "-len", "5000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, srvDone, srvOut := startPerfServer(t, append(append([]string{}, link...), c.extra...))
			dir := t.TempDir()
			svg := filepath.Join(dir, "perf.svg")
			var stdout, stderr bytes.Buffer
			args := append([]string{"perf", "-c", addr, "-t", "1s", "-plot", svg, "-qlog", dir}, link...)
			args = append(args, c.extra...)
			if rc := run(args, nil, &stdout, &stderr); rc != 0 {
				t.Fatalf("client exit %d: %s", rc, stderr.String())
			}
			if err := <-srvDone; err != nil {
				t.Fatal(err)
			}
			out := stdout.String()
			for _, want := range []string{"MB/s  rtt", "cwnd", "retrans", "loss", "sender (", "receiver (", "retransmitted", "RTT smoothed"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if lines := strings.Count(out, "MB/s  rtt"); lines < 4 {
				t.Errorf("%d live lines in a 1 s run at 200 ms:\n%s", lines, out)
			}
			if !strings.Contains(srvOut.String(), "done:") {
				t.Errorf("server output:\n%s", srvOut.String())
			}
			checkSVG(t, svg)
			if files, _ := filepath.Glob(filepath.Join(dir, "*_client_*.sqlog")); len(files) != 1 {
				t.Errorf("qlog files %v", files)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		addr, srvDone, _ := startPerfServer(t, link)
		var stdout, stderr bytes.Buffer
		args := append([]string{"perf", "-c", addr, "-t", "600ms", "-json", "-cc", "bbr"}, link...)
		if rc := run(args, nil, &stdout, &stderr); rc != 0 {
			t.Fatalf("client exit %d: %s", rc, stderr.String())
		}
		if err := <-srvDone; err != nil {
			t.Fatal(err)
		}
		var res perfResult
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("%v:\n%s", err, stdout.String())
		}
		if res.Bytes == 0 || res.Sender.Bytes != res.Receiver.Bytes || res.Sender.Role != "client" ||
			res.Receiver.Role != "server" || len(res.Intervals) == 0 || res.MBps <= 0 {
			t.Errorf("result %+v", res)
		}
		if res.Receiver.Stats.BytesReceived < res.Bytes || res.Sender.Stats.BytesDelivered < res.Bytes {
			t.Errorf("receiver read %d, sender delivered %d, frames %d", res.Receiver.Stats.BytesReceived,
				res.Sender.Stats.BytesDelivered, res.Bytes)
		}
		if res.Config == nil || res.Config.CC != "bbr" || res.Sender.Stats.PacingRate == 0 {
			t.Errorf("-cc bbr: config %+v, sender pacing rate %d", res.Config, res.Sender.Stats.PacingRate)
		}
		if !strings.Contains(stderr.String(), "MB/s  rtt") {
			t.Errorf("live lines not on stderr with -json: %s", stderr.String())
		}
	})
}

// checkSVG parses the plot with encoding/xml: an svg root and one
// polyline per panel, each with points.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Groups  []struct {
			ID       string `xml:"id,attr"`
			Polyline struct {
				Points string `xml:"points,attr"`
			} `xml:"polyline"`
		} `xml:"g"`
	}
	if err := xml.NewDecoder(f).Decode(&doc); err != nil {
		t.Fatalf("svg: %v", err)
	}
	if len(doc.Groups) != 3 {
		t.Fatalf("svg has %d panels", len(doc.Groups))
	}
	for _, g := range doc.Groups {
		if n := len(strings.Fields(g.Polyline.Points)); n < 3 {
			t.Errorf("panel %s has %d points", g.ID, n)
		}
	}
}

// TestCat: bytes from one cat's stdin come out of the other's stdout, and
// both ends finish.
func TestCat(t *testing.T) {
	data := make([]byte, 300<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	link := []string{"-crypt", "salsa20", "-key", "cat"}
	var c linkConfig
	fs := flagSetFor(&c)
	if err := fs.Parse(link); err != nil {
		t.Fatal(err)
	}
	block, _ := c.block()
	l, err := kcp.ListenWithOptions("127.0.0.1:0", block, c.DataShards, c.Parity)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := new(bytes.Buffer)
	srvDone := make(chan error, 1)
	idle, idleW := io.Pipe() // the receiving cat's stdin never ends
	defer idleW.Close()
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			srvDone <- err
			return
		}
		srvDone <- cat(s, &c, true, idle, got)
	}()
	var stderr bytes.Buffer
	if rc := run(append(append([]string{"cat"}, link...), l.Addr().String()), bytes.NewReader(data), io.Discard, &stderr); rc != 0 {
		t.Fatalf("cat exit %d: %s", rc, stderr.String())
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("received %d bytes, sent %d; equal prefix %v", got.Len(), len(data), bytes.HasPrefix(data, got.Bytes()))
	}
}

// TestSelfTest: kcpx with no arguments runs over loopback and prints the
// table.
func TestSelfTest(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if rc := run(nil, nil, &stdout, &stderr); rc != 0 {
		t.Fatalf("exit %d: %s", rc, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "self-test") || !strings.Contains(out, "RTT smoothed") {
		t.Errorf("output:\n%s", out)
	}
}

// TestBadFlags: unknown ciphers and modes are refused with status 2.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"perf", "-c", "127.0.0.1:1", "-crypt", "rot13"},
		{"perf", "-c", "127.0.0.1:1", "-mode", "turbo"},
		{"perf", "-c", "127.0.0.1:1", "-cc", "vegas"},
		{"perf"},
		{"cat"},
		{"frobnicate"},
	} {
		if rc := run(args, nil, io.Discard, io.Discard); rc != 2 {
			t.Errorf("%v: exit %d, want 2", args, rc)
		}
	}
}
