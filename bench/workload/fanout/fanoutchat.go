package fanout

// fanout -chat ROOM: the subscribers of one room of wsmill's room chat
// (/chat, the demo's; on several instances over NATS with -nats). The
// server does not broadcast by itself: a publisher (wsload roomfan) sends
// the text "F" + unix ns into the room, and the chat delivers it to every
// member as {"type":"message","room":ROOM,"name":NAME,"text":"F…"}.

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// chatTarget is the upgrade request-target of subscriber g of a room.
func chatTarget(room string, g int) string {
	return "/chat?room=" + room + "&name=s" + strconv.Itoa(g)
}

// ValidChatRoom is the chat's own rule for a room name,
// [A-Za-z0-9_-]{1,64}: the chat answers 400 to anything else.
func ValidChatRoom(room string) bool {
	if len(room) < 1 || len(room) > 64 {
		return false
	}
	for i := 0; i < len(room); i++ {
		switch c := room[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// checkChat validates -chat: a valid room name, and not with -rooms.
func checkChat(room string, rooms int) error {
	switch {
	case room == "":
		return nil
	case rooms != 0:
		return fmt.Errorf("-chat and -rooms are two ways to choose a room: give one")
	case !ValidChatRoom(room):
		return fmt.Errorf("-chat %q: a room name is [A-Za-z0-9_-]{1,64} (the chat answers 400 to anything else)", room)
	}
	return nil
}

var (
	chatPrefix = []byte(`{"type":"message",`)
	chatText   = []byte(`,"text":"F`)
	chatEnd    = []byte(`"}`)
)

// parseChatFanout returns the send time carried by a chat message whose
// text is "F" + unix ns, allocation-free; ok is false for anything else.
// The text is the last field (the chat's wire format, chat.go), and the
// room and name before it are [A-Za-z0-9_-], so the last `,"text":"F` is
// the field itself.
func parseChatFanout(op byte, p []byte) (send int64, ok bool) {
	if op != wsclient.OpText || !bytes.HasPrefix(p, chatPrefix) || !bytes.HasSuffix(p, chatEnd) {
		return 0, false
	}
	i := bytes.LastIndex(p, chatText)
	if i < 0 {
		return 0, false
	}
	digits := p[i+len(chatText)-1 : len(p)-len(chatEnd)] // from the 'F'
	return parseFanout(op, digits)
}
