package server

import (
	"bytes"
	"errors"
	"io"
)

// Subprotocols and response headers. OnUpgrade sees the subprotocols a
// client offers (Request.Protocols, straight from the request bytes) and
// may select one (Request.SelectProtocol) with a string of its own, kept
// as it is: no copy, and nothing at all happens when none is offered. It
// may also add header fields to the response, the 101 or a refusal
// (Request.AddHeader: WWW-Authenticate with a 401). The worker writes them
// through respHeader, a HandshakeHeader that lives in the worker, so the
// upgrade allocates nothing for them.

var (
	// ErrProtocolNotOffered: Request.SelectProtocol was given a value the
	// client did not offer. [RFC6455 4.1]: a client that gets a
	// subprotocol it did not ask for MUST fail the connection; none is
	// selected.
	ErrProtocolNotOffered = errors.New("server: subprotocol not offered by the client")

	// ErrBadHeader: Request.AddHeader was given a field name that is not
	// a token, or one the server writes itself, or a value with a control
	// character (CR and LF would inject fields).
	ErrBadHeader = errors.New("server: bad response header field")
)

// Protocols yields, in the client's order of preference, each subprotocol
// offered in the request's Sec-WebSocket-Protocol fields (comma-separated
// tokens, [RFC6455 4.1]; elements that are not tokens are skipped). Range
// over it: for p := range r.Protocols { ... }. Each p is borrowed like
// everything in the Request.
func (r *Request) Protocols(yield func(p []byte) bool) {
	rest := r.header
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		colon := bytes.IndexByte(line, ':')
		if colon != len("Sec-WebSocket-Protocol") || !asciiEqualFold(line[:colon], "Sec-WebSocket-Protocol") {
			continue
		}
		v := line[colon+1:]
		for len(v) > 0 {
			var p []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				p, v = v[:i], v[i+1:]
			} else {
				p, v = v, nil
			}
			if p = bytes.TrimSpace(p); isToken(p) && !yield(p) {
				return
			}
		}
	}
}

// SelectProtocol makes p the connection's subprotocol: the 101 carries it
// in Sec-WebSocket-Protocol and Conn.Subprotocol returns it. p must be one
// of the values the client offered (Protocols; compared exactly); if it
// is not, nothing is selected and the error is ErrProtocolNotOffered. The
// string is kept, not copied: pass your own (a constant), not one made
// from the request's bytes. A later call replaces an earlier one.
func (r *Request) SelectProtocol(p string) error {
	for o := range r.Protocols {
		if string(o) == p {
			r.protocol = p
			return nil
		}
	}
	return ErrProtocolNotOffered
}

// AddHeader adds the field "name: value" to the response: the 101, or
// the refusal when OnUpgrade returns a status (WWW-Authenticate with a
// 401, Retry-After with a 429). Both strings are kept until the response
// is written, not copied. The name must be a token and not one the
// server writes (Upgrade, Connection, Sec-WebSocket-*, Content-Length,
// Content-Type), the value free of control characters; otherwise nothing
// is added and the error is ErrBadHeader. At most 8 fields.
func (r *Request) AddHeader(name, value string) error {
	if r.nhdr == len(r.hdrs) || !isToken([]byte(name)) || serverField(name) || !isFieldValue(value) {
		return ErrBadHeader
	}
	r.hdrs[r.nhdr] = [2]string{name, value}
	r.nhdr++
	return nil
}

// serverField reports whether the server writes the field name itself.
func serverField(name string) bool {
	b := []byte(name)
	for _, f := range [...]string{"Upgrade", "Connection", "Content-Length", "Content-Type"} {
		if len(b) == len(f) && asciiEqualFold(b, f) {
			return true
		}
	}
	const prefix = "Sec-WebSocket-"
	return len(b) >= len(prefix) && asciiEqualFold(b[:len(prefix)], prefix)
}

// isFieldValue: no control characters but HTAB ([RFC9110 5.5]).
func isFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// respHeader writes what OnUpgrade selected and added into the response
// (gobwas/ws calls it for the 101 and for a refusal).
type respHeader struct{ r *Request }

func (h *respHeader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	put := func(s string) {
		if k, err := io.WriteString(w, s); err == nil {
			n += int64(k)
		}
	}
	r := h.r
	if r.protocol != "" && !r.refusing {
		put("Sec-WebSocket-Protocol: ")
		put(r.protocol)
		put("\r\n")
	}
	for _, f := range r.hdrs[:r.nhdr] {
		put(f[0])
		put(": ")
		put(f[1])
		put("\r\n")
	}
	return n, nil
}

// Subprotocol is the subprotocol OnUpgrade selected ("" when none). Like
// Value it stays readable in OnClose and is "" once the connection is gone.
func (h Conn) Subprotocol() string {
	if !h.lockGen() {
		return ""
	}
	var p string
	if h.c.ext != nil {
		p = h.c.ext.protocol
	}
	h.c.mu.Unlock()
	return p
}
