package kcp

import (
	"bytes"
	"testing"
	"time"
)

// A Read into a buffer shorter than the message gets the message piece by
// piece, copied straight from the receive queue, and never runs into the
// next message: a longer buffer after it still gets exactly the message
// that follows.
func TestReadShortBufferKeepsMessages(t *testing.T) {
	a, b := udpPair(t, "udp", "127.0.0.1:0", func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	first := make([]byte, 10000)
	for i := range first {
		first[i] = byte(i*31 + i>>8)
	}
	second := bytes.Repeat([]byte{0xa5}, 300)
	for _, m := range [][]byte{first, second} {
		if _, err := a.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	b.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got []byte
	buf := make([]byte, 777)
	for len(got) < len(first) {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		if n == 0 || n > len(buf) {
			t.Fatalf("Read = %d", n)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, first) {
		t.Fatalf("first message: %d bytes, differ", len(got))
	}
	big := make([]byte, 4096)
	n, err := b.Read(big)
	if err != nil || !bytes.Equal(big[:n], second) {
		t.Fatalf("second message: %d bytes, %v", n, err)
	}
	b.mu.Lock()
	part, off := b.rpart, b.kcp.rcvOff
	b.mu.Unlock()
	if part || off != 0 {
		t.Fatalf("after whole messages: rpart %v, rcvOff %d", part, off)
	}
}
