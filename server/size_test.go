package server

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps the per-connection struct inside its malloc size
// class: every byte here is multiplied by the connection count.
func TestConnSize(t *testing.T) {
	if got, want := unsafe.Sizeof(conn{}), uintptr(224); got > want {
		t.Errorf("conn is %d bytes; want at most %d (reorder fields to remove padding)", got, want)
	}
}
