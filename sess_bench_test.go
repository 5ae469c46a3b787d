package kcp

import (
	"cmp"
	"crypto/aes"
	"io"
	"slices"
	"testing"
	"time"
)

// benchTune is kcp-go's benchmark setting: stream mode, windows 1024,
// nodelay 1,10,2,1.
func benchTune(s *UDPSession) {
	s.SetStreamMode(true)
	s.SetWindowSize(1024, 1024)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetReadBuffer(4 << 20)
	s.SetWriteBuffer(4 << 20)
}

// benchDepth is how many writes of nbytes a benchmark keeps in flight ahead
// of its loop (about 256 KiB, at least one), so it measures throughput, not one
// round trip per iteration.
func benchDepth(nbytes int) int { return max(1, (256<<10)/nbytes) }

// BenchmarkEchoSpeed* write nbytes per iteration and read them back from an
// echo server: Salsa20, FEC 10/3 on the dialer and 10/1 on the listener,
// as kcp-go's benchmarks do. Bytes count one direction.
func BenchmarkEchoSpeed4K(b *testing.B)   { benchEcho(b, 4096) }
func BenchmarkEchoSpeed64K(b *testing.B)  { benchEcho(b, 65536) }
func BenchmarkEchoSpeed512K(b *testing.B) { benchEcho(b, 524288) }
func BenchmarkEchoSpeed1M(b *testing.B)   { benchEcho(b, 1048576) }

func benchEcho(b *testing.B, nbytes int) {
	bs, _ := NewSalsa20BlockCrypt(testKey)
	l, err := ListenWithOptions("127.0.0.1:0", bs, 10, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.SetReadBuffer(4 << 20)
	l.SetWriteBuffer(4 << 20)
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			benchTune(s)
			go echoServer(s)
		}
	}()
	bc, _ := NewSalsa20BlockCrypt(testKey)
	cli, err := DialWithOptions(l.Addr().String(), bc, 10, 3)
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	benchTune(cli)

	tokens := benchWriter(cli, nbytes)
	rbuf := make([]byte, nbytes)
	b.SetBytes(int64(nbytes))
	b.ReportAllocs()
	for b.Loop() {
		tokens <- struct{}{}
		if _, err := io.ReadFull(cli, rbuf); err != nil {
			b.Fatal(err)
		}
	}
	close(tokens)
	for range benchDepth(nbytes) {
		if _, err := io.ReadFull(cli, rbuf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSinkSpeed* write nbytes per iteration to a server that reads and
// discards, with no cipher and no FEC, as kcp-go's benchmarks do; unlike
// them, an iteration ends when the server has read its bytes, not when
// Write has queued them.
func BenchmarkSinkSpeed4K(b *testing.B)   { benchSink(b, 4096) }
func BenchmarkSinkSpeed64K(b *testing.B)  { benchSink(b, 65536) }
func BenchmarkSinkSpeed256K(b *testing.B) { benchSink(b, 262144) }
func BenchmarkSinkSpeed1M(b *testing.B)   { benchSink(b, 1048576) }

// BenchmarkSinkCC is BenchmarkSinkSpeed64K with each congestion controller
// on the sender, side by side in one run: on loopback BBR and CUBIC must
// not cost throughput against "none" (nc=1, kcp-go's benchmark setting).
func BenchmarkSinkCC(b *testing.B) {
	for _, cc := range []string{CongestionNone, CongestionBBR, CongestionCUBIC} {
		b.Run(cc, func(b *testing.B) { benchSinkCC(b, 65536, cc) })
	}
}

func benchSink(b *testing.B, nbytes int) { benchSinkCC(b, nbytes, "") }

// benchSinkCC is benchSink with congestion control cc on the sender ("":
// left as benchTune sets it).
func benchSinkCC(b *testing.B, nbytes int, cc string) { benchSinkWith(b, nbytes, nil, 0, 0, cc, false) }

// benchSinkWith is benchModeSink over ListenWithOptions/DialWithOptions
// with cipher bc and FEC ds/ps on both ends and the sender's congestion
// control cc ("": benchTune's).
func benchSinkWith(b *testing.B, nbytes int, bc BlockCrypt, ds, ps int, cc string, cpu bool) {
	listen := func() (*Listener, error) { return ListenWithOptions("127.0.0.1:0", bc, ds, ps) }
	dial := func(a string) (*UDPSession, error) { return DialWithOptions(a, bc, ds, ps) }
	var setup func(*UDPSession) error
	if cc != "" {
		setup = func(s *UDPSession) error { return s.SetCongestionControl(cc) }
	}
	benchModeSink(b, listen, dial, nbytes, setup, cpu)
}

// benchWriter starts a goroutine that writes one nbytes buffer to cli per
// token it receives, and primes it with benchDepth(nbytes) tokens, so that
// many writes are in flight; it stops when the channel is closed or a Write
// fails.
func benchWriter(cli *UDPSession, nbytes int) chan struct{} {
	depth := benchDepth(nbytes)
	tokens := make(chan struct{}, depth+1)
	go func() {
		buf := make([]byte, nbytes)
		for range tokens {
			if _, err := cli.Write(buf); err != nil {
				return
			}
		}
	}()
	for range benchDepth(nbytes) {
		tokens <- struct{}{}
	}
	return tokens
}

// BenchmarkSinkAESFEC is the driver's "AES + FEC 10/3" sink row inside the
// package (so it can be profiled): AES-256-CFB and FEC 10/3 on both ends,
// 64 KiB writes, the server reads and discards. Side by side: crypto/aes
// under the generic CFB loops (the code before the AES-NI assembly), the
// assembly sealing one datagram at a time (the cipher wrapped so that it is
// no batchEncrypter), and the assembly sealing whole batches, on AES-NI
// alone and with VAES (the AES-NI rows run with VAES off); all with
// hash/crc32, then the last with the AVX-512 CRC (crc_amd64.s).
func BenchmarkSinkAESFEC(b *testing.B) {
	blk, _ := aes.NewCipher(testKey)
	asm, _ := NewAESBlockCrypt(testKey)
	crc := useCRCAVX512
	defer func() { useCRCAVX512 = crc }()
	aesni := aesWithoutVAES(asm)
	for _, tc := range []struct {
		name string
		bc   BlockCrypt
		crc  bool
	}{
		{"crypto-aes", newCFBCrypt(blk, wordAES), false},
		{"asm-serial", struct{ BlockCrypt }{cmp.Or(aesni, asm)}, false},
		{"asm-batch", aesni, false},
		{"vaes-batch", asm, false},
		{"vaes-batch-crc512", asm, true},
	} {
		if tc.bc == nil || (tc.crc && !crc) {
			continue // not on this CPU
		}
		useCRCAVX512 = tc.crc
		b.Run(tc.name, func(b *testing.B) { benchSinkCrypt(b, 65536, tc.bc, 10, 3) })
	}
}

// benchSinkCrypt is the sink with cipher bc and FEC ds/ps on both ends; it
// also reports the CPU both ends spent per GiB (the driver's row).
func benchSinkCrypt(b *testing.B, nbytes int, bc BlockCrypt, ds, ps int) {
	benchSinkWith(b, nbytes, bc, ds, ps, "", true)
}

// BenchmarkSinkAEAD is the driver's AEAD sink rows inside the package (so
// they can be profiled: -bench 'Sink.*GCM' picks the GCM one): 64 KiB
// writes, no FEC, the server reads and discards, AES-256-GCM
// (NewAESGCMCrypt) and ChaCha20-Poly1305 (NewAEADCrypt) side by side.
func BenchmarkSinkAEAD(b *testing.B) {
	for _, tc := range benchAEADs(b) {
		b.Run(tc.name, func(b *testing.B) { benchSinkCrypt(b, 65536, tc.bc, 0, 0) })
	}
}

// BenchmarkRoundTrip64 is the driver's 64 B round trip inside the package:
// one client writes 64 bytes to a listener's session, which echoes them
// (plain, benchTune on both ends). It reports p50 and p99 in µs and, per
// round trip, the datagrams and write and read calls of each end, so a
// change to the path shows in syscalls as well as in time.
func BenchmarkRoundTrip64(b *testing.B) {
	l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		benchTune(s)
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	cli, err := DialWithOptions(l.Addr().String(), nil, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	benchTune(cli)
	msg, buf := make([]byte, 64), make([]byte, 64)
	rtt := func() float64 {
		start := time.Now()
		if _, err := cli.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil {
			b.Fatal(err)
		}
		return float64(time.Since(start).Nanoseconds()) / 1e3
	}
	for range 200 {
		rtt()
	}
	samples := make([]float64, 0, b.N)
	c0, s0 := cli.IOStats(), l.IOStats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		samples = append(samples, rtt())
	}
	b.StopTimer()
	c1, s1 := cli.IOStats(), l.IOStats()
	n := float64(b.N)
	slices.Sort(samples)
	b.ReportMetric(samples[len(samples)/2], "p50-µs")
	b.ReportMetric(samples[len(samples)*99/100], "p99-µs")
	b.ReportMetric(float64(c1.TxDatagrams-c0.TxDatagrams)/n, "cli-tx/op")
	b.ReportMetric(float64(s1.TxDatagrams-s0.TxDatagrams)/n, "srv-tx/op")
	b.ReportMetric(float64(c1.TxCalls+c1.RxCalls-c0.TxCalls-c0.RxCalls)/n, "cli-calls/op")
	b.ReportMetric(float64(s1.TxCalls+s1.RxCalls-s0.TxCalls-s0.RxCalls)/n, "srv-calls/op")
}
