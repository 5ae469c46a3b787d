package kcp

// The session API kcp-go added in v5.7: polling reads (TryRead with
// SetReadNotify), ResetRTO, and a rate limit on application bytes
// (SetRateLimit, SetBucket) that makes Write wait for tokens, plus the
// PacketPusher interface a conn can implement to push datagrams instead of
// being read.

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/juju/ratelimit"
)

// PacketPusher is implemented by a net.PacketConn that hands each received
// datagram to a callback instead of being read, as kcp-go v5.7 defines it.
// The conn calls fn once per datagram, never concurrently; fn may modify b
// but must not keep it after returning; a non-nil err ends reception (b and
// addr are then unused). SetPacketReceiver(nil) removes the receiver: a
// session or Listener calls it when it is done with the conn.
type PacketPusher interface {
	SetPacketReceiver(fn func(b []byte, addr net.Addr, err error))
}

// TryRead is Read without waiting: it returns what Read would return at
// once, and (0, nil) where Read would block. Once the session is closed, the
// link has failed, or the peer closed and everything it sent was read, it
// returns the error (or io.EOF) Read would. The read deadline is ignored.
// Combine it with SetReadNotify to read from an event loop. Safe for
// concurrent use.
func (s *UDPSession) TryRead(b []byte) (int, error) { return s.read(b, false) }

// SetReadNotify installs fn, called whenever TryRead may have something new
// to return: data became readable, the peer closed, the session was closed or
// the link failed. A nil fn removes it. fn runs on the goroutine that
// received the datagram (or closed the session) after the session's lock
// was released; it must return quickly and should only signal an event
// loop. Calls may be spurious and may coalesce, so drain with TryRead until
// it returns 0. Safe for concurrent use.
func (s *UDPSession) SetReadNotify(fn func()) {
	if fn == nil {
		s.readNotify.Store(nil)
		return
	}
	s.readNotify.Store(&fn)
}

// readReady wakes a blocked Read and calls the SetReadNotify function.
func (s *UDPSession) readReady() {
	notify(s.chRead)
	s.callReadNotify()
}

// callReadNotify calls the SetReadNotify function, if any. Never with mu held.
func (s *UDPSession) callReadNotify() {
	if fn := s.readNotify.Load(); fn != nil {
		(*fn)()
	}
}

// ResetRTO makes every segment in flight due for retransmission at the next
// flush, with its timeout set back to the current RTO estimate, for when the
// application knows that connectivity came back (a new route, a resumed
// device) and should not wait out timers that backed off meanwhile. As in
// kcp-go it sends nothing itself: the next update, within one flush interval
// (SetNoDelay), retransmits. Safe for concurrent use; no effect after Close
// has released the session.
func (s *UDPSession) ResetRTO() {
	s.mu.Lock()
	s.kcp.ResetRTO()
	s.mu.Unlock()
	if s.parked.Load() {
		s.unpark()
	}
}

// SetRateLimit limits the application bytes that Write and WriteBuffers
// accept to bytesPerSecond, as kcp-go v5.7 does: a Write of n bytes first
// takes n tokens from a bucket that refills at bytesPerSecond and holds one
// second of it (so a burst of up to bytesPerSecond bytes passes at once),
// waiting for them when the bucket is short. The wait ends early with
// os.ErrDeadlineExceeded when the write deadline passes, or with an error
// matching net.ErrClosed when the session is closed; nothing is queued
// then, but the tokens stay taken. Headers, FEC parity, retransmissions and
// SendOOB are not counted. 0, the default, removes the limit (and any bucket
// set with SetBucket).
//
// The core also paces what it sends at the datagram rate that the limit
// costs in full segments (application bytes plus KCP, FEC and cipher
// headers, and FEC parity), so that the one-second burst leaves smoothly
// instead of at line rate. Paced segments wait in the send window, where
// Write's usual flow control holds the writer, and their retransmission
// timers start only when they leave, so the limit never causes a
// retransmission. Retransmissions and small messages use some of that
// datagram rate, so the application may get somewhat less than
// bytesPerSecond then; on a path of a given capacity, leave room for the
// headers (a few percent).
//
// Changed in kcpx to follow kcp-go v5.7: before, the limit counted datagram
// bytes on the wire and Write did not wait. Safe for concurrent use.
func (s *UDPSession) SetRateLimit(bytesPerSecond uint32) {
	var b *ratelimit.Bucket
	if bytesPerSecond > 0 {
		b = ratelimit.NewBucketWithRate(float64(bytesPerSecond), int64(bytesPerSecond))
	}
	s.SetBucket(b)
}

// SetBucket makes Write and WriteBuffers take their application bytes from
// bucket, as SetRateLimit describes; one bucket given to several sessions
// limits them together (their sum never exceeds the bucket's rate). The
// session's pacer runs at the bucket's whole rate (Bucket.Rate). A nil bucket
// removes the limit. Safe for concurrent use.
func (s *UDPSession) SetBucket(bucket *ratelimit.Bucket) {
	s.mu.Lock()
	s.bucket.Store(bucket)
	s.paceForBucketLocked()
	s.mu.Unlock()
}

// paceForBucketLocked sets the core's pacer from the bucket's rate: the
// datagram bytes that rate of application bytes costs in full segments.
// Caller holds mu.
func (s *UDPSession) paceForBucketLocked() {
	s.rateBps = 0
	if b := s.bucket.Load(); b != nil {
		mss := float64(max(s.kcpMtu-IKCP_OVERHEAD, 1))
		perDatagram := float64(s.kcpMtu + s.cryptHdr + s.fecHdr + s.cryptTag)
		wire := b.Rate() * perDatagram / mss
		if s.fecEnc != nil {
			wire = wire * float64(s.ds+s.ps) / float64(s.ds)
		}
		s.rateBps = uint32(min(max(wire, 1), float64(^uint32(0))))
	}
	s.applyRateLimit()
}

// writeGate runs before WriteBuffers queues anything. An empty write returns
// (0, nil) at once, as in kcp-go v5.7, or the error a closed or failed
// session reports. Otherwise, with a rate limit, it waits for the tokens
// of n bytes. done reports that WriteBuffers must return n, err.
func (s *UDPSession) writeGate(v [][]byte) (n int, err error, done bool) {
	for _, b := range v {
		n += len(b)
	}
	if n == 0 {
		if closedChan(s.die) {
			return 0, errClosed, true
		}
		s.mu.Lock()
		err = s.brokenErr
		s.mu.Unlock()
		return 0, err, true
	}
	b := s.bucket.Load()
	if b == nil {
		return 0, nil, false
	}
	if s.wd.expired() {
		return 0, errTimeout, true
	}
	wait := b.Take(int64(n))
	if wait <= 0 {
		return 0, nil, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, nil, false
	case <-s.wd.wait():
		return 0, errTimeout, true
	case <-s.die:
		return 0, errClosed, true
	case <-s.broken:
		s.mu.Lock()
		err = s.brokenErr
		s.mu.Unlock()
		return 0, err, true
	}
}

// sessV57 is the part of UDPSession that the v5.7 API adds. Its fields are
// atomics, read without mu on the Write and receive paths.
type sessV57 struct {
	bucket     atomic.Pointer[ratelimit.Bucket] // SetRateLimit, SetBucket; nil: no limit
	readNotify atomic.Pointer[func()]           // SetReadNotify; nil: none
}

// minInput is the shortest opened datagram a session takes: an OOB header
// with its conv and no payload (fecHeaderSizePlus2 + 4 = 12 bytes), as in
// kcp-go, which drops anything shorter as a KCP input error.
const minInput = fecHeaderSizePlus2 + 4

// countInputLocked counts an opened datagram p as kcp-go does and reports
// whether the session takes it: InPkts and InBytes (len(p): no cipher header,
// CRC or AEAD tag, so a peer's OutBytes exceeds them by that overhead per
// datagram), or KCPInErrors for one shorter than minInput. Caller holds mu.
func (s *UDPSession) countInputLocked(p []byte) bool {
	if len(p) < minInput {
		s.pend.KCPInErrors++
		return false
	}
	s.pend.InPkts++
	s.pend.InBytes += uint64(len(p))
	return true
}

// publishFECGauges stores the FEC decoder's gauges in this session's
// counters and, when they changed or datagrams arrived since the last
// publish, in DefaultSnmp, where (as in kcp-go, whose decoder stores them on
// every packet) they keep the last values any session reported; after
// DefaultSnmp.Reset they come back with the next datagram. Caller holds mu,
// before pend is committed.
func (s *UDPSession) publishFECGauges(shardSet, shardMin uint64) {
	same := atomic.LoadUint64(&s.snmp.FECShardSet) == shardSet && atomic.LoadUint64(&s.snmp.FECShardMin) == shardMin
	if same && s.pend.InPkts == 0 {
		return
	}
	s.snmp.setFECShards(shardSet, shardMin)
	DefaultSnmp.setFECShards(shardSet, shardMin)
}
