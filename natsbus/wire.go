package natsbus

import (
	"strings"
	"unicode/utf8"

	"github.com/wsmill/wsmill/server"
)

// A message on the bus is one header byte and the WebSocket payload as the
// clients receive it:
//
//	bit 0-3  opcode: 1 text, 2 binary (RFC 6455 5.2)
//	bit 4    policy: 0 Reliable, 1 LatestOnly
//	bit 5-7  zero (a later version of the format sets them; this one drops it)
//
// so that a receiving instance publishes it with the publisher's opcode and
// policy. A text payload must be valid UTF-8 ([RFC6455 8.1]: an endpoint
// receiving invalid UTF-8 fails the connection): the receiving side checks
// it again, because whatever publishes on the subject is not necessarily
// wsmill, and a bad frame would make every browser in the topic drop its
// connection.
const (
	hdrOpMask     = 0x0f
	hdrLatestOnly = 0x10
	hdrReserved   = 0xe0
)

func encodeHeader(op server.Opcode, p server.Policy) byte {
	h := byte(op) & hdrOpMask
	if p == server.LatestOnly {
		h |= hdrLatestOnly
	}
	return h
}

// decode splits a bus message into its opcode, policy and payload; ok is
// false for anything this version does not write.
func decode(data []byte) (op server.Opcode, p server.Policy, payload []byte, ok bool) {
	if len(data) == 0 || data[0]&hdrReserved != 0 {
		return 0, 0, nil, false
	}
	op = server.Opcode(data[0] & hdrOpMask)
	if op != server.OpText && op != server.OpBinary {
		return 0, 0, nil, false
	}
	p = server.Reliable
	if data[0]&hdrLatestOnly != 0 {
		p = server.LatestOnly
	}
	payload = data[1:]
	if op == server.OpText && !utf8.Valid(payload) {
		return 0, 0, nil, false
	}
	return op, p, payload, true
}

// MaxTopic is the longest topic the bridge carries.
const MaxTopic = 200

// ValidTopic reports whether topic can cross the bus: one or more tokens
// of [A-Za-z0-9_-] separated by single dots, at most MaxTopic bytes. The
// topic becomes part of a NATS subject (Config.Prefix + topic), and NATS
// gives '*' and '>' (wildcards), '.' (the token separator), spaces and
// control bytes a meaning; with this set a topic names exactly one
// subject, never a pattern, so no topic can subscribe an instance to
// another's messages. Topics outside it stay local (Publish still reaches
// this instance's subscribers) and are counted.
func ValidTopic(topic string) bool {
	if len(topic) == 0 || len(topic) > MaxTopic {
		return false
	}
	prevDot := true // no leading dot, no empty token
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			prevDot = false
		default:
			return false
		}
	}
	return !prevDot
}

// validPrefix: a prefix is empty or tokens each followed by a dot.
func validPrefix(prefix string) bool {
	return prefix == "" || strings.HasSuffix(prefix, ".") && ValidTopic(prefix[:len(prefix)-1])
}
