package kcp

import (
	"net"
	"net/netip"
	"time"
)

// Datagram filters: a PacketConn layer that transforms every datagram of a
// UDP socket (secure mode: secureClientConn, secureServerConn) without
// taking the socket away from the engine's batch I/O.
//
// A conn that implements datagramFilter is read and written by the engine
// through its socket, with recvmmsg/GRO and sendmmsg/GSO as for a plain
// *net.UDPConn; the reader passes each datagram through filterIn before the
// handler sees it (the filter opens it, or consumes it: handshakes, control
// packets, keepalives), and the writer seals each batch through filterOut
// into buffers of its own before the batch goes out. The filter's own
// ReadFrom and WriteTo are the same two functions around one plain call.
//
// A filter may write to the socket itself (handshake replies, path
// challenges): rare packets from the reader goroutine, outside the batch.

// datagramFilter is implemented by PacketConns that protect the datagrams of
// an underlying UDP socket. filterIn is called by the socket's reader
// goroutine only; filterOut by its sender (one drain token holder at a
// time); both are called without any session lock held.
type datagramFilter interface {
	net.PacketConn

	// filterSocket returns the socket the filter uses now. It changes only
	// when the filter moves to a new socket (a test's rebinding); the
	// reader and writer follow it.
	filterSocket() *net.UDPConn

	// filterIn takes a datagram read from src at now (read once per read
	// call, after it returned). pkt belongs to the reader and may be
	// overwritten. It returns the datagram to deliver and its source as the
	// sessions know it, or ok false when there is none.
	filterIn(pkt []byte, src netip.AddrPort, now time.Time) (data []byte, from netip.AddrPort, ok bool)

	// filterOut seals p, a datagram for the peer the sessions know as to,
	// into buf (cap(buf) >= len(p)+filterOverhead) and returns the packet
	// and the address it goes to; now is read once per batch. ok false
	// with a nil error drops p silently (a peer the filter forgot); an
	// error drops it and is reported as a send error of that datagram.
	filterOut(buf, p []byte, to netip.AddrPort, now time.Time) (pkt []byte, dst netip.AddrPort, ok bool, err error)

	// filterErr returns the error to report when reading the socket failed
	// with err: the filter's own failure (the peer closed, the handshake
	// was never confirmed) when it has one, else err.
	filterErr(err error) error
}

const (
	// filterOverhead is the most bytes a filter adds to a datagram.
	filterOverhead = SecureOverhead
	// filterBufLen is the size of the writer's sealed-datagram slots and
	// of the reader's slots for a filter's socket.
	filterBufLen = maxDatagram + filterOverhead
	// filterChunk is the most datagrams a writer seals before it writes
	// them: 128 slots of filterBufLen, about 190 KiB per filtered socket.
	filterChunk = 128
)

// filterState is a packetWriter's sealing area for a filter conn. It
// belongs to the writer's caller (the socket's drain token holder).
type filterState struct {
	f    datagramFilter
	slab []byte      // filterChunk slots of filterBufLen
	out  []outPacket // sealed datagrams of the current chunk
	idx  []int       // out[i] is pkts[idx[i]]
}

// sendFiltered seals pkts through the filter, in chunks, and writes them. It
// returns as send does: the number of datagrams of pkts dealt with and the
// error of the one that failed. A datagram the filter drops counts as sent.
func (w *packetWriter) sendFiltered(pkts []outPacket) (int, error) {
	fs := w.filter
	if fs.slab == nil {
		fs.slab = make([]byte, filterChunk*filterBufLen)
		fs.out = make([]outPacket, 0, filterChunk)
		fs.idx = make([]int, 0, filterChunk)
	}
	done := 0
	for done < len(pkts) {
		w.followSocket()
		fs.out, fs.idx = fs.out[:0], fs.idx[:0]
		end := done
		now := time.Now()
		var sealErr error
		for ; end < len(pkts) && len(fs.out) < filterChunk; end++ {
			slot := len(fs.out) * filterBufLen
			buf := fs.slab[slot : slot : slot+filterBufLen]
			p := &pkts[end]
			if len(p.b)+filterOverhead > filterBufLen {
				sealErr = errSecureTooLarge
				break
			}
			pkt, dst, ok, err := fs.f.filterOut(buf, p.b, p.to, now)
			if err != nil {
				sealErr = err
				break
			}
			if ok {
				fs.out = append(fs.out, outPacket{b: pkt, to: dst})
				fs.idx = append(fs.idx, end)
			}
		}
		n, err := w.sendRaw(fs.out)
		if err != nil && fatalWriteError(err) && w.followSocket() {
			// The filter moved to a new socket while we wrote to the old
			// one: the rest goes to the new one.
			var m int
			m, err = w.sendRaw(fs.out[n:])
			n += m
		}
		clear(fs.out) // do not keep the sealed bytes' addresses reachable
		if err != nil {
			return fs.idx[n], err
		}
		done = end
		if sealErr != nil {
			return done, sealErr
		}
	}
	return done, nil
}

// followSocket moves the writer to the filter's current socket when it
// changed and reports whether it did.
func (w *packetWriter) followSocket() bool {
	u := w.filter.f.filterSocket()
	if u == w.udp {
		return false
	}
	w.mu.Lock()
	w.udp = u
	w.connected = false
	gso := w.batch != nil && w.batch.gso()
	if w.batch != nil {
		w.batch = newBatchWriter(u, false, &w.offload)
		if w.batch != nil && !gso {
			w.batch.disableGSO()
		}
	}
	w.batchOn.Store(w.batch != nil)
	w.gsoOn.Store(w.batch != nil && w.batch.gso())
	w.mu.Unlock()
	return true
}

// followSocket moves the reader to the filter's current socket when it
// changed and reports whether it did.
func (r *packetReader) followSocket() bool {
	u := r.filter.filterSocket()
	if u == r.udp {
		return false
	}
	r.udp = u
	if r.batch != nil {
		gro := r.batch.groOn()
		r.batch = newBatchReader(u, &r.offload, false)
		if r.batch != nil {
			if !gro {
				r.batch.disableGRO()
			}
			r.batch.widen(filterBufLen)
		}
		r.groOn.Store(r.batch != nil && r.batch.groOn())
		r.batchOn.Store(r.batch != nil)
	}
	return true
}

// filterHandler wraps handle so that every datagram passes through the
// reader's filter first. The clock is read at the first datagram of each
// read call (read clears r.filterNowOK before the call): one time.Now for
// a batch of up to 64 datagrams.
func (r *packetReader) filterHandler(handle func(data []byte, ap netip.AddrPort, addr net.Addr)) func(data []byte, ap netip.AddrPort, addr net.Addr) {
	f := r.filter
	return func(pkt []byte, src netip.AddrPort, _ net.Addr) {
		if !r.filterNowOK {
			r.filterNow, r.filterNowOK = time.Now(), true
		}
		if data, from, ok := f.filterIn(pkt, src, r.filterNow); ok {
			handle(data, from, nil)
		}
	}
}
