package wsclient

import "encoding/binary"

// FrameSize returns the whole size of the frame at the start of b and its
// header length, or −1 when b does not hold the whole header yet. A 64-bit
// length past MaxFrame counts as MaxFrame: the caller skips or rejects such
// a frame by its size without ever holding it (the scale client's reader).
func FrameSize(b []byte) (total, hl int) {
	if len(b) < 2 {
		return -1, 0
	}
	n := int(b[1] & 0x7F)
	hl = 2
	switch n {
	case 126:
		if len(b) < 4 {
			return -1, 0
		}
		n, hl = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return -1, 0
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > MaxFrame {
			v = MaxFrame
		}
		n, hl = int(v), 10
	}
	if b[1]&0x80 != 0 {
		hl += 4
	}
	return hl + n, hl
}
