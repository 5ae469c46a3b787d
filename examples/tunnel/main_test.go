package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTunnel: eight TCP connections cross the tunnel at once; each gets its
// own bytes back and then EOF, which needs the half-close to cross both
// ways.
func TestTunnel(t *testing.T) {
	block, err := newBlock("test")
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := selfCheck(block, 8, 200_000, &report); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report.String(), "8 TCP connections through the tunnel echoed 200000 bytes each") {
		t.Errorf("report: %s", report.String())
	}
}
