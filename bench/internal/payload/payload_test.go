package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func TestJSON(t *testing.T) {
	for _, n := range []int{MinJSON, MinJSON + 1, 100, 128, 1024, 16 << 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			j, err := NewJSON(n)
			if err != nil {
				t.Fatal(err)
			}
			if j.Len() != n {
				t.Fatalf("Len %d; want %d", j.Len(), n)
			}
			a, b := make([]byte, n), make([]byte, n)
			j.Fill(a, 0xabc)
			j.Fill(b, 0xabd)
			if bytes.Equal(a, b) {
				t.Fatal("two sequence numbers, the same message")
			}
			var v struct {
				Seq   string
				Items []map[string]any
			}
			if err := json.Unmarshal(a, &v); err != nil {
				t.Fatalf("not JSON: %v: %s", err, a)
			}
			if v.Seq != "0000000000000abc" {
				t.Fatalf("seq %q; want 0000000000000abc", v.Seq)
			}
			if n >= 1024 && len(v.Items) < 10 {
				t.Fatalf("%d items in %d bytes", len(v.Items), n)
			}
		})
	}
	if _, err := NewJSON(MinJSON - 1); err == nil {
		t.Fatal("NewJSON below the minimum: no error")
	}
}

func TestJSONFillAllocs(t *testing.T) {
	j, _ := NewJSON(1024)
	p := make([]byte, 1024)
	if n := testing.AllocsPerRun(100, func() { j.Fill(p, 12345) }); n != 0 {
		t.Fatalf("Fill: %v allocs; want 0", n)
	}
}
