package wsclient

// permessage-deflate ([RFC7692]) on the client, without context takeover
// in either direction: every message is compressed and inflated on its own,
// so a Conn keeps no compression window between messages, and the
// compressor (klauspost/compress's stateless encoder) and the decompressors
// (a sync.Pool) are shared by all connections. The client offers
//
//	permessage-deflate; client_no_context_takeover; server_no_context_takeover
//
// and takes only an answer that keeps the server out of context takeover
// too (see checkDeflateAnswer): inflating a server that refers back into
// earlier messages would need a 32 KiB window per connection, which this
// client does not keep.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// DeflateOffer is the Sec-WebSocket-Extensions value a Conn dialled with
// Options.Deflate sends.
const DeflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// rsv1 is the Per-Message Compressed bit in a frame's first byte ([RFC7692
// 6]: set on the first frame of a compressed message only).
const rsv1 = 0x40

// deflateTail ends every compressed payload fed to a decompressor.
// [RFC7692 7.2.2]: append 0x00 0x00 0xff 0xff before inflating. The empty
// final stored block after it (0x01 0x00 0x00 0xff 0xff) makes a whole
// message end with io.EOF, so that a truncated or corrupt one
// (io.ErrUnexpectedEOF, a CorruptInputError) is told apart from it.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// deflateState is a Conn's compression state: negotiated or not, and the
// buffers it reuses. out belongs to the writer (under wmu); in, src and
// the inflated message to the reader.
type deflateState struct {
	on  bool         // the server accepted the offer
	out zbuf         // the last compressed message, sync flush trimmed
	in  []byte       // the last inflated message (reused)
	zin []byte       // the payload and deflateTail, copied (reused)
	src bytes.Reader // what the decompressor reads: zin, an io.ByteReader so flate adds no bufio
	one [1]byte      // scratch: one byte past the limit means "too big"
}

// Deflate reports whether the connection negotiated permessage-deflate.
func (c *Conn) Deflate() bool { return c.z != nil && c.z.on }

// upgradeRequestDeflate is UpgradeRequest with the deflate offer.
func upgradeRequestDeflate(addr, target, key string) string {
	return strings.TrimSuffix(UpgradeRequestTarget(addr, target, key), "\r\n") +
		"Sec-WebSocket-Extensions: " + DeflateOffer + "\r\n\r\n"
}

// checkExtensions reads the server's Sec-WebSocket-Extensions header lines.
// Without an offer there must be none ([RFC6455 4.1]: the client MUST fail
// the connection if the response names an extension it did not ask for).
// With the deflate offer, none means the server declined (the connection
// then runs plain), one permessage-deflate must pass checkDeflateAnswer,
// and anything else fails the handshake.
func checkExtensions(lines []string, offered bool) (bool, error) {
	var exts []string
	for _, l := range lines {
		for _, e := range strings.Split(l, ",") {
			if e = strings.TrimSpace(e); e != "" {
				exts = append(exts, e)
			}
		}
	}
	if len(exts) == 0 {
		return false, nil
	}
	if !offered {
		return false, fmt.Errorf("extension %q in the answer, none was offered", exts[0])
	}
	if len(exts) > 1 {
		return false, fmt.Errorf("extensions %q in the answer, only permessage-deflate was offered", exts)
	}
	if err := checkDeflateAnswer(exts[0]); err != nil {
		return false, err
	}
	return true, nil
}

// checkDeflateAnswer checks one answered extension against the offer,
// as [RFC7692 5.1] says a client must: it fails on an extension other than
// permessage-deflate, on a parameter not defined for a response, on an
// invalid value, on a parameter twice, and on a configuration this client
// does not support.
func checkDeflateAnswer(ext string) error {
	parts := strings.Split(ext, ";")
	if name := strings.TrimSpace(parts[0]); !strings.EqualFold(name, "permessage-deflate") {
		return fmt.Errorf("extension %q in the answer, only permessage-deflate was offered", name)
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		k, v, hasV := strings.Cut(strings.TrimSpace(p), "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(v), `"`)
		if seen[k] {
			return fmt.Errorf("permessage-deflate answer has %s twice", k)
		}
		seen[k] = true
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
			// [RFC7692 7.1.1]: no value. client_no_context_takeover
			// may be left out: this client never takes its context
			// over, which a server must always accept.
			if hasV {
				return fmt.Errorf("permessage-deflate answer: %s with a value", k)
			}
		case "server_max_window_bits":
			// [RFC7692 7.1.2.1]: 8..15. The server's window may be any
			// size up to 32 KiB: the decompressor takes them all.
			if !validWindowBits(v) {
				return fmt.Errorf("permessage-deflate answer: server_max_window_bits=%q is not 8..15", v)
			}
		case "client_max_window_bits":
			// [RFC7692 7.1.2.2]: a response MUST NOT have it when the
			// offer did not, and this offer does not.
			return errors.New("permessage-deflate answer has client_max_window_bits, which was not offered")
		default:
			return fmt.Errorf("permessage-deflate answer has unknown parameter %q", k)
		}
	}
	if !seen["server_no_context_takeover"] {
		// [RFC7692 7.1.1.1]: a server accepts an offer with
		// server_no_context_takeover by including it in its answer. One
		// that leaves it out keeps its LZ77 window across messages, which
		// this client does not support (it would keep 32 KiB per
		// connection): fail rather than misread the server's messages.
		return errors.New("permessage-deflate answer without server_no_context_takeover: the server would take its context over, which this client does not support")
	}
	return nil
}

// validWindowBits reports whether v is a max_window_bits value: a decimal
// 8..15 without leading zeros ([RFC7692 7.1.2]).
func validWindowBits(v string) bool {
	switch len(v) {
	case 1:
		return v[0] >= '8' && v[0] <= '9'
	case 2:
		return v[0] == '1' && v[1] >= '0' && v[1] <= '5'
	}
	return false
}

// WriteMessage sends payload as one final frame: compressed (RSV1 set)
// when the connection negotiated permessage-deflate and op is text or
// binary, plain otherwise (as WriteFrame). wire is the frame's size on the
// wire, header included. It allocates nothing once the connection's
// buffers have grown to the message size.
func (c *Conn) WriteMessage(op byte, payload []byte) (wire int, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.Deflate() || (op != OpText && op != OpBinary) {
		return c.writeFrameLocked(0x80|op, payload)
	}
	z, err := c.z.out.compress(payload)
	if err != nil {
		return 0, err
	}
	return c.writeFrameLocked(0x80|rsv1|op, z)
}

// zbuf is the compressor's output buffer (an io.Writer for
// flate.StatelessDeflate).
type zbuf struct{ b []byte }

func (z *zbuf) Write(p []byte) (int, error) {
	z.b = append(z.b, p...)
	return len(p), nil
}

var errDeflateTail = errors.New("wsclient: deflate output does not end with a sync flush")

// compress returns payload compressed as [RFC7692 7.2.1] says: DEFLATE
// blocks ending in an empty stored block (a sync flush) whose final
// 0x00 0x00 0xff 0xff is removed. The result aliases z until the next call.
func (z *zbuf) compress(payload []byte) ([]byte, error) {
	z.b = z.b[:0]
	if err := flate.StatelessDeflate(z, payload, false, nil); err != nil {
		return nil, err
	}
	n := len(z.b)
	if n < 4 || !bytes.Equal(z.b[n-4:], deflateTail[:4]) {
		return nil, errDeflateTail
	}
	return z.b[:n-4], nil
}

// decompressors are shared by every connection: one is taken for a
// message and given back when it is inflated.
var decompressors sync.Pool

// ErrInflate is wrapped by ReadMessage's error when a compressed message
// does not inflate (the server sent what is not a DEFLATE stream).
var ErrInflate = errors.New("compressed message does not inflate")

// inflate decompresses one message's payload into the connection's buffer,
// at most MaxFrame bytes: past it the message is refused, with no more
// than MaxFrame bytes ever allocated.
func (z *deflateState) inflate(in []byte) ([]byte, error) {
	// One copy of a message the load generator just read costs nothing
	// next to inflating it, and keeps the reader a plain bytes.Reader.
	z.zin = append(append(z.zin[:0], in...), deflateTail...)
	z.src.Reset(z.zin)
	dec, _ := decompressors.Get().(io.ReadCloser)
	if dec == nil {
		dec = flate.NewReader(&z.src)
	} else if err := dec.(flate.Resetter).Reset(&z.src, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInflate, err)
	}
	defer decompressors.Put(dec)
	out := z.in[:0]
	if cap(out) == 0 {
		out = make([]byte, 0, min(max(4*len(in), 4096), MaxFrame))
	}
	for {
		if len(out) == cap(out) {
			if len(out) >= MaxFrame {
				if n, _ := io.ReadFull(dec, z.one[:]); n > 0 {
					return nil, fmt.Errorf("inflated message exceeds the client's limit of %d bytes", MaxFrame)
				}
				z.in = out
				return out, nil
			}
			out = append(out[:cap(out)], 0)[:len(out)] // grow, keeping len
			out = out[:len(out):min(cap(out), MaxFrame)]
		}
		n, err := dec.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			z.in = out
			return out, nil
		}
		if err != nil {
			z.in = out
			return nil, fmt.Errorf("%w: %v", ErrInflate, err)
		}
	}
}
