package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestOwnSocket: the echoes cross sockets the example opened, the wrapper
// saw the datagrams, and the sockets were still open (not closed by kcp)
// when the example closed them.
func TestOwnSocket(t *testing.T) {
	var report bytes.Buffer
	r, err := run(5, &report)
	if err != nil {
		t.Fatal(err)
	}
	if r.out < 5 || r.in < 5 {
		t.Errorf("the client socket carried %d datagrams out, %d in; want at least 5 each", r.out, r.in)
	}
	if !strings.Contains(report.String(), "closed both sockets ourselves") {
		t.Errorf("report:\n%s", report.String())
	}
}
