package server

import "encoding/binary"

// utf8State is an incremental UTF-8 validator state: zero between runes;
// otherwise the number of continuation bytes still expected (bits 16..) and
// the allowed range of the next one (bits 8..15: low, 0..7: high). The range
// encodes RFC 3629's exclusions on the second byte: overlongs (E0, F0),
// surrogates (ED) and code points past U+10FFFF (F4).
//
// [RFC6455 8.1]: When an endpoint is to interpret a byte stream as UTF-8 but
// finds that the byte stream is not, in fact, a valid UTF-8 stream, that
// endpoint MUST _Fail the WebSocket Connection_. Checking incrementally lets
// a fragmented text message fail at its first invalid byte.
type utf8State = uint32

func utf8Need(n, lo, hi uint32) utf8State { return n<<16 | lo<<8 | hi }

// utf8Step feeds p to the validator. It returns the new state and false at
// the first byte that cannot continue a valid sequence. The message is valid
// when the final state is 0.
func utf8Step(st utf8State, p []byte) (utf8State, bool) {
	i := 0
	for i < len(p) {
		if st == 0 {
			// Fast path over ASCII, eight bytes at a time.
			for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 == 0 {
				i += 8
			}
			if i == len(p) {
				break
			}
			b := p[i]
			i++
			switch {
			case b < 0x80:
			case b >= 0xC2 && b <= 0xDF:
				st = utf8Need(1, 0x80, 0xBF)
			case b == 0xE0:
				st = utf8Need(2, 0xA0, 0xBF)
			case b == 0xED:
				st = utf8Need(2, 0x80, 0x9F)
			case b >= 0xE1 && b <= 0xEF:
				st = utf8Need(2, 0x80, 0xBF)
			case b == 0xF0:
				st = utf8Need(3, 0x90, 0xBF)
			case b >= 0xF1 && b <= 0xF3:
				st = utf8Need(3, 0x80, 0xBF)
			case b == 0xF4:
				st = utf8Need(3, 0x80, 0x8F)
			default: // 0x80..0xC1 (stray continuation, overlong), 0xF5..0xFF
				return st, false
			}
			continue
		}
		b := p[i]
		if b < byte(st>>8) || b > byte(st) {
			return st, false
		}
		i++
		if n := st >> 16; n > 1 {
			st = utf8Need(n-1, 0x80, 0xBF)
		} else {
			st = 0
		}
	}
	return st, true
}
