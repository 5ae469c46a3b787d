package main

import "testing"

// TestEchoDefaults runs the example as `go run ./examples/echo` does (both
// ends in one process, AES, FEC 10/3), with fewer messages.
func TestEchoDefaults(t *testing.T) {
	*count = 50
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
