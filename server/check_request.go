package server

import (
	"bytes"
	"encoding/base64"
)

// Checks on the buffered HTTP request that gobwas/ws's Upgrader does not
// make: size limits, the exact form of Sec-WebSocket-Key, the Origin
// allow-list, and an Allow header on 405. They run on the complete request
// header before the Upgrader sees it, allocate nothing, and answer with a
// canned response.

const (
	// maxLineSize bounds the request line and each header line.
	maxLineSize = 8 << 10
	// maxHeaders bounds the number of header lines.
	maxHeaders = 64
)

func cannedResponse(status, extra, body string) []byte {
	return []byte("HTTP/1.1 " + status + "\r\n" + extra +
		"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
		"Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// strictBase64 rejects non-zero padding bits (Strict returns a copy: make
// it once, not per request).
var strictBase64 = base64.StdEncoding.Strict()

var (
	respURITooLong = cannedResponse("414 URI Too Long", "",
		"request line is longer than 8 KiB\n")
	respLineTooLarge = cannedResponse("431 Request Header Fields Too Large", "",
		"a header line is longer than 8 KiB\n")
	respTooManyHeaders = cannedResponse("431 Request Header Fields Too Large", "",
		"more than 64 header lines\n")
	respTooLarge = cannedResponse("431 Request Header Fields Too Large", "",
		"request header is larger than 32 KiB\n")
	respBadMethod = cannedResponse("405 Method Not Allowed", "Allow: GET\r\n",
		"a WebSocket handshake is a GET request\n")
	respBadKey = cannedResponse("400 Bad Request", "",
		"Sec-WebSocket-Key must be base64 of 16 bytes\n")
	respMalformed = cannedResponse("400 Bad Request", "",
		"malformed header line\n")
	respMalformedLine = cannedResponse("400 Bad Request", "",
		"malformed request line\n")
	respBadOrigin = cannedResponse("403 Forbidden", "",
		"origin not allowed\n")
)

// checkRequest validates a complete request header (ending in CRLF CRLF)
// for Config.Path and returns the response that refuses it, or nil. Line
// lengths and the header count were enforced as it arrived (scanRequest).
func (s *Server) checkRequest(req []byte) []byte {
	line, rest := nextLine(req)
	// request-line = method SP request-target SP HTTP-version [RFC9112 3]
	method, target, proto, ok := splitRequestLine(line)
	if !ok || len(target) == 0 || !isHTTPVersion(proto) {
		return respMalformedLine
	}
	// [RFC6455 4.1]: the method of the request MUST be GET.
	if string(method) != "GET" {
		return respBadMethod
	}
	var origin, host []byte
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue // malformed: the Upgrader answers 400
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		// [RFC9112 5.1, 5.2]: the field name is a token: no whitespace
		// before the colon, no obsolete line folding; a server MUST reject
		// such a request with 400.
		if !isToken(name) {
			return respMalformed
		}
		switch {
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			// [RFC6455 4.2.1]: a base64-encoded value that, when decoded,
			// is 16 bytes in length.
			var key [18]byte
			if len(value) != 24 {
				return respBadKey
			}
			if k, err := strictBase64.Decode(key[:], value); err != nil || k != 16 {
				return respBadKey
			}
		case bytes.EqualFold(name, []byte("Origin")):
			origin = value
		case bytes.EqualFold(name, []byte("Host")):
			host = value
		}
	}
	if origin != nil && !s.originAllowed(origin, host) {
		return respBadOrigin
	}
	return nil
}

// originAllowed says whether a browser page from origin may connect to
// host (the request's Host header): its own origin always, whatever the
// scheme, so that a page behind a TLS-terminating proxy (https, while the
// hop to us is http) still works; the listed ones (Config.Origins) as
// well, compared whole ignoring ASCII case (scheme and host are
// case-insensitive); every one when the list holds "*". A request without
// Origin is not a browser's and never reaches here.
func (s *Server) originAllowed(origin, host []byte) bool {
	for _, o := range s.cfg.Origins {
		if o == "*" || bytes.EqualFold(origin, []byte(o)) {
			return true
		}
	}
	return sameOrigin(origin, host)
}

// sameOrigin reports whether origin ([RFC6454 6.1]: scheme "://" host
// [":" port], nothing after) names host, port included, as the Host header
// gives it. "null" (an opaque origin: a sandboxed frame, a file) names no
// host.
func sameOrigin(origin, host []byte) bool {
	i := bytes.Index(origin, []byte("://"))
	if i <= 0 || len(host) == 0 {
		return false
	}
	return bytes.EqualFold(origin[i+3:], host)
}

// nextLine splits off one CRLF-terminated line (the CRLF removed).
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isToken reports whether b is an RFC 9110 token (1*tchar).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tchar[c] {
			return false
		}
	}
	return true
}

var tchar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// splitRequestLine splits "METHOD SP target SP version" (exactly two single
// spaces, RFC 9112 3).
func splitRequestLine(line []byte) (method, target, proto []byte, ok bool) {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return nil, nil, nil, false
	}
	j := bytes.IndexByte(line[i+1:], ' ')
	if j < 0 {
		return nil, nil, nil, false
	}
	method, target, proto = line[:i], line[i+1:i+1+j], line[i+2+j:]
	return method, target, proto, isToken(method) && bytes.IndexByte(proto, ' ') < 0
}

// isHTTPVersion reports whether v is "HTTP/" DIGIT "." DIGIT (case-sensitive,
// RFC 9112 2.3).
func isHTTPVersion(v []byte) bool {
	return len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7])
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// respReason maps a canned refusal to its reason.
func respReason(resp []byte) RejectReason {
	switch &resp[0] {
	case &respBadMethod[0]:
		return RejectMethod
	case &respURITooLong[0]:
		return RejectURITooLong
	case &respLineTooLarge[0], &respTooManyHeaders[0], &respTooLarge[0]:
		return RejectHeaderTooLarge
	case &respBadOrigin[0]:
		return RejectOrigin
	}
	return RejectBadRequest
}
