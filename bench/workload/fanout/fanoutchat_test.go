package fanout

import (
	"testing"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

func TestParseChatFanout(t *testing.T) {
	for _, tt := range []struct {
		in   string
		op   byte
		send int64
		ok   bool
	}{
		{`{"type":"message","room":"fan","name":"pub","text":"F1732912345123456789"}`, wsclient.OpText, 1732912345123456789, true},
		{`{"type":"message","room":"fan","name":"pub","text":"F1"}`, wsclient.OpText, 1, true},
		{`{"type":"message","room":"fan","name":"pub","text":"F1"}`, wsclient.OpBinary, 0, false},
		{`{"type":"message","room":"fan","name":"pub","text":"hello"}`, wsclient.OpText, 0, false},
		{`{"type":"message","room":"fan","name":"pub","text":"F12x"}`, wsclient.OpText, 0, false},
		{`{"type":"message","room":"fan","name":"pub","text":"F"}`, wsclient.OpText, 0, false},
		{`{"type":"join","room":"fan","name":"pub","text":"F1"}`, wsclient.OpText, 0, false},
		{`{"type":"message","room":"fan","name":"pub","text":"F99999999999999999999"}`, wsclient.OpText, 0, false},
		{`F1732912345123456789`, wsclient.OpText, 0, false},
		{``, wsclient.OpText, 0, false},
	} {
		send, ok := parseChatFanout(tt.op, []byte(tt.in))
		if send != tt.send || ok != tt.ok {
			t.Errorf("parseChatFanout(%q) = %d, %v; want %d, %v", tt.in, send, ok, tt.send, tt.ok)
		}
	}
	p := []byte(`{"type":"message","room":"fan","name":"pub","text":"F1732912345123456789"}`)
	if a := testing.AllocsPerRun(100, func() { parseChatFanout(wsclient.OpText, p) }); a != 0 {
		t.Errorf("parseChatFanout allocates %v times", a)
	}
}

func TestChatFlags(t *testing.T) {
	for _, tt := range []struct {
		room  string
		rooms int
		ok    bool
	}{
		{"", 0, true}, {"fan", 0, true}, {"a_b-C9", 0, true},
		{"fan", 2, false}, {"a.b", 0, false}, {"a*", 0, false}, {"a>", 0, false}, {"a b", 0, false},
		{string(make([]byte, 65)), 0, false},
	} {
		if err := checkChat(tt.room, tt.rooms); (err == nil) != tt.ok {
			t.Errorf("checkChat(%q, %d) = %v; want ok %v", tt.room, tt.rooms, err, tt.ok)
		}
	}
	spec := fleet.Spec{Addr: "127.0.0.1:1", Offset: 10, Chat: "fan"}
	if o := roomOpts(spec, 2); o.Target != "/chat?room=fan&name=s12" {
		t.Errorf("target %q; want /chat?room=fan&name=s12", o.Target)
	}
}
