package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStreams: 16 streams over one session each get their own bytes back.
func TestStreams(t *testing.T) {
	var report bytes.Buffer
	if err := run(16, 64<<10, &report); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report.String(), "16 streams echoed 65536 bytes each over one session") {
		t.Errorf("report: %s", report.String())
	}
}
