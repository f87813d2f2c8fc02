//go:build linux

package server

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
)

// FuzzDeflateFrames is FuzzFrameReader for a connection that negotiated
// permessage-deflate. The fuzzer's bytes become a client stream of
// messages, each (by the seed) compressed by the standard library and sent
// with RSV1, or sent as it is with RSV1 (almost always an invalid DEFLATE
// stream), or sent plain, in one to three fragments with pings between;
// with seed&7 == 7 the bytes are the client stream itself. The stream is
// fed whole, in random chunks and byte by byte: the server's output and
// the way the connection ends must be the same for every segmentation.
// When every message is valid, the echoes (inflated when compressed) must
// be the messages, in order, after their pongs.
//
//	go test ./server -run '^$' -fuzz '^FuzzDeflateFrames$' -fuzztime 1m
func FuzzDeflateFrames(f *testing.F) {
	f.Add([]byte(`{"type":"prices","items":[{"symbol":"SYM001","bid":101.07}]}`), uint64(0))
	f.Add(deflateJSON(1024), uint64(1))
	f.Add(deflateJSON(3000), uint64(0x5a5a))
	f.Add([]byte("hello hello hello hello hello hello hello hello"), uint64(2))
	f.Add(bytes.Repeat([]byte{0}, 4096), uint64(4))
	f.Add(append([]byte{0xc1, 0x85, 0, 0, 0, 0}, 0xf2, 0x48, 0xcd, 0xc9, 0xc9), uint64(7))
	r := newFzRig(f)
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > fzMaxInput/2 {
			t.Skip("input too long")
		}
		stream, want, valid := fzDeflateStream(t, in, seed)
		var first fzOutcome
		for i, sp := range fzSplits(stream, seed>>3) {
			r.begin()
			fc := r.newConn(t, phaseOpen, sp.smallBuf)
			fc.c.mu.Lock()
			fc.c.deflate = true
			fc.c.mu.Unlock()
			fc.feed(t, sp.chunks, true)
			got := fc.finish()
			r.end(t)
			if i == 0 {
				first = got
			} else if !got.equal(first) {
				t.Fatalf("outcome depends on segmentation\nstream %x (seed %d)\n%s: %v\n%s: %v",
					stream, seed, "whole", first, sp.name, got)
			}
		}
		if valid {
			if got := fzDeflateEchoes(t, first.out); !bytes.Equal(got, want) {
				t.Fatalf("echoes differ from the messages\nstream %x (seed %d)\ngot  %q\nwant %q", stream, seed, got, want)
			}
		}
	})
}

// fzDeflateStream builds the client stream for in and seed, the server
// output expected when every message is valid (pongs and inflated echoes
// as data, see fzDeflateEchoes), and whether that is the case.
func fzDeflateStream(t *testing.T, in []byte, seed uint64) (stream, want []byte, valid bool) {
	if seed&7 == 7 {
		return in, nil, false
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc908))
	valid = true
	for len(in) > 0 {
		n := min(len(in), 1+rng.IntN(1500))
		msg := in[:n]
		in = in[n:]
		op := ws.OpBinary
		payload, rsv := msg, byte(0)
		switch rng.IntN(4) {
		case 0, 1: // compressed
			payload, rsv = rawDeflate(t, msg), 0x40
		case 2: // RSV1 on bytes that are not a DEFLATE stream (or are, by chance)
			rsv, valid = 0x40, false
		}
		if len(msg) > fzConfig().MaxMessage || len(payload) > fzConfig().MaxMessage {
			valid = false
		}
		frags := 1 + rng.IntN(3)
		for k := range frags {
			part := payload[k*len(payload)/frags : (k+1)*len(payload)/frags]
			b0 := byte(op)
			if k > 0 {
				b0 = byte(ws.OpContinuation)
			} else {
				b0 |= rsv
			}
			if k == frags-1 {
				b0 |= 0x80
			}
			stream = append(stream, rawFrameB0(b0, part, true)...)
			if k < frags-1 && rng.IntN(2) == 0 {
				stream = append(stream, rawFrame(rawOpPing, true, []byte("p"), true)...)
				want = append(want, "<pong>"...)
			}
		}
		want = append(want, msg...)
	}
	return stream, want, valid
}

// fzDeflateEchoes turns the server's output into the echoed messages (each
// inflated when it has RSV1) with "<pong>" for each pong, and fails on a
// Close or anything a server must not send.
func fzDeflateEchoes(t *testing.T, out []byte) []byte {
	var got []byte
	for len(out) > 0 {
		if len(out) < 2 {
			t.Fatalf("truncated server frame")
		}
		b0, n := out[0], int(out[1]&0x7f)
		h := 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(out[2:])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(out[2:])), 10
		}
		p := out[h : h+n]
		out = out[h+n:]
		switch {
		case b0&0x0f == rawOpPong && b0&0x70 == 0:
			got = append(got, "<pong>"...)
		case b0&0x0f == rawOpBinary && b0&0x30 == 0 && b0&0x80 != 0:
			if b0&0x40 != 0 {
				p = rawInflate(t, p)
			}
			got = append(got, p...)
		default:
			t.Fatalf("unexpected server frame %#x (%d bytes): %q", b0, n, rawTrunc(p))
		}
	}
	return got
}
