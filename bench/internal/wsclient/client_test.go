package wsclient

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
)

func TestMaskBytes(t *testing.T) {
	for n := 0; n < 40; n++ {
		for pos := 0; pos < 4; pos++ {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			want := append([]byte(nil), p...)
			key := uint32(0xA1B2C3D4)
			var k [4]byte
			binary.BigEndian.PutUint32(k[:], key)
			for i := range want {
				want[i] ^= k[(pos+i)&3]
			}
			MaskBytes(p, key, pos)
			if !bytes.Equal(p, want) {
				t.Fatalf("n=%d pos=%d: got %x want %x", n, pos, p, want)
			}
		}
	}
}

// TestReadFrameMaskedAndFragmented feeds the reader a masked frame (as
// rawecho sends back), a ping, and a fragmented text message.
func TestReadFrameMaskedAndFragmented(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &Conn{NC: a, BR: bufio.NewReader(a)}
	srv := &Conn{NC: b, BR: bufio.NewReader(b)}
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	go func() {
		srv.WriteFrame(OpBinary, payload) // masked, 16-bit length
		srv.WriteFrame(OpPing, []byte("p"))
		b.Write([]byte{0x01, 0x03, 'a', 'b', 'c'}) // text, not final, unmasked
		b.Write([]byte{0x80, 0x02, 'd', 'e'})      // continuation, final
	}()
	go io.Copy(io.Discard, srv.BR) // the pong
	op, p, err := c.ReadMessage()
	if err != nil || op != OpBinary || !bytes.Equal(p, payload) {
		t.Fatalf("masked frame: op %d err %v equal %v", op, err, bytes.Equal(p, payload))
	}
	op, p, err = c.ReadMessage()
	if err != nil || op != OpText || string(p) != "abcde" {
		t.Fatalf("fragmented: op %d %q %v", op, p, err)
	}
}

// TestAppendFrame reads back what the soak's raw frames encode, for the
// three length encodings, masked and not.
func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 65535, 65536} {
		for _, masked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/masked=%v", n, masked), func(t *testing.T) {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(i*7 + n)
				}
				b := AppendFrame(nil, OpBinary, p, masked)
				c := &Conn{BR: bufio.NewReader(bytes.NewReader(b))}
				f, err := c.ReadFrame()
				if err != nil || !f.Fin || f.Op != OpBinary || !bytes.Equal(f.Payload, p) {
					t.Fatalf("got fin %v op %d err %v equal %v", f.Fin, f.Op, err, bytes.Equal(f.Payload, p))
				}
				if masked != (b[1]&0x80 != 0) {
					t.Fatalf("mask bit %v; want %v", b[1]&0x80 != 0, masked)
				}
			})
		}
	}
	h := AppendHeader(nil, 0x80|OpBinary, 1<<20, true)
	if len(h) != 14 || h[1] != 0x80|127 || binary.BigEndian.Uint64(h[2:10]) != 1<<20 {
		t.Fatalf("hog header %x", h)
	}
}
