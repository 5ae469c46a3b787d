package kcp

// Accessors the session layer needs from the ARQ core (CONTRACT.md,
// "Additions"), kept apart from kcp.go. Callers hold the session lock.

// sendNext returns snd_nxt: the sn the next new segment will get.
func (kcp *KCP) sendNext() uint32 { return kcp.sndNxt }

// recvNext returns rcv_nxt: the next sn expected in order.
func (kcp *KCP) recvNext() uint32 { return kcp.rcvNxt }

// recvQueued returns how many segments wait in the receive queue (0: nothing
// readable).
func (kcp *KCP) recvQueued() int { return kcp.rcvQueue.len() }
