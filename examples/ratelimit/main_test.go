package main

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// TestRateLimited: a capped transfer completes, the session's counters add
// up (every byte written counted once, more wire bytes than payload), and
// the report ends with a CSV header and row of the same width.
func TestRateLimited(t *testing.T) {
	const size = 300_000
	var report bytes.Buffer
	st, err := run(2_000_000, size, &report)
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesSent != size {
		t.Errorf("BytesSent %d, want %d", st.BytesSent, size)
	}
	if st.OutBytes <= size || st.OutPkts < size/1400 {
		t.Errorf("OutBytes %d, OutPkts %d for %d bytes of payload", st.OutBytes, st.OutPkts, size)
	}
	text := report.String()
	i := strings.Index(text, "Unix,")
	if i < 0 {
		t.Fatalf("no CSV in the report:\n%s", text)
	}
	rows, err := csv.NewReader(strings.NewReader(text[i:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(rows[0]) != len(rows[1]) || rows[0][1] != "BytesSent" {
		t.Errorf("CSV rows %q", rows)
	}
}
