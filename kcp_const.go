package kcp

// Protocol constants of KCP. Times are in milliseconds, windows in segments,
// sizes in bytes. The values are those of kcp-go v5 and the C ikcp.
const (
	IKCP_RTO_NDL = 30    // IKCP_RTO_NDL is the minimum RTO in no-delay mode (ms).
	IKCP_RTO_MIN = 100   // IKCP_RTO_MIN is the minimum RTO in normal mode (ms).
	IKCP_RTO_DEF = 200   // IKCP_RTO_DEF is the RTO before the first RTT sample (ms).
	IKCP_RTO_MAX = 60000 // IKCP_RTO_MAX is the largest RTO (ms).

	IKCP_CMD_PUSH = 81 // IKCP_CMD_PUSH is the cmd byte of a data segment.
	IKCP_CMD_ACK  = 82 // IKCP_CMD_ACK is the cmd byte of an acknowledgement.
	IKCP_CMD_WASK = 83 // IKCP_CMD_WASK is the cmd byte of a window probe (ask).
	IKCP_CMD_WINS = 84 // IKCP_CMD_WINS is the cmd byte of a window report (tell).

	IKCP_ASK_SEND = 1 // IKCP_ASK_SEND is the probe flag that schedules a WASK.
	IKCP_ASK_TELL = 2 // IKCP_ASK_TELL is the probe flag that schedules a WINS.

	IKCP_WND_SND = 32   // IKCP_WND_SND is the default send window (segments).
	IKCP_WND_RCV = 32   // IKCP_WND_RCV is the default receive window (segments).
	IKCP_MTU_DEF = 1400 // IKCP_MTU_DEF is the default MTU of KCP datagrams (bytes).

	IKCP_ACK_FAST    = 3      // IKCP_ACK_FAST is the classic fast-retransmit threshold (skipping ACKs).
	IKCP_INTERVAL    = 100    // IKCP_INTERVAL is the default flush interval (ms).
	IKCP_OVERHEAD    = 24     // IKCP_OVERHEAD is the size of a segment header (bytes).
	IKCP_DEADLINK    = 20     // IKCP_DEADLINK is the transmission count at which a link is dead.
	IKCP_THRESH_INIT = 2      // IKCP_THRESH_INIT is the initial slow-start threshold (segments).
	IKCP_THRESH_MIN  = 2      // IKCP_THRESH_MIN is the smallest slow-start threshold (segments).
	IKCP_PROBE_INIT  = 500    // IKCP_PROBE_INIT is the first window-probe wait (ms).
	IKCP_PROBE_LIMIT = 120000 // IKCP_PROBE_LIMIT is the longest window-probe wait (ms).
	IKCP_SN_OFFSET   = 12     // IKCP_SN_OFFSET is the byte offset of sn in a segment header.
)

// PacketType tells Input where a datagram came from.
type PacketType int8

const (
	// IKCP_PACKET_REGULAR marks a datagram received from the network. Only
	// these update the RTT estimate and the peer's window.
	IKCP_PACKET_REGULAR PacketType = iota
	// IKCP_PACKET_FEC marks a datagram rebuilt by forward error correction.
	IKCP_PACKET_FEC
)

// FlushType selects what a flush emits.
type FlushType int8

const (
	// IKCP_FLUSH_ACKONLY emits pending acknowledgements and window probes only.
	IKCP_FLUSH_ACKONLY FlushType = 1 << iota
	// IKCP_FLUSH_FULL emits acknowledgements, probes, new data and due retransmissions.
	IKCP_FLUSH_FULL
)

// KCPLogType is a bit mask of trace events passed to SetLogger.
type KCPLogType int32

// Trace event bits for SetLogger.
const (
	IKCP_LOG_OUTPUT   KCPLogType = 1 << iota // IKCP_LOG_OUTPUT traces every datagram handed to output.
	IKCP_LOG_INPUT                           // IKCP_LOG_INPUT traces every segment parsed by Input.
	IKCP_LOG_SEND                            // IKCP_LOG_SEND traces Send calls.
	IKCP_LOG_RECV                            // IKCP_LOG_RECV traces messages returned by Recv.
	IKCP_LOG_OUT_ACK                         // IKCP_LOG_OUT_ACK traces ACK segments sent.
	IKCP_LOG_OUT_PUSH                        // IKCP_LOG_OUT_PUSH traces data segments sent.
	IKCP_LOG_OUT_WASK                        // IKCP_LOG_OUT_WASK traces window probes sent.
	IKCP_LOG_OUT_WINS                        // IKCP_LOG_OUT_WINS traces window reports sent.
	IKCP_LOG_IN_ACK                          // IKCP_LOG_IN_ACK traces ACK segments received.
	IKCP_LOG_IN_PUSH                         // IKCP_LOG_IN_PUSH traces data segments received.
	IKCP_LOG_IN_WASK                         // IKCP_LOG_IN_WASK traces window probes received.
	IKCP_LOG_IN_WINS                         // IKCP_LOG_IN_WINS traces window reports received.
)

// Groups of trace event bits for SetLogger.
const (
	// IKCP_LOG_OUTPUT_ALL selects every output event.
	IKCP_LOG_OUTPUT_ALL = IKCP_LOG_OUTPUT | IKCP_LOG_OUT_ACK | IKCP_LOG_OUT_PUSH | IKCP_LOG_OUT_WASK | IKCP_LOG_OUT_WINS
	// IKCP_LOG_INPUT_ALL selects every input event.
	IKCP_LOG_INPUT_ALL = IKCP_LOG_INPUT | IKCP_LOG_IN_ACK | IKCP_LOG_IN_PUSH | IKCP_LOG_IN_WASK | IKCP_LOG_IN_WINS
	// IKCP_LOG_ALL selects every event.
	IKCP_LOG_ALL = IKCP_LOG_OUTPUT_ALL | IKCP_LOG_INPUT_ALL | IKCP_LOG_SEND | IKCP_LOG_RECV
)

// output_callback receives each datagram the core emits: buf[:size] holds the
// KCP bytes (len(buf) == size). buf is reused once the callback returns.
type output_callback func(buf []byte, size int)

// logoutput_callback receives trace events: a label and key/value pairs.
type logoutput_callback func(msg string, args ...any)

const (
	// deadState is the value of KCP.state once a segment reached the
	// dead-link transmission count.
	deadState = 0xFFFFFFFF
	// fastackDone marks a segment already fast/early retransmitted; it is not
	// counted again until its RTO fires.
	fastackDone = 0xFFFFFFFF
	// maxFragments is the most fragments one message may have: frg is a byte.
	maxFragments = 255
	// maxWindow is the largest window the 16-bit wnd field can advertise.
	maxWindow = 0xFFFF
	// defaultPersistLimit is how long (ms) a peer may advertise a zero
	// window while data waits for it before the link is declared dead: 3
	// minutes, longer than any application pause we know of, short enough
	// that a peer cannot hold a session and its send window forever.
	defaultPersistLimit = 3 * 60 * 1000
)
