package broker

import (
	"fmt"
	"strings"

	"github.com/honeydo/realtime/internal/room"
)

// Subject layout of the JetStream backend. Every room maps to exactly one
// NATS subject under the configured prefix (default "honeydo.rt"):
//
//	<prefix>.broadcast              room.Broadcast
//	<prefix>.user.<id>              room.User(id)
//	<prefix>.household.<id>         room.Household(id)
//	<prefix>.room.<name>            any other room, by its whole name
//
// The kind and id come from [room.Name.Split]; extra rooms ("room:bench")
// keep their whole name, so the layout is what it was before package room.
//
// Ids are escaped so that a token is never empty and never holds a
// character with a meaning in subjects: [A-Za-z0-9_-] stay as they are,
// every other byte becomes "~" and two lowercase hex digits, and the empty
// string is "~". The mapping is one-to-one, so a subject decodes back to its
// room, and a subscriber's rooms are exact filter subjects (no wildcards):
// JetStream's per-subject index then finds a room's events without reading
// the others'.
const defaultSubjectPrefix = "honeydo.rt"

const (
	subjBroadcast = "broadcast"
	subjUser      = "user"
	subjHousehold = "household"
	subjRoom      = "room"
)

// roomSubject returns the subject that carries r's events.
func roomSubject(prefix string, r room.Name) string {
	switch kind, id := r.Split(); kind {
	case room.KindBroadcast:
		return prefix + "." + subjBroadcast
	case room.KindUser:
		return prefix + "." + subjUser + "." + escapeToken(id)
	case room.KindHousehold:
		return prefix + "." + subjHousehold + "." + escapeToken(id)
	}
	return prefix + "." + subjRoom + "." + escapeToken(string(r))
}

// subjectRoom decodes a subject made by roomSubject.
func subjectRoom(prefix, subject string) (room.Name, error) {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return "", fmt.Errorf("subject %q is outside prefix %q", truncate(subject), prefix)
	}
	if rest == subjBroadcast {
		return room.Broadcast, nil
	}
	kind, tok, ok := strings.Cut(rest, ".")
	if !ok {
		return "", fmt.Errorf("subject %q has no room token", truncate(subject))
	}
	id, err := unescapeToken(tok)
	if err != nil {
		return "", fmt.Errorf("subject %q: %w", truncate(subject), err)
	}
	switch kind {
	case subjUser:
		return room.User(id), nil
	case subjHousehold:
		return room.Household(id), nil
	case subjRoom:
		return room.Name(id), nil
	}
	return "", fmt.Errorf("subject %q has an unknown room kind", truncate(subject))
}

func plainSubjectByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func escapeToken(s string) string {
	if s == "" {
		return "~"
	}
	plain := true
	for i := 0; i < len(s); i++ {
		if !plainSubjectByte(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainSubjectByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unescapeToken(t string) (string, error) {
	if t == "~" {
		return "", nil
	}
	if !strings.Contains(t, "~") {
		for i := 0; i < len(t); i++ {
			if !plainSubjectByte(t[i]) {
				return "", fmt.Errorf("bad byte %q in token", t[i])
			}
		}
		if t == "" {
			return "", fmt.Errorf("empty token")
		}
		return t, nil
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case plainSubjectByte(c):
			b = append(b, c)
		case c == '~' && i+2 < len(t) && isLowerHex(t[i+1]) && isLowerHex(t[i+2]):
			v := unhex(t[i+1])<<4 | unhex(t[i+2])
			if plainSubjectByte(v) {
				return "", fmt.Errorf("needless escape in token")
			}
			b = append(b, v)
			i += 2
		default:
			return "", fmt.Errorf("bad escape in token")
		}
	}
	return string(b), nil
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// validSubjectPrefix reports whether p is one or more plain tokens joined by
// dots: no wildcards, no spaces, no empty token.
func validSubjectPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if !plainSubjectByte(tok[i]) {
				return false
			}
		}
	}
	return true
}
