package kcp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// refCFB returns crypto/cipher's CFB over crypto/aes under kcp-go's IV.
func refCFB(t testing.TB, key []byte, decrypt bool) cipher.Stream {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if decrypt {
		return cipher.NewCFBDecrypter(b, cfbIV[:])
	}
	return cipher.NewCFBEncrypter(b, cfbIV[:])
}

// TestAESSbox checks the computed S-box against FIPS-197 figure 7 entries
// and that it is a permutation.
func TestAESSbox(t *testing.T) {
	for in, want := range map[byte]byte{0x00: 0x63, 0x01: 0x7c, 0x53: 0xed, 0x10: 0xca, 0xff: 0x16, 0x9a: 0xb8, 0xc9: 0xdd} {
		if aesSbox[in] != want {
			t.Errorf("S(%#02x) = %#02x, want %#02x", in, aesSbox[in], want)
		}
	}
	var seen [256]bool
	for _, v := range aesSbox {
		if seen[v] {
			t.Fatalf("S-box repeats %#02x", v)
		}
		seen[v] = true
	}
}

// TestAESExpandKeyFIPS197 checks the last round key of the key expansion
// examples of FIPS-197 appendix A, and that other key lengths are refused.
func TestAESExpandKeyFIPS197(t *testing.T) {
	for _, tc := range []struct{ key, last string }{
		{"2b7e151628aed2a6abf7158809cf4f3c", "d014f9a8c9ee2589e13f0cc8b6630ca6"},
		{"8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "e98ba06f448c773c8ecc720401002202"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "fe4890d1e6188d0b046df344706c631e"},
	} {
		key, _ := hex.DecodeString(tc.key)
		var rk [16 * (aesMaxRounds + 1)]byte
		rounds := aesExpandKey(key, &rk)
		if rounds != len(key)/4+6 {
			t.Fatalf("%d-byte key: %d rounds", len(key), rounds)
		}
		if got := hex.EncodeToString(rk[16*rounds : 16*rounds+16]); got != tc.last {
			t.Errorf("%d-byte key: last round key %s, want %s", len(key), got, tc.last)
		}
		if got := hex.EncodeToString(rk[:len(key)]); got != tc.key {
			t.Errorf("%d-byte key: first words %s, want the key", len(key), got)
		}
	}
	var rk [16 * (aesMaxRounds + 1)]byte
	for _, n := range []int{0, 8, 15, 17, 31, 33} {
		if r := aesExpandKey(make([]byte, n), &rk); r != 0 {
			t.Errorf("%d-byte key accepted (%d rounds)", n, r)
		}
	}
}

// aesCFBUnderTest returns NewAESBlockCrypt's cipher, the crypto/aes
// fallback for the same key and, on a CPU with VAES, the assembly cipher
// kept to its AES-NI kernels, so all are held to crypto/cipher.
func aesCFBUnderTest(t testing.TB, key []byte) []BlockCrypt {
	t.Helper()
	bc, err := NewAESBlockCrypt(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := aes.NewCipher(key)
	out := []BlockCrypt{bc, newCFBCrypt(b, wordAES)}
	if alt := aesWithoutVAES(bc); alt != nil {
		out = append(out, alt) // the AES-NI kernels alone
	}
	return out
}

// TestAESCFBMatchesCryptoCipher: every length 0..1500, random AES-128/192/256
// keys, in place and into a separate buffer, both directions, byte-identical
// to crypto/cipher's CFB.
func TestAESCFBMatchesCryptoCipher(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 1))
	for _, klen := range []int{16, 24, 32} {
		for range 3 {
			key := make([]byte, klen)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			for ci, bc := range aesCFBUnderTest(t, key) {
				for n := 0; n <= mtuLimit; n++ {
					src := make([]byte, n)
					for i := range src {
						src[i] = byte(rng.Uint32())
					}
					want := make([]byte, n)
					refCFB(t, key, false).XORKeyStream(want, src)
					got := make([]byte, n)
					bc.Encrypt(got, src)
					if !bytes.Equal(got, want) {
						t.Fatalf("cipher %d, key %d, %d bytes: Encrypt differs at %d", ci, klen, n, firstDiff(got, want))
					}
					inplace := bytes.Clone(src)
					bc.Encrypt(inplace, inplace)
					if !bytes.Equal(inplace, want) {
						t.Fatalf("cipher %d, key %d, %d bytes: in-place Encrypt differs at %d", ci, klen, n, firstDiff(inplace, want))
					}
					dec := make([]byte, n)
					bc.Decrypt(dec, want)
					if !bytes.Equal(dec, src) {
						t.Fatalf("cipher %d, key %d, %d bytes: Decrypt differs at %d", ci, klen, n, firstDiff(dec, src))
					}
					bc.Decrypt(inplace, inplace)
					if !bytes.Equal(inplace, src) {
						t.Fatalf("cipher %d, key %d, %d bytes: in-place Decrypt differs at %d", ci, klen, n, firstDiff(inplace, src))
					}
				}
			}
		}
	}
}

// checkSealBatch seals pkts together through sealBatch and one by one
// through crypto/cipher, and fails unless every datagram is byte-identical
// (the random nonces are taken from the batch result before comparing).
func checkSealBatch(t testing.TB, key []byte, c *packetCrypter, lens []int, rng *rand.Rand) {
	t.Helper()
	pkts := make([]outPacket, len(lens))
	plain := make([][]byte, len(lens))
	for i, n := range lens {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		plain[i] = bytes.Clone(b)
		pkts[i].b = b
	}
	c.sealBatch(pkts)
	for i, n := range lens {
		got := pkts[i].b
		if n < c.headerSize() {
			if got != nil {
				t.Fatalf("datagram %d of %d bytes: sealed, want nil", i, n)
			}
			continue
		}
		// Decrypting with crypto/cipher gives back the nonce, CRC and payload.
		dec := make([]byte, n)
		refCFB(t, key, true).XORKeyStream(dec, got)
		if !bytes.Equal(dec[cryptHeader:], plain[i][cryptHeader:]) {
			t.Fatalf("batch of %d, datagram %d (%d bytes): payload differs at %d", len(lens), i, n, cryptHeader+firstDiff(dec[cryptHeader:], plain[i][cryptHeader:]))
		}
		if got, want := binary.LittleEndian.Uint32(dec[cfbNonceSize:]), crc32.ChecksumIEEE(dec[cryptHeader:]); got != want {
			t.Fatalf("batch of %d, datagram %d (%d bytes): CRC %#08x, want %#08x", len(lens), i, n, got, want)
		}
		want := bytes.Clone(dec)
		refCFB(t, key, false).XORKeyStream(want, dec)
		if !bytes.Equal(got, want) {
			t.Fatalf("batch of %d, datagram %d (%d bytes): differs from crypto/cipher at %d", len(lens), i, n, firstDiff(got, want))
		}
		if _, err := c.open(got); err != nil {
			t.Fatalf("batch of %d, datagram %d (%d bytes): open: %v", len(lens), i, n, err)
		}
	}
}

// TestAESCFBSealBatch: batches of 1..70 datagrams of random lengths
// 0..1500 (every lane count, lanes ending at different blocks and handed
// on), each datagram the bytes crypto/cipher gives for it alone; with VAES
// and with the AES-NI kernels alone.
func TestAESCFBSealBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2))
	for _, klen := range []int{16, 24, 32} {
		key := make([]byte, klen)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		bc, err := NewAESBlockCrypt(key)
		if err != nil {
			t.Fatal(err)
		}
		cs := []*packetCrypter{newPacketCrypter(bc)}
		if alt := aesWithoutVAES(bc); alt != nil {
			cs = append(cs, newPacketCrypter(alt)) // AES-NI: eight lanes at most
		}
		for size := 1; size <= 70; size++ {
			for _, c := range cs {
				lens := make([]int, size)
				for i := range lens {
					switch rng.IntN(4) {
					case 0:
						lens[i] = rng.IntN(64) // short: header-only, single and two blocks
					case 1:
						lens[i] = mtuLimit - rng.IntN(16)
					default:
						lens[i] = rng.IntN(mtuLimit + 1)
					}
				}
				checkSealBatch(t, key, c, lens, rng)
			}
		}
	}
}

// TestAESCFBBatchEncrypter: on AES-NI the AES cipher seals batches through
// its multi-chain path (so TestAESCFBSealBatch tests that path).
func TestAESCFBBatchEncrypter(t *testing.T) {
	bc, _ := NewAESBlockCrypt(testKey)
	_, isAsm := bc.(*aesCFB)
	if _, ok := bc.(batchEncrypter); ok != isAsm {
		t.Fatalf("batchEncrypter %v, assembly cipher %v", ok, isAsm)
	}
	if !isAsm {
		t.Skip("no AES-NI assembly on this platform: the crypto/aes fallback is in use")
	}
}

// FuzzAESCFB: any key size, data and split into datagrams; Encrypt,
// Decrypt and the batch path agree with crypto/cipher.
func FuzzAESCFB(f *testing.F) {
	f.Add(uint8(0), []byte("0123456789abcdef0123456789abcdef!"), []byte{17, 3, 40})
	f.Add(uint8(2), bytes.Repeat([]byte{7}, 1500), []byte{255, 255, 255, 255, 0, 1})
	f.Fuzz(func(t *testing.T, ksel uint8, data, cuts []byte) {
		key := katKey([]int{16, 24, 32}[int(ksel)%3])
		for _, bc := range aesCFBUnderTest(t, key) {
			want := make([]byte, len(data))
			refCFB(t, key, false).XORKeyStream(want, data)
			got := bytes.Clone(data)
			bc.Encrypt(got, got)
			if !bytes.Equal(got, want) {
				t.Fatalf("Encrypt differs at %d", firstDiff(got, want))
			}
			bc.Decrypt(got, got)
			if !bytes.Equal(got, data) {
				t.Fatalf("Decrypt differs at %d", firstDiff(got, data))
			}
		}
		// Cut data into datagrams (cut lengths scaled to reach 1500).
		var lens []int
		rest := len(data)
		for _, c := range cuts {
			n := min(rest, int(c)*6)
			lens = append(lens, n)
			rest -= n
		}
		if rest > 0 || len(lens) == 0 {
			lens = append(lens, rest)
		}
		bc, _ := NewAESBlockCrypt(key)
		c := newPacketCrypter(bc)
		checkSealBatch(t, key, c, lens, rand.New(rand.NewPCG(uint64(len(data)), uint64(len(cuts)))))
	})
}

// TestAESCFBAsmUpToDate: aescfb_amd64.s is what its generator writes now, so
// an edit of internal/asmgen/aescfb.go cannot ship without the assembly.
func TestAESCFBAsmUpToDate(t *testing.T) {
	gotool := "go"
	if root := runtime.GOROOT(); root != "" {
		gotool = filepath.Join(root, "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "aescfb_amd64.s")
	cmd := exec.Command(gotool, "run", "internal/asmgen/aescfb.go", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("aescfb_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatal("aescfb_amd64.s differs from the generator's output: run go generate")
	}
}

// BenchmarkAESCFB compares, in one run, crypto/aes under the generic CFB
// loops (the fallback, and this package's AES before the assembly) with the
// assembly on AES-NI alone and with VAES: Encrypt and Decrypt of one
// 1500-byte datagram, and a sender's batch of 64 sealed one by one
// (crypto-aes) or together. AES-256 (kcptun's
// key size); bytes count one direction.
func BenchmarkAESCFB(b *testing.B) {
	blk, _ := aes.NewCipher(testKey)
	asm, _ := NewAESBlockCrypt(testKey)
	for _, tc := range []struct {
		name string
		bc   BlockCrypt
	}{{"crypto-aes", newCFBCrypt(blk, wordAES)}, {"aesni", aesWithoutVAES(asm)}, {"vaes", asm}} {
		if tc.bc == nil {
			continue // no VAES on this CPU: "vaes" is the AES-NI code
		}
		buf := katInput(mtuLimit)
		b.Run("Encrypt/"+tc.name, func(b *testing.B) {
			b.SetBytes(mtuLimit)
			b.ReportAllocs()
			for b.Loop() {
				tc.bc.Encrypt(buf, buf)
			}
		})
		b.Run("Decrypt/"+tc.name, func(b *testing.B) {
			b.SetBytes(mtuLimit)
			b.ReportAllocs()
			for b.Loop() {
				tc.bc.Decrypt(buf, buf)
			}
		})
		b.Run("SealBatch64/"+tc.name, func(b *testing.B) {
			c := newPacketCrypter(tc.bc)
			pkts := make([]outPacket, 64)
			bufs := make([][]byte, len(pkts))
			for i := range bufs {
				bufs[i] = katInput(mtuLimit)
			}
			b.SetBytes(int64(len(pkts)) * mtuLimit)
			b.ReportAllocs()
			for b.Loop() {
				for i := range pkts {
					pkts[i].b = bufs[i]
				}
				c.sealBatch(pkts)
			}
		})
	}
}
