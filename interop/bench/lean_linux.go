//go:build linux

package main

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kcpx/kcp"
	"golang.org/x/sys/unix"
)

// leanClient is one client of a lean idle fleet: a bare KCP conversation
// (kcpx's ARQ core, the same wire as kcp-go's) over its own connected,
// non-blocking UDP socket.
type leanClient struct {
	fd      int
	k       *kcp.KCP
	got     int       // bytes of the outstanding ping's echo received
	sentAt  time.Time // when the outstanding ping was sent; zero: none
	counted bool      // the outstanding ping was counted as lost
	active  bool      // in the fleet's active list
	open    bool      // has had an echo
}

// leanSweep is how often the fleet runs the KCP timers of the clients with
// a ping or data outstanding (retransmissions), and the longest the loop
// sleeps.
const leanSweep = 10 * time.Millisecond

// startLeanClients opens n idle clients to addr (from ip, or 127.0.0.1)
// the cheap way: one goroutine and one epoll set serve them all, so a
// client costs a socket and a KCP struct, not a session with its reader,
// timers and goroutine. It speaks raw KCP (the "null" cipher, no FEC), so
// it serves the kcpx and kcp-go servers only. The server sees what it
// would see from Dial: one conversation per source port, a 64-byte ping
// every -idle-every, each ACKed when its echo arrives. This lets one
// 2-core machine hold 100,000 clients and still leave the server most of
// the CPU, which the session clients (a goroutine and a reader each) do not.
func startLeanClients(addr string, n int, ip net.IP) idleFleet {
	srv, err := netip.ParseAddrPort(addr)
	if err != nil || !srv.Addr().Is4() {
		fail("lean clients: server address %q: want an IPv4 address and port", addr)
	}
	local := [4]byte{127, 0, 0, 1}
	if ip4 := ip.To4(); ip4 != nil {
		local = [4]byte(ip4)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		fail("epoll: %v", err)
	}
	cl := make([]leanClient, n)
	for i := range cl {
		c := &cl[i]
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fail("lean client %d: socket: %v", i, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: local}); err != nil {
			fail("lean client %d: bind: %v", i, err)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(srv.Port()), Addr: srv.Addr().As4()}); err != nil {
			fail("lean client %d: connect: %v", i, err)
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			fail("lean client %d: epoll: %v", i, err)
		}
		c.fd = fd
		c.k = kcp.NewKCP(rand.Uint32(), func(buf []byte, size int) {
			unix.Write(fd, buf[:size]) // a full socket buffer drops it: KCP resends
		})
		c.k.NoDelay(0, int(leanSweep/time.Millisecond), 0, 0)
	}

	var (
		stop      atomic.Bool
		measuring atomic.Bool
		lost      atomic.Int64
		opened    atomic.Int64 // clients that have had an echo
		wg        sync.WaitGroup
	)
	echoed := make([]atomic.Bool, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ping := make([]byte, 64)
		buf := make([]byte, 2048)
		events := make([]unix.EpollEvent, 256)
		var active []int32 // clients with a ping or unacknowledged data outstanding
		slot := *idleEvery / time.Duration(n)
		next, nextAt := 0, time.Now()
		lastSweep := nextAt
		for !stop.Load() {
			now := time.Now()
			// Pings that are due, spread evenly over the interval. A client
			// whose previous ping is unanswered does not send another; past
			// 5 s its ping counts as lost, as the session clients count it.
			for !now.Before(nextAt) {
				c := &cl[next]
				switch {
				case c.sentAt.IsZero():
					c.k.Send(ping)
					c.sentAt, c.got, c.counted = now, 0, false
					c.k.Update()
					if !c.active {
						c.active = true
						active = append(active, int32(next))
					}
				case !c.counted && now.Sub(c.sentAt) > 5*time.Second && measuring.Load():
					c.counted = true
					lost.Add(1)
				}
				if next++; next == n {
					next = 0
				}
				nextAt = nextAt.Add(max(slot, time.Nanosecond))
			}
			if now.Sub(lastSweep) >= leanSweep {
				lastSweep = now
				keep := active[:0]
				for _, i := range active {
					c := &cl[i]
					c.k.Update()
					if c.sentAt.IsZero() && c.k.WaitSnd() == 0 {
						c.active = false
						continue
					}
					keep = append(keep, i)
				}
				active = keep
			}
			// Sleep at least a millisecond (epoll's unit): the pings due
			// meanwhile leave together on waking, a few per millisecond.
			ms := max(int(min(time.Until(nextAt), leanSweep)/time.Millisecond), 1)
			nev, err := unix.EpollWait(epfd, events, ms)
			if err != nil && err != unix.EINTR {
				fail("epoll_wait: %v", err)
			}
			for _, ev := range events[:max(nev, 0)] {
				i := ev.Fd
				c := &cl[i]
				for {
					m, err := unix.Read(c.fd, buf)
					if err != nil {
						break
					}
					// ackNoDelay: the ACK of the echo leaves at once.
					c.k.Input(buf[:m], kcp.IKCP_PACKET_REGULAR, true)
				}
				for {
					r := c.k.Recv(buf)
					if r <= 0 {
						break
					}
					c.got += r
				}
				if !c.sentAt.IsZero() && c.got >= len(ping) {
					c.sentAt = time.Time{}
					if !c.open {
						c.open = true
						opened.Add(1)
					}
					if measuring.Load() {
						echoed[i].Store(true)
					}
				}
			}
		}
	}()
	return idleFleet{
		// Ready once every client has had an echo (or after a minute): the
		// openers of a large fleet arrive faster than an accept loop takes
		// them, and one refused waits on its retransmission timer, so the
		// measure starts when the fleet is open, as it would for clients
		// that dialled over time.
		ready: func() {
			for deadline := time.Now().Add(time.Minute); opened.Load() < int64(n) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
		},
		measure: func() { measuring.Store(true) },
		halt:    func() { measuring.Store(false) },
		finish: func() (int, int) {
			stop.Store(true)
			wg.Wait()
			silent := 0
			for i := range echoed {
				if !echoed[i].Load() {
					silent++
				}
			}
			for i := range cl {
				unix.Close(cl[i].fd)
			}
			unix.Close(epfd)
			return silent, int(lost.Load())
		},
	}
}

// leanSupported reports whether this build has the lean idle clients.
const leanSupported = true
