package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// The reference for utf8Step is unicode/utf8: Valid for the verdict, and
// DecodeRune/FullRune for the position of the first byte that cannot be
// part of any valid UTF-8 text.

// utf8TestFirstBad returns the index of the first byte of p at which no
// valid UTF-8 text can continue p's prefix, or -1 when p is valid or only a
// truncated (still completable) rune at its end.
func utf8TestFirstBad(p []byte) int {
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if r != utf8.RuneError || size > 1 {
			i += size
			continue
		}
		if !utf8.FullRune(p[i:]) {
			return -1 // a valid but incomplete rune ends p
		}
		// p[i:] starts an invalid sequence. Its longest prefix that could
		// still begin a rune is k-1 bytes; byte i+k-1 is the bad one.
		k := 1
		for !utf8.FullRune(p[i : i+k]) {
			k++
		}
		return i + k - 1
	}
	return -1
}

// utf8TestWhole feeds p in one call.
func utf8TestWhole(p []byte) bool {
	st, ok := utf8Step(0, p)
	return ok && st == 0
}

// utf8TestChunks feeds p in the given chunks. It returns the verdict and the
// index of the chunk that failed (-1 if none).
func utf8TestChunks(chunks [][]byte) (bool, int) {
	var st utf8State
	for i, c := range chunks {
		var ok bool
		st, ok = utf8Step(st, c)
		if !ok {
			return false, i
		}
	}
	return st == 0, -1
}

// utf8TestSplit cuts p into chunks at random points (empty chunks included).
func utf8TestSplit(rng *rand.Rand, p []byte) [][]byte {
	var chunks [][]byte
	for len(p) > 0 {
		n := rng.IntN(min(len(p), 9) + 1) // 0..9 bytes
		if rng.IntN(8) == 0 {
			n = rng.IntN(len(p) + 1)
		}
		chunks = append(chunks, p[:n])
		p = p[n:]
	}
	return append(chunks, nil)
}

// utf8TestCheck compares utf8Step with the reference on p: fed whole, one
// byte at a time (failing exactly at the first bad byte), and in the given
// chunks (failing in the chunk holding the first bad byte).
func utf8TestCheck(t *testing.T, p []byte, chunks [][]byte) {
	t.Helper()
	want := utf8.Valid(p)
	if got := utf8TestWhole(p); got != want {
		t.Fatalf("utf8Step(% x) whole: got valid=%v; want %v", p, got, want)
	}

	bad := utf8TestFirstBad(p)
	if bad >= 0 && want {
		t.Fatalf("reference disagrees with itself on % x: firstBad=%d, Valid=%v", p, bad, want)
	}
	// Byte by byte: fail exactly at bad.
	var st utf8State
	failAt := -1
	for i := range p {
		var ok bool
		if st, ok = utf8Step(st, p[i:i+1]); !ok {
			failAt = i
			break
		}
	}
	if failAt != bad {
		t.Fatalf("utf8Step(% x) byte by byte: failed at %d; want %d", p, failAt, bad)
	}
	if bad < 0 && (st == 0) != want {
		t.Fatalf("utf8Step(% x) byte by byte: final state %#x; want valid=%v", p, st, want)
	}

	// The given chunks.
	got, failChunk := utf8TestChunks(chunks)
	if got != want {
		t.Fatalf("utf8Step(% x) in chunks %q: got valid=%v; want %v", p, chunks, got, want)
	}
	if bad >= 0 {
		off, wantChunk := 0, -1
		for i, c := range chunks {
			if bad < off+len(c) {
				wantChunk = i
				break
			}
			off += len(c)
		}
		if failChunk != wantChunk {
			t.Fatalf("utf8Step(% x) in chunks %q: failed in chunk %d; want chunk %d (byte %d)",
				p, chunks, failChunk, wantChunk, bad)
		}
	}
}

// utf8TestPieces are building blocks for generated inputs: valid runes at
// every boundary, and every kind of invalid or truncated sequence.
var utf8TestPieces = [][]byte{
	// Valid.
	[]byte("a"), []byte("\x00"), []byte("\x7F"),
	[]byte("\xC2\x80"), []byte("\xDF\xBF"), // U+0080, U+07FF
	[]byte("\xE0\xA0\x80"), []byte("\xEF\xBF\xBF"), // U+0800, U+FFFF
	[]byte("\xEF\xBF\xBE"), []byte("\xEF\xBF\xBD"), // U+FFFE, U+FFFD
	[]byte("\xED\x9F\xBF"), []byte("\xEE\x80\x80"), // U+D7FF, U+E000
	[]byte("\xF0\x90\x80\x80"), []byte("\xF4\x8F\xBF\xBF"), // U+10000, U+10FFFF
	[]byte("\xF3\xBF\xBF\xBF"), []byte("\xF1\x80\x80\x80"),
	[]byte("hello, world"), []byte("Grüße 世界 🌍"),
	// Surrogates.
	[]byte("\xED\xA0\x80"), []byte("\xED\xBF\xBF"), []byte("\xED\xB0\x80"),
	// Overlongs.
	[]byte("\xC0\x80"), []byte("\xC1\xBF"), []byte("\xE0\x80\x80"), []byte("\xE0\x9F\xBF"),
	[]byte("\xF0\x80\x80\x80"), []byte("\xF0\x8F\xBF\xBF"),
	// Beyond U+10FFFF, invalid lead bytes.
	[]byte("\xF4\x90\x80\x80"), []byte("\xF5\x80\x80\x80"), []byte("\xF7\xBF\xBF\xBF"),
	[]byte("\xF8\x88\x80\x80\x80"), []byte("\xFE"), []byte("\xFF"),
	// Stray continuation bytes.
	[]byte("\x80"), []byte("\xBF"), []byte("\x80\x80"),
	// Truncated sequences.
	[]byte("\xC2"), []byte("\xE0\xA0"), []byte("\xE2\x82"), []byte("\xF0\x90"),
	[]byte("\xF0\x90\x80"), []byte("\xF4\x8F\xBF"), []byte("\xED\x9F"),
	// A lead byte followed by ASCII.
	[]byte("\xE2\x28\xA1"), []byte("\xC3\x28"), []byte("\xF0\x28\x8C\xBC"),
}

// utf8TestGen returns a random input of up to about 64 bytes.
func utf8TestGen(rng *rand.Rand) []byte {
	var p []byte
	switch rng.IntN(4) {
	case 0: // random bytes
		p = make([]byte, rng.IntN(40))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
	case 1: // random valid runes, possibly spoiled below
		for range rng.IntN(20) {
			var r rune
			switch rng.IntN(5) {
			case 0:
				r = rune(rng.IntN(0x80))
			case 1:
				r = rune(0x80 + rng.IntN(0x800-0x80))
			case 2:
				r = rune(0x800 + rng.IntN(0x10000-0x800))
			case 3:
				r = rune(0x10000 + rng.IntN(0x110000-0x10000))
			default:
				r = []rune{0xFFFE, 0xFFFF, 0x10FFFF, 0xD7FF, 0xE000, 0xFFFD, 0x10000}[rng.IntN(7)]
			}
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			p = utf8.AppendRune(p, r)
		}
	default: // pieces
		for range rng.IntN(8) {
			p = append(p, utf8TestPieces[rng.IntN(len(utf8TestPieces))]...)
		}
	}
	// Sometimes spoil it: drop a byte, flip a bit, cut the end, add ASCII.
	if len(p) > 0 {
		switch rng.IntN(6) {
		case 0:
			i := rng.IntN(len(p))
			p = append(p[:i], p[i+1:]...)
		case 1:
			p[rng.IntN(len(p))] ^= 1 << rng.IntN(8)
		case 2:
			p = p[:rng.IntN(len(p))]
		case 3:
			p = append(p, bytes.Repeat([]byte("x"), rng.IntN(20))...)
		}
	}
	return p
}

func TestUTF8StepMatchesStdlib(t *testing.T) {
	// Every piece alone, and every pair, exhaustively.
	for _, a := range utf8TestPieces {
		utf8TestCheck(t, a, [][]byte{a})
		for _, b := range utf8TestPieces {
			p := append(append([]byte(nil), a...), b...)
			utf8TestCheck(t, p, [][]byte{a, b})
		}
	}

	// All 1- and 2-byte inputs; 3-byte inputs over the interesting bytes.
	for i := range 256 {
		p := []byte{byte(i)}
		utf8TestCheck(t, p, [][]byte{p})
		for j := range 256 {
			p := []byte{byte(i), byte(j)}
			utf8TestCheck(t, p, [][]byte{p[:1], p[1:]})
		}
	}
	edges := []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
		0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	for _, a := range edges {
		for _, b := range edges {
			for _, c := range edges {
				for _, d := range edges {
					p := []byte{a, b, c, d}
					utf8TestCheck(t, p, [][]byte{p[:1], p[1:3], p[3:]})
				}
			}
		}
	}

	// Random inputs, whole and in random chunks.
	rng := rand.New(rand.NewPCG(11, 12))
	for range 100_000 {
		p := utf8TestGen(rng)
		utf8TestCheck(t, p, utf8TestSplit(rng, p))
	}

	// Long inputs: the eight-byte ASCII fast path must hand over correctly
	// at every alignment.
	for n := range 24 {
		for _, tail := range utf8TestPieces {
			p := append(bytes.Repeat([]byte("A"), n), tail...)
			p = append(p, "BCDEFGHIJ"...)
			utf8TestCheck(t, p, [][]byte{p})
			utf8TestCheck(t, p, utf8TestSplit(rng, p))
		}
	}
}

// A valid prefix then one byte that can never appear in UTF-8: feeding the
// prefix succeeds (ok, possibly inside a rune), and feeding the byte fails.
func TestUTF8StepFailsAtFirstInvalidByte(t *testing.T) {
	prefixes := []string{"", "abc", "héllo", "世界", "🌍", "abcdefghijklmnopqrstuvwxyz",
		"\xE2\x82", "\xF0\x9F\x8C", "\xC3", "aaaaaaa\xE4"}
	for _, prefix := range prefixes {
		for _, badByte := range []byte{0xFF, 0xFE, 0xC0, 0xC1, 0xF5} {
			t.Run(fmt.Sprintf("%q+%#x", prefix, badByte), func(t *testing.T) {
				st, ok := utf8Step(0, []byte(prefix))
				if !ok {
					t.Fatalf("utf8Step(%q): got ok=false; want true", prefix)
				}
				if _, ok := utf8Step(st, []byte{badByte}); ok {
					t.Fatalf("utf8Step(%q then %#x): got ok=true; want false", prefix, badByte)
				}
				// The same, with a valid tail behind the bad byte in the
				// same chunk.
				if _, ok := utf8Step(st, []byte{badByte, 'a', 'b'}); ok {
					t.Fatalf("utf8Step(%q then %#x 'ab'): got ok=true; want false", prefix, badByte)
				}
			})
		}
	}
}

func FuzzUTF8Step(f *testing.F) {
	for _, p := range utf8TestPieces {
		f.Add(p, []byte{1})
	}
	f.Add([]byte("hello, world"), []byte{3, 0, 5})
	f.Add([]byte("Grüße, 世界! 🌍"), []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte("abcdefgh\xED\xA0\x80"), []byte{9})
	f.Add([]byte("abcdefg\xF4\x90\x80\x80"), []byte{8, 1})
	f.Add([]byte("\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xEF\xBF\xBE"), []byte{2, 2, 2})
	f.Fuzz(func(t *testing.T, p []byte, cuts []byte) {
		// cuts gives the chunk lengths in turn (mod 17); 0 makes an
		// empty chunk.
		var chunks [][]byte
		rest := p
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(int(cuts[i%len(cuts)]%17), len(rest))
			}
			if i > 4*len(p)+4 { // all-zero cuts: stop making empty chunks
				n = len(rest)
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		utf8TestCheck(t, p, chunks)
	})
}

// utf8TestBenchData returns valid UTF-8 of exactly n bytes: ASCII only, or
// mixed with 2-, 3- and 4-byte runes.
func utf8TestBenchData(n int, mixed bool) []byte {
	if !mixed {
		return bytes.Repeat([]byte("x"), n)
	}
	src := []rune("Grüße, 世界! 🌍 Привет, мир. ")
	b := make([]byte, 0, n)
	for i := 0; ; i++ {
		r := src[i%len(src)]
		if len(b)+utf8.RuneLen(r) > n {
			break
		}
		b = utf8.AppendRune(b, r)
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

func utf8TestBenchCases() []struct {
	name string
	data []byte
} {
	var cases []struct {
		name string
		data []byte
	}
	for _, n := range []int{16, 1024, 65536} {
		for _, mixed := range []bool{false, true} {
			kind := "ascii"
			if mixed {
				kind = "mixed"
			}
			cases = append(cases, struct {
				name string
				data []byte
			}{fmt.Sprintf("%s/%d", kind, n), utf8TestBenchData(n, mixed)})
		}
	}
	return cases
}

func BenchmarkUTF8Step(b *testing.B) {
	for _, bc := range utf8TestBenchCases() {
		b.Run(bc.name, func(b *testing.B) {
			if !utf8TestWhole(bc.data) {
				b.Fatal("benchmark data is not valid UTF-8")
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if st, ok := utf8Step(0, bc.data); !ok || st != 0 {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkUTF8Stdlib(b *testing.B) {
	for _, bc := range utf8TestBenchCases() {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if !utf8.Valid(bc.data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
