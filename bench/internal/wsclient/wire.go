package wsclient

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	mrand "math/rand/v2"
)

// Raw frames and upgrade keys, for clients that must write what a
// well-behaved client never would (soak's hostile behaviours).

// upgradeKey is a fresh random Sec-WebSocket-Key.
func UpgradeKey() string {
	var raw [16]byte
	rand.Read(raw[:])
	return base64.StdEncoding.EncodeToString(raw[:])
}

// appendFrame appends a final frame with opcode op; masked with a random key
// when masked is set. payload is copied, never changed.
func AppendFrame(dst []byte, op byte, payload []byte, masked bool) []byte {
	dst = AppendHeader(dst, 0x80|op, uint64(len(payload)), masked)
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		key := binary.BigEndian.Uint32(dst[start-4:])
		MaskBytes(dst[start:], key, 0)
	}
	return dst
}

// appendHeader appends a frame header with first byte b0 and payload length
// n, with a random mask key when masked is set.
func AppendHeader(dst []byte, b0 byte, n uint64, masked bool) []byte {
	var m byte
	if masked {
		m = 0x80
	}
	dst = append(dst, b0)
	switch {
	case n < 126:
		dst = append(dst, m|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, m|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if masked {
		dst = binary.BigEndian.AppendUint32(dst, mrand.Uint32())
	}
	return dst
}

// writeRaw writes bytes that are not a whole frame, under the write lock.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.NC.Write(b)
	return err
}

// closeCode is the status code of a Close frame's payload (0 when absent).
func CloseCode(p []byte) int {
	if len(p) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(p))
}
