package kcp

import "testing"

func TestBufferPool(t *testing.T) {
	trackBuffers(true)
	t.Cleanup(func() { trackBuffers(false) })

	p := getBuffer()
	if len(*p) != mtuLimit {
		t.Fatalf("getBuffer length %d, want %d", len(*p), mtuLimit)
	}
	q := getBuffer()
	if &(*p)[0] == &(*q)[0] {
		t.Fatal("two outstanding buffers share memory")
	}
	if n := buffersOutstanding(); n != 2 {
		t.Fatalf("outstanding %d after two gets, want 2", n)
	}
	*p = (*p)[:10] // owners may reslice; putBuffer restores the length
	putBuffer(p)
	putBuffer(q)
	putBuffer(nil)
	if n := buffersOutstanding(); n != 0 {
		t.Fatalf("outstanding %d after returning both, want 0", n)
	}

	// A buffer too small to hold a datagram is never pooled.
	small := make([]byte, 100)
	putBuffer(&small)
	headless := getBuffer()
	*headless = (*headless)[20:] // capacity now below mtuLimit
	putBuffer(headless)
	got := make([]*[]byte, 64)
	for i := range got {
		got[i] = getBuffer()
		if len(*got[i]) != mtuLimit {
			t.Fatalf("getBuffer returned %d bytes, want %d", len(*got[i]), mtuLimit)
		}
	}
	for _, b := range got {
		putBuffer(b)
	}
}
