package wsclient

import (
	"fmt"
	"testing"
)

// TestFrameSize: the scale client's reader sizes a frame from its first
// bytes, before it holds the rest: every header form, short headers, the
// mask bit, and a 64-bit length past MaxFrame.
func TestFrameSize(t *testing.T) {
	tests := []struct {
		name      string
		b         []byte
		total, hl int
	}{
		{"empty", nil, -1, 0},
		{"one byte", []byte{0x81}, -1, 0},
		{"7-bit", []byte{0x81, 5}, 7, 2},
		{"7-bit masked", []byte{0x81, 0x80 | 5}, 11, 6},
		{"16-bit short", []byte{0x82, 126, 1}, -1, 0},
		{"16-bit", []byte{0x82, 126, 1, 0}, 260, 4},
		{"64-bit short", []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 1}, -1, 0},
		{"64-bit", []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 65536 + 10, 10},
		{"64-bit masked", []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0}, 65536 + 14, 14},
		{"64-bit past MaxFrame", []byte{0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, MaxFrame + 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, hl := FrameSize(tt.b)
			if total != tt.total || hl != tt.hl {
				t.Fatalf("got %d, %d; want %d, %d", total, hl, tt.total, tt.hl)
			}
		})
	}
	// The size read from a frame AppendFrame wrote is the frame's length,
	// for every header form.
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		for _, masked := range []bool{false, true} {
			f := AppendFrame(nil, OpBinary, make([]byte, n), masked)
			if total, _ := FrameSize(f); total != len(f) {
				t.Errorf("%s: got %d; want %d", fmt.Sprint(n, " masked=", masked), total, len(f))
			}
		}
	}
}
