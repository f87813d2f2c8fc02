package main

import (
	"encoding/json"
	"net/url"
	"sync/atomic"

	"github.com/wsmill/wsmill/natsbus"
	"github.com/wsmill/wsmill/server"
)

// The room chat on /chat?room=NAME&name=USER: every text message a client
// sends there goes to every client of the room, the sender included — on
// every instance through the bus when the command runs with -nats, on this
// one without it. Each delivered message is one JSON text message:
//
//	{"type":"message","room":"lobby","name":"ada","text":"hello"}
//
// room and name are what the URL gave, text is the client's message
// verbatim (JSON-escaped; any valid UTF-8). No join or leave notices: the
// type field is there so that the format can grow without breaking a
// client that checks it.

// defaultChatMax is -chat-max's default: a chat line, not a document.
const defaultChatMax = 4096

// chatPath is where the chat is upgraded (server.Config.Paths).
const chatPath = "/chat"

// chatMember is what a /chat connection carries (Conn.Value).
type chatMember struct {
	room, name string
	topic      string // "chat." + room: the server topic, and NATS subject wsmill.chat.ROOM
}

// validChatName: room and user names become part of a NATS subject, so
// they are limited to [A-Za-z0-9_-]{1,64}: no '.', '*', '>' (which would
// make a subject with more tokens or a wildcard), no spaces or control
// bytes. Anything else gets 400 at the upgrade.
func validChatName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// parseChat reads room and name from a /chat query; nil means 400.
func parseChat(query []byte) *chatMember {
	q, err := url.ParseQuery(string(query))
	if err != nil || len(q["room"]) != 1 || len(q["name"]) != 1 {
		return nil
	}
	room, name := q.Get("room"), q.Get("name")
	if !validChatName(room) || !validChatName(name) {
		return nil
	}
	return &chatMember{room: room, name: name, topic: "chat." + room}
}

// chatMessage is the wire format of a delivered message.
type chatMessage struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// chat is the room application. bus is nil without -nats: then a room
// spans this instance only.
type chat struct {
	bus      *natsbus.Bridge
	maxText  int
	tooLong  atomic.Uint64 // messages over maxText (closed 1009)
	nonText  atomic.Uint64 // binary messages (closed 1003)
	messages atomic.Uint64 // messages published to a room
}

func (ch *chat) onOpen(c server.Conn, m *chatMember) { c.Server().Subscribe(c, m.topic) }

// onMessage builds the JSON once and publishes it to the room; the engine
// sends that one frame to every member without a copy. Chat messages are
// Reliable: a member that does not read them is closed at -max-outbound
// rather than missing some.
func (ch *chat) onMessage(c server.Conn, m *chatMember, op server.Opcode, payload []byte) {
	if op != server.OpText {
		ch.nonText.Add(1)
		// [RFC6455 7.4.1] 1003: a type of data the endpoint cannot accept.
		c.Close(server.CloseUnsupported, "text messages only")
		return
	}
	if len(payload) > ch.maxText {
		ch.tooLong.Add(1)
		c.Close(server.CloseTooBig, "chat message too long")
		return
	}
	js, err := json.Marshal(chatMessage{Type: "message", Room: m.room, Name: m.name, Text: string(payload)})
	if err != nil {
		return // unreachable: strings always marshal
	}
	ch.messages.Add(1)
	if ch.bus != nil {
		// An error means this instance only (NATS down, counted in
		// wsmill_bus_dropped_total): the room goes on locally.
		ch.bus.Publish(m.topic, server.OpText, js, server.Reliable)
		return
	}
	c.Server().Publish(m.topic, server.NewFrame(server.OpText, js), server.Reliable)
}
