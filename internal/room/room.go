// Package room is the one home of room names: how they are spelled
// ([User], [Household], [Broadcast], [Extra]), how a name splits back into
// its kind and id ([Name.Split], which the metrics labels and the JetStream
// subject layout both build on), and which rooms a verified caller joins
// ([For]). Every other package calls it instead of writing "user:" or
// "household:" itself.
//
// Room names are plain strings with no state behind them: every function
// here is pure and safe for concurrent use.
package room

import (
	"strings"

	"github.com/honeydo/realtime/internal/auth"
)

// Name names an audience: a subscription joins rooms, and an event is
// published to one.
type Name string

// Broadcast is joined by every person's subscription.
const Broadcast Name = "broadcast"

// The prefixes of the kinds of room that carry an id.
const (
	userPrefix      = "user:"
	householdPrefix = "household:"
	extraPrefix     = "room:"
)

// User is the room of every stream of one user.
func User(userID string) Name { return Name(userPrefix + userID) }

// Household is the room of every member of one household.
func Household(householdID string) Name { return Name(householdPrefix + householdID) }

// Extra is a named room beyond a person's own, such as the benchmark's
// "room:bench", which dev tokens may ask to join.
func Extra(name string) Name { return Name(extraPrefix + name) }

// Kind is what sort of audience a room is. Its values are a fixed set, so
// they can label metrics whatever room names callers send.
type Kind string

// The kinds of room. A name that no constructor of this package makes is
// [KindOther].
const (
	KindUser      Kind = "user"
	KindHousehold Kind = "household"
	KindBroadcast Kind = "broadcast"
	KindExtra     Kind = "room"
	KindOther     Kind = "other"
)

// Split returns n's kind and what follows the kind's prefix: the user id of
// a [User] room, the household id of a [Household] room, the name given to
// [Extra]. The id of [Broadcast] is empty, and that of a [KindOther] room is
// the whole name. The id may be empty ("user:" is the room of the user with
// the empty id), so Split(User(id)) always gives back id.
func (n Name) Split() (Kind, string) {
	s := string(n)
	if n == Broadcast {
		return KindBroadcast, ""
	}
	if id, ok := strings.CutPrefix(s, userPrefix); ok {
		return KindUser, id
	}
	if id, ok := strings.CutPrefix(s, householdPrefix); ok {
		return KindHousehold, id
	}
	if id, ok := strings.CutPrefix(s, extraPrefix); ok {
		return KindExtra, id
	}
	return KindOther, s
}

// Kind returns n's kind; see [Name.Split].
func (n Name) Kind() Kind {
	k, _ := n.Split()
	return k
}

// For returns the rooms p joins: its user room, its household's room (when
// it has a household), the broadcast room and the extra rooms of its token,
// in that order. They come from the verified principal only, never from
// anything the client sends. A service joins none: User(id) is a person's
// room, and a service named like a person must not join it.
func For(p *auth.Principal) []Name {
	if p.Service {
		return nil
	}
	rooms := make([]Name, 0, 3+len(p.ExtraRooms))
	rooms = append(rooms, User(p.UserID))
	if p.HouseholdID != "" {
		rooms = append(rooms, Household(p.HouseholdID))
	}
	rooms = append(rooms, Broadcast)
	for _, r := range p.ExtraRooms {
		rooms = append(rooms, Name(r))
	}
	return rooms
}

// Strings returns rooms as plain strings, as the wire messages carry them.
func Strings(rooms []Name) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}
