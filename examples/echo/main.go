// Command echo runs a KCP echo server and a client against it, in one
// process by default, and reports what it measured.
//
//	go run ./examples/echo                        # AES, FEC 10/3, mode fast
//	go run ./examples/echo -crypt aes-gcm -ds 0 -ps 0 -mode fast3 -stream
//	go run ./examples/echo -role server -addr 127.0.0.1:29900
//	go run ./examples/echo -role client -addr 127.0.0.1:29900
package main

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	kcp "github.com/kcpx/kcp"
)

var (
	addr   = flag.String("addr", "127.0.0.1:0", "listen address (server, both) or server address (client)")
	role   = flag.String("role", "both", "both, server or client")
	crypt  = flag.String("crypt", "aes", "aes, aes-128, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, none, aes-gcm")
	key    = flag.String("key", "it's a secret", "pre-shared secret; the cipher key is PBKDF2-SHA1 of it")
	ds     = flag.Int("ds", 10, "FEC data shards (0: FEC off)")
	ps     = flag.Int("ps", 3, "FEC parity shards (0: FEC off)")
	mode   = flag.String("mode", "fast", "normal, fast, fast2 or fast3 (kcptun's presets)")
	stream = flag.Bool("stream", false, "stream mode instead of message mode")
	size   = flag.Int("size", 4096, "bytes per message")
	count  = flag.Int("count", 2000, "messages the client sends")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal("echo: ", err)
	}
}

func run() error {
	block, err := newBlock(*crypt, *key)
	if err != nil {
		return err
	}
	switch *role {
	case "server":
		l, err := listen(block)
		if err != nil {
			return err
		}
		fmt.Println("listening on", l.Addr())
		return serve(l)
	case "client":
		return client(*addr, block)
	case "both":
		l, err := listen(block)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- serve(l) }()
		err = client(l.Addr().String(), block)
		l.Close()
		if serr := <-done; err == nil && serr != nil && !errors.Is(serr, os.ErrClosed) && !errors.Is(serr, io.ErrClosedPipe) {
			err = serr
		}
		return err
	}
	return fmt.Errorf("unknown role %q", *role)
}

// newBlock builds the cipher named by name from a passphrase.
func newBlock(name, pass string) (kcp.BlockCrypt, error) {
	k, err := pbkdf2.Key(sha1.New, pass, []byte("kcpx echo example"), 4096, 32)
	if err != nil {
		return nil, err
	}
	switch name {
	case "aes":
		return kcp.NewAESBlockCrypt(k)
	case "aes-128":
		return kcp.NewAESBlockCrypt(k[:16])
	case "aes-192":
		return kcp.NewAESBlockCrypt(k[:24])
	case "salsa20":
		return kcp.NewSalsa20BlockCrypt(k)
	case "blowfish":
		return kcp.NewBlowfishBlockCrypt(k)
	case "twofish":
		return kcp.NewTwofishBlockCrypt(k)
	case "cast5":
		return kcp.NewCast5BlockCrypt(k[:16])
	case "3des":
		return kcp.NewTripleDESBlockCrypt(k[:24])
	case "tea":
		return kcp.NewTEABlockCrypt(k[:16])
	case "xtea":
		return kcp.NewXTEABlockCrypt(k[:16])
	case "xor":
		return kcp.NewSimpleXORBlockCrypt(k)
	case "sm4":
		return kcp.NewSM4BlockCrypt(k[:16])
	case "none":
		return kcp.NewNoneBlockCrypt(k)
	case "aes-gcm":
		return kcp.NewAESGCMCrypt(k)
	}
	return nil, fmt.Errorf("unknown cipher %q", name)
}

func listen(block kcp.BlockCrypt) (*kcp.Listener, error) {
	l, err := kcp.ListenWithOptions(*addr, block, *ds, *ps)
	if err != nil {
		return nil, err
	}
	l.SetReadBuffer(4 << 20)
	l.SetWriteBuffer(4 << 20)
	return l, nil
}

// tune applies the -mode preset and -stream to a session.
func tune(s *kcp.UDPSession) error {
	presets := map[string][4]int{
		"normal": {0, 40, 2, 1},
		"fast":   {0, 30, 2, 1},
		"fast2":  {1, 20, 2, 1},
		"fast3":  {1, 10, 2, 1},
	}
	p, ok := presets[*mode]
	if !ok {
		return fmt.Errorf("unknown mode %q", *mode)
	}
	s.SetNoDelay(p[0], p[1], p[2], p[3])
	s.SetWindowSize(512, 512)
	s.SetStreamMode(*stream)
	return nil
}

// serve echoes every session until the listener is closed.
func serve(l *kcp.Listener) error {
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return err
		}
		if err := tune(s); err != nil {
			return err
		}
		go func() {
			defer s.Close()
			buf := make([]byte, 1<<20)
			for {
				n, err := s.Read(buf)
				if err != nil {
					return
				}
				if _, err := s.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// client sends count messages of size bytes, reads them back, checks them,
// and prints what it measured.
func client(server string, block kcp.BlockCrypt) error {
	s, err := kcp.DialWithOptions(server, block, *ds, *ps)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := tune(s); err != nil {
		return err
	}
	s.SetReadBuffer(4 << 20)
	s.SetWriteBuffer(4 << 20)
	s.SetDeadline(time.Now().Add(time.Minute))

	msg := make([]byte, *size)
	for i := range msg {
		msg[i] = byte(i*7 + 3)
	}
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		for range *count {
			if _, err := s.Write(msg); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	got := make([]byte, *size)
	for i := range *count {
		if _, err := io.ReadFull(s, got); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("message %d came back altered", i)
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	elapsed := time.Since(start)
	total := int64(*size) * int64(*count)
	fmt.Printf("echoed %d messages of %d bytes (%d bytes) with %s, FEC %d/%d, mode %s, stream %v, in %v: %.1f MB/s\n",
		*count, *size, total, *crypt, *ds, *ps, *mode, *stream, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds()/1e6)
	fmt.Printf("rtt %d ms, rto %d ms, conv %08x\n", s.GetSRTT(), s.GetRTO(), s.GetConv())
	st := kcp.DefaultSnmp.Copy()
	fmt.Printf("snmp: OutPkts %d InPkts %d OutBytes %d InBytes %d RetransSegs %d FECRecovered %d InCsumErrors %d\n",
		st.OutPkts, st.InPkts, st.OutBytes, st.InBytes, st.RetransSegs, st.FECRecovered, st.InCsumErrors)
	return nil
}
