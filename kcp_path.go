package kcp

// pathChanged makes every segment in flight due at once, with its
// retransmission timeout back at the current RTO: the peer moved to a new
// address (listener_rebind.go), so what went to the old one was lost for a
// reason that says nothing about congestion on the new path.
func (kcp *KCP) pathChanged(current uint32) {
	a, b := kcp.sndBuf.spans()
	for _, span := range [2][]segment{a, b} {
		for i := range span {
			seg := &span[i]
			if seg.acked || seg.xmit == 0 {
				continue
			}
			seg.rto = kcp.rxRto
			seg.resendts = current
		}
	}
}
