package server

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps the per-connection struct inside its malloc size
// class: every byte here is multiplied by the connection count. It was 224
// before the application API; the handle's close code and the attached
// value (boxed: 8 bytes, not 16) took it to 234 bytes of fields (240). The
// peer's address, kept for OnClose because a reset socket no longer has
// one (19 bytes: IP, port, family), took it to 254 and the next size
// class, 256; OnDrain's flag (drainArm) filled a padding byte: 255.
func TestConnSize(t *testing.T) {
	if got, want := unsafe.Sizeof(conn{}), uintptr(256); got > want {
		t.Errorf("conn is %d bytes; want at most %d (reorder fields to remove padding)", got, want)
	}
}
