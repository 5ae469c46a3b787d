package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// echoSize is the transfer of each echo test: 1 MiB, smaller under -race.
func echoSize() int {
	if raceEnabled {
		return 128 << 10
	}
	return 1 << 20
}

// fecModes are the FEC settings of the cipher matrix.
var fecModes = []struct {
	name   string
	ds, ps int
}{{"nofec", 0, 0}, {"fec10_3", 10, 3}}

// TestSessionEchoMatrix runs a 1 MiB echo for every cipher × FEC {off, 10/3}
// × both directions (kcpx client against a kcp-go listener, kcp-go client
// against a kcpx listener), keyed by kcptun's derivation, byte-exact.
func TestSessionEchoMatrix(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	for _, c := range Ciphers {
		for _, f := range fecModes {
			for _, d := range directions() {
				t.Run(c.Name+"/"+f.name+"/"+d.name, func(t *testing.T) {
					t.Parallel()
					srv := startServer(t, d.server, c, pass, f.ds, f.ps, fast, echoHandler)
					cli := dial(t, d.client, srv.l.Addr(), c, pass, f.ds, f.ps, fast)
					echo(t, cli, payload(uint64(len(c.Name)*10+f.ds), echoSize()), 32<<10)
				})
			}
		}
	}
}

// TestSessionMismatchedFEC pairs ends whose FEC settings differ (10/3 against
// 10/1, FEC on against off, each way round) with AES: the decoders infer the
// peer's layout or ignore FEC, and the 1 MiB echo stays byte-exact.
func TestSessionMismatchedFEC(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	aes, _ := CipherByName("aes")
	cases := []struct {
		name               string
		cds, cps, sds, sps int
	}{
		{"client10_3_server10_1", 10, 3, 10, 1},
		{"client10_1_server10_3", 10, 1, 10, 3},
		{"client10_3_server_off", 10, 3, 0, 0},
		{"client_off_server10_3", 0, 0, 10, 3},
	}
	for _, tc := range cases {
		for _, d := range directions() {
			t.Run(tc.name+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, d.server, aes, pass, tc.sds, tc.sps, fast, echoHandler)
				cli := dial(t, d.client, srv.l.Addr(), aes, pass, tc.cds, tc.cps, fast)
				echo(t, cli, payload(7, echoSize()), 32<<10)
			})
		}
	}
}

// TestSessionMessageMode sends messages of 1..1000 bytes (each within one
// segment) with stream mode off on both ends; every Read on either side
// returns exactly one message, whole.
func TestSessionMessageMode(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	salsa, _ := CipherByName("salsa20")
	msgMode := func(s Session) {
		s.SetNoDelay(1, 10, 2, 1)
		s.SetWindowSize(1024, 1024)
		s.SetStreamMode(false)
	}
	for _, d := range directions() {
		t.Run(d.name, func(t *testing.T) {
			srv := startServer(t, d.server, salsa, pass, 10, 3, msgMode, echoHandler)
			cli := dial(t, d.client, srv.l.Addr(), salsa, pass, 10, 3, msgMode)
			cli.SetDeadline(time.Now().Add(ioTimeout))
			const count = 500
			msgs := make([][]byte, count)
			for i := range msgs {
				msgs[i] = payload(uint64(i), 1+(i*397)%1000)
			}
			werr := make(chan error, 1)
			go func() {
				for _, m := range msgs {
					if _, err := cli.Write(m); err != nil {
						werr <- err
						return
					}
				}
				werr <- nil
			}()
			buf := make([]byte, 64<<10)
			for i, m := range msgs {
				n, err := cli.Read(buf)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(buf[:n], m) {
					t.Fatalf("message %d: Read returned %d bytes, want the %d-byte message whole", i, n, len(m))
				}
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSessionOOB sends out-of-band datagrams both ways (FEC 10/3 on both
// ends, AES): each library's handler receives the other's payload intact.
// OOB is unreliable, so each payload is resent every 20 ms until it arrives.
func TestSessionOOB(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	aes, _ := CipherByName("aes")
	for _, d := range directions() {
		t.Run(d.name, func(t *testing.T) {
			srv := startServer(t, d.server, aes, pass, 10, 3, fast, nil)
			cli := dial(t, d.client, srv.l.Addr(), aes, pass, 10, 3, fast)
			// A first byte makes the listener create the session.
			cli.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := cli.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			ss := srv.session(t, 0)
			ss.SetDeadline(time.Now().Add(ioTimeout))
			one := make([]byte, 1)
			if _, err := ss.Read(one); err != nil {
				t.Fatal(err)
			}
			if max := cli.GetOOBMaxSize(); max < 1000 {
				t.Fatalf("%s GetOOBMaxSize = %d", d.client.Name, max)
			}
			toServer, toClient := make(chan []byte, 16), make(chan []byte, 16)
			if err := d.server.SetOOBHandler(ss, func(b []byte) { toServer <- append([]byte(nil), b...) }); err != nil {
				t.Fatal(err)
			}
			if err := d.client.SetOOBHandler(cli, func(b []byte) { toClient <- append([]byte(nil), b...) }); err != nil {
				t.Fatal(err)
			}
			sendUntil(t, d.client.Name+"→"+d.server.Name, cli, toServer, payload(1, 1000))
			sendUntil(t, d.server.Name+"→"+d.client.Name, ss, toClient, payload(2, 37))
		})
	}
}

func sendUntil(t *testing.T, what string, s Session, got <-chan []byte, msg []byte) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(ioTimeout)
	for {
		if err := s.SendOOB(msg); err != nil {
			t.Fatalf("%s SendOOB: %v", what, err)
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, msg) {
				t.Fatalf("%s: OOB payload of %d bytes arrived as %d different bytes", what, len(msg), len(b))
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: OOB payload never arrived", what)
		}
	}
}

// TestSessionKcptunPresets runs kcptun's configuration: stream mode, MTU
// 1350, AES keyed by kcptun's derivation, FEC 10/3, kcptun's default windows
// (client 128/512, server 1024/1024) and each of its nodelay presets; 1 MiB
// echo each way round.
func TestSessionKcptunPresets(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	aes, _ := CipherByName("aes")
	for _, p := range KcptunPresets {
		for _, d := range directions() {
			t.Run(p.Name+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				kcptun := func(snd, rcv int) func(Session) {
					return func(s Session) {
						s.SetStreamMode(true)
						s.SetWriteDelay(false)
						s.SetNoDelay(p.NoDelay, p.Interval, p.Resend, p.NC)
						s.SetWindowSize(snd, rcv)
						if !s.SetMtu(KcptunMTU) {
							panic("SetMtu(1350) refused")
						}
						s.SetACKNoDelay(false)
					}
				}
				srv := startServer(t, d.server, aes, pass, 10, 3, kcptun(1024, 1024), echoHandler)
				cli := dial(t, d.client, srv.l.Addr(), aes, pass, 10, 3, kcptun(128, 512))
				echo(t, cli, payload(11, echoSize()), 32<<10)
			})
		}
	}
}

// TestCloseSignalToKCPGo checks that kcpx's close signal (and anything else
// kcpx sends on Close) is harmless to a kcp-go peer. With a kcp-go listener,
// a kcpx client closes: the tap on its socket sees the close signal leave
// (opened with kcp-go's framing: seqid 0xFFFFFFFF, type 0x00F4, 21 bytes),
// and the listener creates no session from it, does not stall the other
// session, and serves a newcomer. With a kcpx listener, a server-side
// session closes towards a kcp-go client: the signal leaves, and the
// listener's other kcp-go client carries on.
func TestCloseSignalToKCPGo(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	for _, name := range []string{"null", "aes", "aes-128-gcm"} {
		c, _ := CipherByName(name)
		block, err := c.KCPGo(pass)
		if err != nil {
			t.Fatal(err)
		}
		for _, fec := range fecModes {
			t.Run(name+"/"+fec.name+"/kcpx_client_closes", func(t *testing.T) {
				srv := startServer(t, KCPGo, c, pass, fec.ds, fec.ps, fast, echoHandler)
				tap := listenUDP(t)
				fin := watchCloseSignal(tap, block, nil)
				a := dialConn(t, KCPX, 0xc105e, srv.l.Addr(), c, pass, fec.ds, fec.ps, tap, fast)
				b := dial(t, KCPX, srv.l.Addr(), c, pass, fec.ds, fec.ps, fast)
				echo(t, a, payload(1, 64<<10), 8<<10)
				echo(t, b, payload(2, 64<<10), 8<<10)
				if err := a.Close(); err != nil {
					t.Fatalf("kcpx Close: %v", err)
				}
				awaitCloseSignal(t, fin)
				// b carries on while a's close signal reaches the listener.
				echo(t, b, payload(3, echoSize()), 32<<10)
				cNew := dial(t, KCPX, srv.l.Addr(), c, pass, fec.ds, fec.ps, fast)
				echo(t, cNew, payload(4, 64<<10), 8<<10)
				if n := srv.accepted.Load(); n != 3 {
					t.Fatalf("kcp-go listener accepted %d sessions, want 3 (the close signal must not open one)", n)
				}
			})
			t.Run(name+"/"+fec.name+"/kcpx_server_closes", func(t *testing.T) {
				tap := listenUDP(t)
				var aPort atomic.Int64
				fin := watchCloseSignal(tap, block, func(to net.Addr) bool {
					return int64(port(to)) == aPort.Load()
				})
				srv := startServerConn(t, KCPX, c, pass, fec.ds, fec.ps, tap, fast, echoHandler)
				a := dial(t, KCPGo, srv.l.Addr(), c, pass, fec.ds, fec.ps, fast)
				b := dial(t, KCPGo, srv.l.Addr(), c, pass, fec.ds, fec.ps, fast)
				aPort.Store(int64(port(a.LocalAddr())))
				echo(t, a, payload(1, 64<<10), 8<<10)
				echo(t, b, payload(2, 64<<10), 8<<10)
				var aSrv Session
				for i := range 2 {
					if s := srv.session(t, i); port(s.RemoteAddr()) == port(a.LocalAddr()) {
						aSrv = s
					}
				}
				if aSrv == nil {
					t.Fatal("no server session for the first client")
				}
				if err := aSrv.Close(); err != nil {
					t.Fatalf("kcpx server-side Close: %v", err)
				}
				awaitCloseSignal(t, fin)
				echo(t, b, payload(3, echoSize()), 32<<10)
				// The kcp-go client whose peer closed is still a usable
				// object: a Write queues without error or panic.
				a.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := a.Write([]byte("still here")); err != nil {
					t.Fatalf("kcp-go Write after the kcpx peer closed: %v", err)
				}
			})
		}
	}
}

// watchCloseSignal hooks tap's writes and returns a channel that is closed
// when a datagram that opens (with kcp-go's framing) to a close signal is
// written to an address to accepts (any address when to is nil).
func watchCloseSignal(tap *TapConn, block kcpgo.BlockCrypt, to func(net.Addr) bool) <-chan struct{} {
	seen := make(chan struct{})
	var once sync.Once
	tap.OnWrite(func(p []byte, addr net.Addr) bool {
		if to != nil && !to(addr) {
			return true
		}
		inner, ok := kcpgoOpen(block, p)
		if ok && len(inner) == 21 && binary.LittleEndian.Uint32(inner) == 0xffffffff && binary.LittleEndian.Uint16(inner[4:]) == 0x00f4 {
			once.Do(func() { close(seen) })
		}
		return true
	})
	return seen
}

// port is the UDP port of a, 0 when it has none.
func port(a net.Addr) int {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.Port
	}
	return 0
}

func awaitCloseSignal(t *testing.T, seen <-chan struct{}) {
	t.Helper()
	select {
	case <-seen:
	case <-time.After(ioTimeout):
		t.Fatal("kcpx sent no close signal")
	}
}

// TestManySessionsOneListener runs 64 concurrent 16 KiB echoes of each
// library's clients against the other's listener (kcp-go's parallel-client
// pattern, scaled down), Salsa20 with FEC 10/3.
func TestManySessionsOneListener(t *testing.T) {
	pass := KcptunPass("it's a secrect")
	salsa, _ := CipherByName("salsa20")
	const clients = 64
	for _, d := range directions() {
		t.Run(d.name, func(t *testing.T) {
			srv := startServer(t, d.server, salsa, pass, 10, 3, fast, echoHandler)
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := range clients {
				s := dial(t, d.client, srv.l.Addr(), salsa, pass, 10, 3, fast)
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- echoErr(s, payload(uint64(i), 16<<10))
					// Each closes its own: a kcpx Close waits up to 3 RTOs
					// for a FINACK kcp-go never sends; 64 in a row add up.
					s.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// echoErr is echo for goroutines other than the test's.
func echoErr(s Session, data []byte) error {
	s.SetDeadline(time.Now().Add(ioTimeout))
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		werr <- err
	}()
	got := make([]byte, len(data))
	read := 0
	for read < len(got) {
		n, err := s.Read(got[read:])
		if err != nil {
			return fmt.Errorf("read %d of %d: %w", read, len(got), err)
		}
		read += n
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo differs at byte %d", firstDiff(got, data))
	}
	return nil
}
