//go:build !race

package kcp

import (
	"io"
	"testing"
)

// This file is left out under -race: the race detector allocates.

// TestSessionPathAllocs: a steady echo of 1 KiB messages, sealed and with
// FEC, allocates nothing per round trip (both ends, every goroutine).
func TestSessionPathAllocs(t *testing.T) {
	leakCheck(t)
	for _, c := range []struct {
		name   string
		block  func() BlockCrypt
		ds, ps int
	}{
		{"plain", func() BlockCrypt { return nil }, 0, 0},
		{"aes+fec10.3", func() BlockCrypt { b, _ := NewAESBlockCrypt(testKey); return b }, 10, 3},
		{"aes-gcm", func() BlockCrypt { b, _ := NewAESGCMCrypt(testKey); return b }, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := udpPair(t, "udp", "127.0.0.1:0", c.block, c.ds, c.ps)
			defer a.Close()
			defer b.Close()
			fast(a)
			fast(b)
			go echoServer(b)
			msg := randBytes(30, 1024)
			buf := make([]byte, len(msg))
			rt := func() {
				if _, err := a.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(a, buf); err != nil {
					t.Fatal(err)
				}
			}
			for range 200 { // warm the pools and queues
				rt()
			}
			if n := testing.AllocsPerRun(500, rt); n > 0 {
				t.Errorf("%.2f allocations per round trip", n)
			}
		})
	}
}
