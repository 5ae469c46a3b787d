package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTransfer copies a 2 MiB file over loopback with both ends in one
// process: the copy is byte-exact, both ends report completion and the
// receiver saw the sender's close as io.EOF (run returns its error if not).
func TestTransfer(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	data := make([]byte, 2<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := run("both", "127.0.0.1:0", in, out, &report); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("copy differs: %d bytes, want %d", len(got), len(data))
	}
	for _, want := range []string{"sent 2097275 of 2097275 bytes (100%)", "received 2097275 of 2097275 bytes (100%)", "receiver confirmed"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
}

func TestTransferMissingFile(t *testing.T) {
	var report bytes.Buffer
	if err := run("send", "127.0.0.1:9", filepath.Join(t.TempDir(), "none"), "", &report); err == nil {
		t.Fatal("sending a missing file: no error")
	}
}

// TestTransferBothMissingFile: in one process, a sender that fails does not
// leave the receiver waiting.
func TestTransferBothMissingFile(t *testing.T) {
	dir := t.TempDir()
	var report bytes.Buffer
	if err := run("both", "127.0.0.1:0", filepath.Join(dir, "none"), filepath.Join(dir, "out"), &report); err == nil {
		t.Fatal("sending a missing file: no error")
	}
}
