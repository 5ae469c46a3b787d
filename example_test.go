package kcp_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"strings"

	kcp "github.com/kcpx/kcp"
)

// The README's Usage: a server and a client with AES and FEC, in one
// process. README_test.go checks that the README shows this body verbatim.
func Example_usage() {
	key := sha256.Sum256([]byte("a shared secret")) // 32 bytes: AES-256; derive real keys with a KDF
	block, err := kcp.NewAESBlockCrypt(key[:])
	if err != nil {
		log.Fatal(err)
	}

	// Server: FEC with 10 data and 3 parity shards; every session echoes.
	ln, err := kcp.ListenWithOptions("127.0.0.1:0", block, 10, 3)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			s, err := ln.AcceptKCP()
			if err != nil {
				return // the listener was closed
			}
			s.SetNoDelay(1, 10, 2, 1)
			s.SetWindowSize(512, 512)
			s.SetStreamMode(true)
			go func() {
				defer s.Close()
				io.Copy(s, s)
			}()
		}
	}()

	// Client: same cipher, key and FEC.
	s, err := kcp.DialWithOptions(ln.Addr().String(), block, 10, 3)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.SetNoDelay(1, 10, 2, 1) // kcptun's "fast3": nodelay, 10 ms interval, fast resend, no cwnd
	s.SetWindowSize(512, 512) // segments in flight each way
	s.SetStreamMode(true)     // a byte stream; the default keeps message boundaries

	if _, err := s.Write([]byte("hello, kcp")); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(s, buf); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf))
	// Output: hello, kcp
}

// echoOnce accepts one session on l and echoes it until it ends.
func echoOnce(l *kcp.Listener) {
	s, err := l.AcceptKCP()
	if err != nil {
		return
	}
	defer s.Close()
	io.Copy(s, s)
}

// A listener and a client on loopback: the client sends a line and reads
// the echo back.
func ExampleDial() {
	ln, err := kcp.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoOnce(ln.(*kcp.Listener))

	conn, err := kcp.Dial(ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("hello, kcp"))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf[:n]))
	// Output: hello, kcp
}

// Forward error correction with 10 data and 3 parity shards, sealed with
// AES, tuned like kcptun's "fast3" preset.
func ExampleDialWithOptions() {
	key := []byte("0123456789abcdef0123456789abcdef")
	block, _ := kcp.NewAESBlockCrypt(key)
	ln, err := kcp.ListenWithOptions("127.0.0.1:0", block, 10, 3)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoOnce(ln)

	block2, _ := kcp.NewAESBlockCrypt(key)
	s, err := kcp.DialWithOptions(ln.Addr().String(), block2, 10, 3)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(256, 256)
	s.SetStreamMode(true)

	msg := strings.Repeat("kcp ", 10000)
	go s.Write([]byte(msg))
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(s, back); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(back) == msg, len(back))
	// Output: true 40000
}

// Both ends must use the same cipher and key: an AEAD here. A datagram
// that does not open is dropped and counted in Snmp.InCsumErrors.
func ExampleNewAESGCMCrypt() {
	key := []byte("0123456789abcdef0123456789abcdef")
	server, _ := kcp.NewAESGCMCrypt(key)
	client, _ := kcp.NewAESGCMCrypt(key)
	ln, err := kcp.ListenWithOptions("127.0.0.1:0", server, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoOnce(ln)

	s, err := kcp.DialWithOptions(ln.Addr().String(), client, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("sealed"))
	buf := make([]byte, 16)
	n, _ := s.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: sealed
}

// Snmp's columns, in kcp-go's order: kcptun logs ToSlice under this header.
func ExampleSnmp_Header() {
	h := kcp.DefaultSnmp.Header()
	fmt.Println(len(h), h[0], h[1], h[len(h)-1])
	// Output: 30 BytesSent BytesReceived OOBPackets
}

// Per-session counters next to the process-wide DefaultSnmp.
func ExampleUDPSession_GetSnmp() {
	ln, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoOnce(ln)

	s, err := kcp.DialWithOptions(ln.Addr().String(), nil, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	s.Write([]byte("count me"))
	io.ReadFull(s, make([]byte, 8))
	s.Close() // publishes the last counters
	st := s.GetSnmp()
	fmt.Println(st.BytesSent, st.BytesReceived, st.OutPkts > 0)
	// Output: 8 8 true
}
