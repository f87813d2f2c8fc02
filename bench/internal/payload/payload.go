// Package payload makes realistic messages for a workload to send, so that
// the reader can rebuild message seq and check an echo byte for byte. The
// echo workload's default payload (16 hex digits of the sequence number,
// then letters cycling with the position) compresses like nothing real;
// JSON is what an application sends: a price list of the requested size,
// different for every sequence number (the number is in it), which
// permessage-deflate shrinks about four-fold, as it does real feeds.
package payload

import (
	"fmt"
	"strconv"
)

// jsonHead starts every JSON message; the 16 zeros are where Fill writes
// the sequence number in hex.
const (
	jsonHead = `{"seq":"0000000000000000","type":"prices","items":[`
	jsonTail = `]}`
	seqAt    = len(`{"seq":"`)
	// MinJSON is the smallest JSON message: the head and tail, no item.
	MinJSON = len(jsonHead) + len(jsonTail)
)

// JSON is a template of JSON messages of one size.
type JSON struct {
	tmpl []byte
}

// NewJSON returns the template for messages of exactly n bytes: as many
// price items as fit, then spaces (insignificant whitespace) up to n.
func NewJSON(n int) (*JSON, error) {
	if n < MinJSON {
		return nil, fmt.Errorf("payload: a JSON message is at least %d bytes, not %d", MinJSON, n)
	}
	b := make([]byte, 0, n)
	b = append(b, jsonHead...)
	var item []byte
	for i := 0; ; i++ {
		item = item[:0]
		if i > 0 {
			item = append(item, ',')
		}
		item = fmt.Appendf(item, `{"symbol":"SYM%03d","bid":%d.%02d,"ask":%d.%02d,"venue":"XNAS"}`,
			i, 100+i, i*7%100, 101+i, i*13%100)
		if len(b)+len(item)+len(jsonTail) > n {
			break
		}
		b = append(b, item...)
	}
	for len(b)+len(jsonTail) < n {
		b = append(b, ' ')
	}
	b = append(b, jsonTail...)
	return &JSON{tmpl: b}, nil
}

// Len is the size of every message of the template.
func (j *JSON) Len() int { return len(j.tmpl) }

// Fill writes message seq into p, which must be Len bytes.
func (j *JSON) Fill(p []byte, seq uint64) {
	copy(p, j.tmpl)
	var d [16]byte
	h := strconv.AppendUint(d[:0], seq, 16)
	q := p[seqAt : seqAt+16]
	for i := range q {
		q[i] = '0'
	}
	copy(q[16-len(h):], h)
}
