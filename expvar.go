package kcp

import (
	"errors"
	"expvar"
	"net"
	"sync/atomic"
)

// ErrExpvarTaken is returned by PublishSnmp when expvar already holds the
// name (expvar.Publish would panic).
var ErrExpvarTaken = errors.New("kcp: expvar name already published")

// PublishSnmp publishes DefaultSnmp through the standard expvar package
// under name (kcptun-style dashboards use "kcp"), so it appears in
// /debug/vars as an object of the 30 counters keyed by their Header names.
// Each read takes a fresh atomic snapshot. It returns ErrExpvarTaken when the
// name is taken (two calls racing for one name can still make expvar panic).
func PublishSnmp(name string) error {
	return publish(name, SnmpVar(DefaultSnmp))
}

// SnmpVar returns an expvar.Var whose value is s's counters as a JSON
// object keyed by Header names, read atomically at each call.
func SnmpVar(s *Snmp) expvar.Var {
	return expvar.Func(func() any {
		m := make(map[string]uint64, snmpColumns)
		for i, p := range s.columns() {
			m[snmpHeader[i]] = atomic.LoadUint64(p)
		}
		return m
	})
}

// SessionVar returns an expvar.Var whose value is s.Stats() as JSON
// (durations in nanoseconds), with the session's conv and peer. Publish it
// with expvar.Publish under a name of your choice; expvar cannot unpublish,
// so prefer ListenerVar for sessions that come and go.
func SessionVar(s *UDPSession) expvar.Var {
	return expvar.Func(func() any { return sessionVarValue(s) })
}

type sessionVarJSON struct {
	Conv   uint32 `json:"conv"`
	Remote string `json:"remote"`
	SessionStats
}

func sessionVarValue(s *UDPSession) sessionVarJSON {
	return sessionVarJSON{Conv: s.conv, Remote: addrString(s.RemoteAddr()), SessionStats: s.Stats()}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// ListenerVar returns an expvar.Var describing l at each read: its address,
// how many sessions it holds (accepted and pending), the datagrams it
// rejected per reason (Stats), its socket's I/O counters (IOStats) and every
// session's Stats. A read costs one Stats call per session; it allocates in
// proportion to the number of sessions.
func ListenerVar(l *Listener) expvar.Var {
	return expvar.Func(func() any {
		sessions, pending := l.snapshotSessions()
		out := struct {
			Addr     string           `json:"addr"`
			Sessions int              `json:"sessions"`
			Pending  int              `json:"pending"`
			Rejected ListenerRejects  `json:"rejected"`
			IO       IOStats          `json:"io"`
			List     []sessionVarJSON `json:"list"`
		}{Addr: addrString(l.Addr()), Sessions: len(sessions), Pending: pending,
			Rejected: l.Stats().Rejected, IO: l.IOStats()}
		out.List = make([]sessionVarJSON, 0, len(sessions))
		for _, s := range sessions {
			out.List = append(out.List, sessionVarValue(s))
		}
		return out
	})
}

// snapshotSessions returns the listener's live sessions and how many of
// them wait for Accept. It takes l.mu alone, never a session's lock.
func (l *Listener) snapshotSessions() ([]*UDPSession, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*UDPSession, 0, len(l.sessions)+len(l.others))
	for _, s := range l.sessions {
		out = append(out, s)
	}
	for _, s := range l.others {
		out = append(out, s)
	}
	return out, len(l.pending)
}

// publish is expvar.Publish without the panic.
func publish(name string, v expvar.Var) error {
	if expvar.Get(name) != nil {
		return ErrExpvarTaken
	}
	expvar.Publish(name, v)
	return nil
}

// Sessions returns the sessions the listener holds now, accepted and
// waiting for Accept, in no particular order: for metrics collectors that
// report every session of a server. The slice is the caller's. Safe for
// concurrent use; it takes the listener's lock briefly, never a session's.
func (l *Listener) Sessions() []*UDPSession {
	s, _ := l.snapshotSessions()
	return s
}
