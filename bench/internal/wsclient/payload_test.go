package wsclient

import (
	"testing"
	"time"
)

func TestEchoPayloadIsNotAPush(t *testing.T) {
	p := make([]byte, len(TimeLayout))
	for seq := uint64(0); seq < 1000; seq++ {
		EchoPayload(p, seq)
		if IsPush(OpText, p) {
			t.Fatalf("payload %q looks like a push", p)
		}
	}
	if !IsPush(OpText, []byte(time.Now().Format(TimeLayout))) {
		t.Fatal("a time push is not recognised")
	}
}
