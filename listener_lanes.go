package kcp

import (
	"net"
	"sync/atomic"
)

// A listener on every core.
//
// One socket has one reader goroutine, and that goroutine opens,
// demultiplexes and inputs every datagram of every session: with many busy
// sessions it caps what the listener receives at one core. On Linux,
// ListenWithOptions therefore opens the port with several sockets
// (udp_lanes_linux.go: SO_REUSEPORT, one per core up to maxListenLanes),
// each a lane with its own reader and sendQueue. The kernel picks a
// socket for each datagram by a hash of its 4-tuple, so one peer's flow
// always lands on the same lane; a session is created on the lane its
// opener arrived on and sends through that lane's sendQueue, out of the
// socket its flow arrives on (all lanes share one address and port, so the
// peer sees one source either way). The session map, the guard and the
// rebinding logic are the listener's, shared by the lanes under
// Listener.mu. Lane 0 is Listener.conn, rx and sq; Addr and Control name
// it. ServeConn, a PacketPusher and other systems have one lane.

// maxListenLanes bounds the sockets of one listener.
const maxListenLanes = 8

// listenerLane is one socket of a listener with its reader and sender.
type listenerLane struct {
	conn     net.PacketConn
	rx       *packetReader // nil for a pushing conn
	sq       *sendQueue
	loopDone chan struct{} // closed when the lane's read loop returns
	letGoErr error         // what letting the conn go returned (Close)
}

// laneStats counts what the lanes saw that they should not: datagrams of a
// session that arrived on another lane than the session's (the kernel moved
// a flow, as when the socket group changes). They are served all the same.
type laneStats struct {
	crossLane atomic.Uint64
}

// add sums o's counters into st; the path flags stay st's (lane 0's).
func (st *IOStats) add(o IOStats) {
	st.RxDatagrams += o.RxDatagrams
	st.RxCalls += o.RxCalls
	st.RxGROBatches += o.RxGROBatches
	st.RxGROSegments += o.RxGROSegments
	st.RxDropped += o.RxDropped
	st.RxFallbacks += o.RxFallbacks
	st.RxKernelDrops += o.RxKernelDrops
	st.TxDatagrams += o.TxDatagrams
	st.TxCalls += o.TxCalls
	st.TxGSOBatches += o.TxGSOBatches
	st.TxGSOSegments += o.TxGSOSegments
	st.TxGSOFallbacks += o.TxGSOFallbacks
	st.TxFallbacks += o.TxFallbacks
	st.TxErrors += o.TxErrors
	st.TxQueueDrops += o.TxQueueDrops
	st.TxAmpLimited += o.TxAmpLimited
	st.TxCtlDrops += o.TxCtlDrops
}

// eachConn calls f with every lane's conn and returns the first error.
func (l *Listener) eachConn(f func(net.PacketConn) error) error {
	var first error
	for _, ln := range l.lanes {
		if err := f(ln.conn); err != nil && first == nil {
			first = err
		}
	}
	return first
}
