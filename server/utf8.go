package server

import "unicode/utf8"

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

// utf8Step feeds p to the validator. It returns the new state and false as
// soon as it meets a byte that cannot continue a valid sequence (in the
// chunk that holds it). The message is valid when the final state is 0.
//
// Runes split across chunks go through the byte-at-a-time state machine;
// the whole runes in between go to the standard library's utf8.Valid, which
// is several times faster on long runs.
func utf8Step(st utf8State, p []byte) (utf8State, bool) {
	i := 0
	// Finish a rune begun in an earlier chunk.
	for ; st != 0 && i < len(p); i++ {
		var ok bool
		if st, ok = utf8Byte(st, p[i]); !ok {
			return st, false
		}
	}
	if i == len(p) {
		return st, true
	}
	// Cut before the last rune start in the final four bytes: everything
	// before it must be whole runes, the rest may be a rune the next chunk
	// completes. (Four continuation bytes in a row are invalid anyway.)
	cut := len(p)
	for k := len(p) - 1; k >= i && k >= len(p)-4; k-- {
		if p[k]&0xC0 != 0x80 {
			cut = k
			break
		}
		if k == i || k == len(p)-4 {
			return st, false // stray continuation bytes
		}
	}
	if !utf8.Valid(p[i:cut]) {
		return st, false
	}
	for _, b := range p[cut:] {
		var ok bool
		if st, ok = utf8Byte(st, b); !ok {
			return st, false
		}
	}
	return st, true
}

// utf8Byte advances the state machine by one byte.
func utf8Byte(st utf8State, b byte) (utf8State, bool) {
	if st == 0 {
		switch {
		case b < 0x80:
			return 0, true
		case b >= 0xC2 && b <= 0xDF:
			return utf8Need(1, 0x80, 0xBF), true
		case b == 0xE0:
			return utf8Need(2, 0xA0, 0xBF), true
		case b == 0xED:
			return utf8Need(2, 0x80, 0x9F), true
		case b >= 0xE1 && b <= 0xEF:
			return utf8Need(2, 0x80, 0xBF), true
		case b == 0xF0:
			return utf8Need(3, 0x90, 0xBF), true
		case b >= 0xF1 && b <= 0xF3:
			return utf8Need(3, 0x80, 0xBF), true
		case b == 0xF4:
			return utf8Need(3, 0x80, 0x8F), true
		}
		return st, false // 0x80..0xC1 (stray continuation, overlong), 0xF5..0xFF
	}
	if b < byte(st>>8) || b > byte(st) {
		return st, false
	}
	if n := st >> 16; n > 1 {
		return utf8Need(n-1, 0x80, 0xBF), true
	}
	return 0, true
}
