package server

import (
	"math/bits"
	"sync"
)

// Variable-size buffers (an incomplete frame, a fragmented message, an
// outbound queue, a slow handshake) come from pools by power-of-two size
// class and go back as soon as they are empty, so an idle connection holds
// none. Buffers travel as *[]byte so that Put does not allocate.

const (
	minClassShift = 9  // 512 B
	maxClassShift = 31 // 2 GiB, beyond any MaxMessage we accept
)

var bufPools [maxClassShift + 1]sync.Pool

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return minClassShift
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns an empty buffer with capacity of at least n bytes.
func getBuf(n int) *[]byte {
	c := classOf(n)
	if p, _ := bufPools[c].Get().(*[]byte); p != nil {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, 1<<c)
	return &b
}

// putBuf returns p to its pool. p must have come from getBuf.
func putBuf(p *[]byte) {
	if p == nil {
		return
	}
	c := bits.Len(uint(cap(*p))) - 1
	if c < minClassShift || c > maxClassShift || cap(*p) != 1<<c {
		return
	}
	bufPools[c].Put(p)
}

// growBuf makes room for n more bytes in *pp, moving to a bigger class when
// needed, and returns the (possibly new) buffer.
func growBuf(p *[]byte, n int) *[]byte {
	if p == nil {
		return getBuf(n)
	}
	if cap(*p)-len(*p) >= n {
		return p
	}
	q := getBuf(len(*p) + n)
	*q = append(*q, *p...)
	putBuf(p)
	return q
}
