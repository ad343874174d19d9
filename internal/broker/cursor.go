package broker

import (
	"fmt"
	"strconv"
	"strings"
)

// Position is a place in a broker's log.
//
// Offset counts events in the log, starting at 1; 0 is the position before
// the first event. Epoch names one incarnation of the log: it changes
// whenever history may have been lost (a restarted in-memory broker starts a
// new epoch), so a position from another epoch can never be mistaken for one
// in this log.
type Position struct {
	Epoch  string
	Offset uint64
}

const maxEpochLen = 32

// Cursor encodes p as an opaque string for clients: "<epoch>_<offset>". It
// grants nothing; rooms always come from the token.
func (p Position) Cursor() string {
	return p.Epoch + "_" + strconv.FormatUint(p.Offset, 10)
}

// ParseCursor decodes a cursor made by [Position.Cursor]. It returns an error
// wrapping [ErrInvalidCursor] for anything else.
func ParseCursor(s string) (Position, error) {
	epoch, offset, ok := strings.Cut(s, "_")
	if !ok || !validEpoch(epoch) || offset == "" || len(offset) > 20 {
		return Position{}, fmt.Errorf("%w: %q is not a cursor this server issued", ErrInvalidCursor, truncate(s))
	}
	if len(offset) > 1 && offset[0] == '0' {
		return Position{}, fmt.Errorf("%w: %q has a malformed offset", ErrInvalidCursor, truncate(s))
	}
	n, err := strconv.ParseUint(offset, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("%w: %q has a malformed offset", ErrInvalidCursor, truncate(s))
	}
	return Position{Epoch: epoch, Offset: n}, nil
}

func validEpoch(e string) bool {
	if e == "" || len(e) > maxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// truncate keeps hostile input out of error messages and logs.
func truncate(s string) string {
	if len(s) > 48 {
		return s[:48] + "…"
	}
	return s
}
