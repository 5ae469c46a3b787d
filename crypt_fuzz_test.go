package kcp

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary datagrams to every cipher's open, and also seals the
// fuzz input as a payload and opens it again. Properties: open never panics,
// rejects what it cannot verify with errCorrupt (counted), returns a payload
// inside the buffer it was given, and takes or leaks no pool buffer; a sealed
// payload always opens to the same bytes; a tampered AEAD datagram never opens.
func FuzzOpen(f *testing.F) {
	ciphers := cipherKinds(f)
	crypters := make([]*packetCrypter, len(ciphers))
	for i, tc := range ciphers {
		crypters[i] = newPacketCrypter(tc.block)
	}
	// Seeds: short and empty datagrams, real sealed datagrams of every cipher
	// (the CFB ones from kcp-go's own known answers), garbage.
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0}, uint16(1))
	f.Add(katInput(19), uint16(5))
	f.Add(katInput(20), uint16(19))
	f.Add(katInput(27), uint16(27))
	f.Add(katInput(mtuLimit), uint16(700))
	for _, v := range cipherKATs {
		f.Add(mustHex(f, v.pkt), uint16(len(v.pkt)))
	}
	for _, c := range crypters {
		f.Add(sealCopy(c, katInput(40)), uint16(30))
	}

	trackBuffers(true)
	f.Cleanup(func() { trackBuffers(false) })
	f.Fuzz(func(t *testing.T, data []byte, where uint16) {
		corrupt := 0
		for i, c := range crypters {
			name := ciphers[i].name
			before := buffersOutstanding()

			// 1. Arbitrary bytes as a received datagram.
			p := getBuffer()
			n := copy(*p, data)
			got, err := c.open((*p)[:n])
			switch {
			case err != nil:
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("%s: open error %v is not errCorrupt", name, err)
				}
				corrupt++
			case n < c.overhead():
				t.Fatalf("%s: open accepted %d bytes, shorter than the %d-byte overhead", name, n, c.overhead())
			case len(got) > 0 && (&got[0] != &(*p)[c.headerSize()] || len(got) != n-c.overhead()):
				t.Fatalf("%s: payload is not pkt[header:len-tag]", name)
			}
			putBuffer(p)

			// 2. The same bytes as a payload: seal, open, compare.
			payload := data[:min(len(data), mtuLimit-c.overhead())]
			p = getBuffer()
			copy((*p)[c.headerSize():], payload)
			d := c.seal((*p)[:c.headerSize()+len(payload)])
			if len(d) != len(payload)+c.overhead() {
				t.Fatalf("%s: sealed length %d, want %d", name, len(d), len(payload)+c.overhead())
			}
			if _, isAEAD := ciphers[i].block.(aeadPacketCipher); isAEAD {
				// 3. Any flipped bit must fail authentication.
				t2 := getBuffer()
				tampered := (*t2)[:copy(*t2, d)]
				tampered[int(where)%len(tampered)] ^= 1 << (where >> 13)
				if _, err := c.open(tampered); !errors.Is(err, errCorrupt) {
					t.Fatalf("%s: tampered datagram opened (err %v)", name, err)
				}
				putBuffer(t2)
			}
			got, err = c.open(d)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("%s: round trip of %d bytes failed: %v", name, len(payload), err)
			}
			putBuffer(p)

			if after := buffersOutstanding(); after != before {
				t.Fatalf("%s: %d pool buffers leaked", name, after-before)
			}
		}
		// Anything shorter than the smallest non-zero overhead (12, GCM) is
		// rejected by every cipher but the raw one.
		if len(data) < 12 && corrupt != len(crypters)-1 {
			t.Fatalf("%d-byte datagram: %d of %d ciphers counted it corrupt", len(data), corrupt, len(crypters)-1)
		}
	})
}
