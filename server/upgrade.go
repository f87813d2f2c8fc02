package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/gobwas/ws"
)

// The handshake. A new connection starts in phaseHandshake; the worker reads
// whatever has arrived into its buffer and looks for the end of the HTTP
// header. A request that arrives in pieces (even one byte per write) is kept
// in a pooled buffer between reads, never by a blocked worker. Once the
// header is complete:
//
//   - a request for Config.Path goes to gobwas/ws's zero-copy Upgrader,
//     reading from the buffered bytes and writing the response through the
//     connection's non-blocking queue; bytes after the header (a client may
//     send its first frame together with the handshake) are parsed as frames;
//   - any other request is handed to net/http with every byte already read
//     replayed in front of the socket.

// maxRequestSize bounds the buffered HTTP request header (the whole of it;
// each line is also bounded by maxLineSize).
const maxRequestSize = 32 << 10

var (
	errConnLimit = ws.RejectConnectionError(
		ws.RejectionStatus(http.StatusServiceUnavailable),
		ws.RejectionReason("server: connection limit reached"),
	)
	errWrite = errors.New("server: write failed")
)

func (w *worker) initUpgrader() {
	w.up = ws.Upgrader{OnBeforeUpgrade: w.beforeUpgrade}
	if w.s.cfg.Deflate {
		w.up.ExtensionCustom = w.extensions // deflate.go
	}
	w.hsrw.w = w
	w.resp.r = &w.req
}

// beforeUpgrade takes a MaxConns slot, after the request proved valid.
func (w *worker) beforeUpgrade() (ws.HandshakeHeader, error) {
	if w.s.open.Add(1) > int64(w.s.cfg.MaxConns) {
		w.s.dropOpen()
		return nil, errConnLimit
	}
	w.reserved = true
	if hook := w.s.cfg.OnUpgrade; hook != nil {
		value, status := w.callUpgrade(hook)
		if status != 0 {
			w.refused = true
			w.req.refusing = true
			if w.req.nhdr > 0 {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(status), ws.RejectionHeader(&w.resp))
			}
			return nil, ws.RejectConnectionError(ws.RejectionStatus(status))
		}
		w.value = value
		if w.req.protocol != "" || w.req.nhdr > 0 {
			return &w.resp, nil
		}
	}
	return nil, nil
}

// callUpgrade runs Config.OnUpgrade; a panic refuses the request with 500.
func (w *worker) callUpgrade(hook func(*Request) (any, int)) (value any, status int) {
	defer func() {
		if r := recover(); r != nil {
			w.s.stats.appPanics.Add(1)
			w.s.cfg.OnError(w.s.panicError("OnUpgrade", w.hsrw.c, r))
			value, status = nil, http.StatusInternalServerError
			w.req.nhdr = 0 // a 500 carries nothing the failed hook added
		}
	}()
	value, status = hook(&w.req)
	if status != 0 && (status < 300 || status > 599) {
		// Not a refusal: a bug in the application, which would otherwise
		// show only as the client's 500.
		c := w.hsrw.c
		w.s.cfg.OnError(fmt.Errorf("server: OnUpgrade returned status %d (fd %d, %v), which is not a refusal: return 300-599 to refuse, 0 to accept; answered 500",
			status, c.fd, c.remoteAddr()))
		value, status = nil, http.StatusInternalServerError
		w.req.nhdr = 0
	}
	return value, status
}

// handshakeRW is what the Upgrader reads from and writes to: the buffered
// request bytes, and the connection's queue.
type handshakeRW struct {
	r      bytes.Reader
	w      *worker
	c      *conn
	failed bool
}

func (h *handshakeRW) Read(p []byte) (int, error) { return h.r.Read(p) }

func (h *handshakeRW) Write(p []byte) (int, error) {
	if !h.w.write(h.c, p, nil) {
		h.failed = true
		return 0, errWrite
	}
	return len(p), nil
}

// readHandshake reads request bytes; see the comment at the top of the file.
func (w *worker) readHandshake(c *conn) (int, bool, bool) {
	k := 0
	if c.hs != nil {
		k = copy(w.buf, *c.hs)
	}
	n, errno := w.readFD(c.fd, w.buf[k:maxRequestSize])
	ok, again := readOutcome(n, errno)
	if !ok || again {
		return n, ok, again
	}
	data := w.buf[:k+n]
	end, resp := scanRequest(c, data)
	if resp == nil && end < 0 && len(data) >= maxRequestSize {
		resp = respTooLarge
	}
	if resp != nil {
		w.s.stats.reject(respReason(resp))
		return n, w.reject(c, resp), false
	}
	if end < 0 {
		if c.hs == nil || cap(*c.hs) < len(data) {
			putBuf(c.hs)
			c.hs = getBuf(len(data))
		}
		*c.hs = append((*c.hs)[:0], data...)
		return n, true, false
	}
	putBuf(c.hs)
	c.hs = nil
	// Gather the answer (the 101, the greeting OnOpen sends, echoes of
	// frames that came with the request) into one write(2).
	w.corkConn = c
	return n, w.uncork(c, w.handleRequest(c, data[:end], data[end:])), false
}

// scanRequest goes over the lines of the buffered request that completed
// since the last read (c.hsScan is where the unfinished line starts, so a
// request trickled byte by byte is scanned once, not once per byte) and
// enforces the line and header limits, whatever the segmentation. It
// returns the end of the header (just past the empty line) or -1, or the
// response that refuses the request.
func scanRequest(c *conn, data []byte) (int, []byte) {
	pos := int(c.hsScan)
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			break
		}
		line := data[pos : pos+i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if resp := lineTooLong(c.hsLines, len(line)); resp != nil {
			return -1, resp
		}
		start := pos
		pos += i + 1
		if len(line) == 0 {
			// [RFC9112 2.2]: one empty line before the request line is
			// ignored; any other empty line ends the header.
			if c.hsLines > 0 || start > 0 {
				return pos, nil
			}
			continue
		}
		c.hsLines++
		if c.hsLines > 1+maxHeaders {
			return -1, respTooManyHeaders
		}
	}
	c.hsScan = uint16(pos)
	// The unfinished line: at most maxLineSize bytes plus its CR.
	if tail := data[pos:]; len(tail) > maxLineSize && !(len(tail) == maxLineSize+1 && tail[maxLineSize] == '\r') {
		return -1, lineTooLong(c.hsLines, len(tail))
	}
	return -1, nil
}

func lineTooLong(lines uint8, n int) []byte {
	switch {
	case n <= maxLineSize:
		return nil
	case lines == 0:
		return respURITooLong
	}
	return respLineTooLarge
}

// handleRequest routes a complete request header.
func (w *worker) handleRequest(c *conn, req, rest []byte) bool {
	s := w.s
	path := requestPath(req)
	extra := !bytes.Equal(path, []byte(s.cfg.Path))
	if extra && !s.upgradesPath(path) {
		return w.handoff(c, req[:len(req)+len(rest)])
	}
	// The one empty line scanRequest allows before the request line.
	if line, after := nextLine(req); len(line) == 0 {
		req = after
	}
	if resp := s.checkRequest(req); resp != nil {
		s.stats.reject(respReason(resp))
		return w.reject(c, resp)
	}
	line, header := nextLine(req)
	_, target, _, _ := splitRequestLine(line)
	w.req = Request{target: target, header: header}
	w.value, w.refused, w.deflateOK = nil, false, false
	w.hsrw.c, w.hsrw.failed, w.reserved = c, false, false
	w.hsrw.r.Reset(req)
	_, err := w.up.Upgrade(&w.hsrw)
	protocol := w.req.protocol
	w.hsrw.c, w.req = nil, Request{}
	value := w.value
	w.value = nil
	if w.hsrw.failed {
		if w.reserved {
			s.dropOpen()
		}
		return false
	}
	if err != nil {
		// The Upgrader has written the error response (400, 405, 426,
		// 503, ...); close once it is out.
		if w.reserved {
			s.dropOpen()
		}
		if w.refused {
			s.stats.reject(RejectApp)
		} else {
			s.stats.reject(upgraderReason(err))
		}
		w.enterClosing(c, false, 0)
		return true
	}
	s.stats.upgraded.Add(1)
	s.hsList.remove(c)
	c.phase = phaseOpen
	c.seen.Store(w.turnMs())
	if value != nil || protocol != "" || extra {
		c.mu.Lock()
		ext := c.extLocked()
		ext.value, ext.protocol, ext.noPush = value, protocol, extra
		c.mu.Unlock()
	}
	// The conn joins the wheel (the set Broadcast walks) before OnOpen, so
	// a client that got the 101 is reached by every later broadcast; the
	// wheel's periodic pushes skip it until OnOpen returns, so what OnOpen
	// sends (a greeting) goes before the first of them.
	c.mu.Lock()
	c.opening = true
	c.deflate = w.deflateOK
	c.mu.Unlock()
	s.wheel.add(c)
	panicked := s.callOpen(c)
	c.mu.Lock()
	c.opening = false
	c.mu.Unlock()
	if !w.afterApp(c, panicked) {
		return false
	}
	return w.parseFrames(c, rest)
}

// upgradesPath reports whether path is one of Config.Paths.
func (s *Server) upgradesPath(path []byte) bool {
	for _, p := range s.cfg.Paths {
		if bytes.Equal(path, []byte(p)) {
			return true
		}
	}
	return false
}

// reject writes a canned HTTP response and closes after it.
func (w *worker) reject(c *conn, resp []byte) bool {
	if !w.write(c, resp, nil) {
		return false
	}
	w.enterClosing(c, false, 0)
	return true
}

// requestPath returns the path of the request line ("GET /ws?x HTTP/1.1"
// gives "/ws"), or nil.
func requestPath(req []byte) []byte {
	line, rest := nextLine(req)
	if len(line) == 0 {
		line, _ = nextLine(rest)
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return nil
	}
	uri := line[sp+1:]
	if i := bytes.IndexByte(uri, ' '); i >= 0 {
		uri = uri[:i]
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// respHTTPLimit refuses a plain HTTP request past Config.MaxHTTPConns.
var respHTTPLimit = cannedResponse("503 Service Unavailable", "",
	"too many HTTP requests in progress\n")

// handoff gives the connection to the net/http server: the descriptor leaves
// the poller and the table, becomes a net.Conn (net.FileConn dups it, then
// the original is closed, so it is still one descriptor), and the bytes
// already read are replayed before the socket's. It returns false with
// w.gone set (the conn struct is no longer ours), unless MaxHTTPConns
// connections are already handed off: then c stays ours and is refused
// like a bad handshake.
func (w *worker) handoff(c *conn, data []byte) bool {
	s := w.s
	// Reserve the slot first, so that the check and the count are one
	// atomic step. Until detach, the descriptor is counted in both live and
	// httpConns.
	if s.httpConns.Add(1) > int64(s.cfg.MaxHTTPConns) {
		s.httpConns.Add(-1)
		s.stats.reject(RejectHTTPLimit)
		return w.reject(c, respHTTPLimit)
	}
	prefix := bytes.Clone(data)
	fd := c.fd
	// The request keeps the deadline it had since the accept; read it
	// before detach gives c back to the table.
	readBy := s.epoch.Add(c.dlDeadline)
	s.detach(c)
	w.gone = true
	f := os.NewFile(uintptr(fd), "http")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		s.httpConns.Add(-1)
		s.cfg.OnError(err)
		return false
	}
	s.stats.httpHandoffs.Add(1)
	// Set here too, not only through net/http's calls: the deadline holds
	// while the conn waits in the bridge.
	nc.SetReadDeadline(readBy)
	s.httpLn.deliver(&prefixConn{Conn: nc, prefix: prefix, readBy: readBy, count: &s.httpConns})
	return false
}
