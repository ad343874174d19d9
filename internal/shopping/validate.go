package shopping

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Domain errors. The store wraps them with a message that names the field
// and the reason; test with errors.Is. The service maps them to Connect
// codes (see toConnectError); this layer knows nothing of RPC.
var (
	// ErrInvalid reports input that can never succeed: a bad name, quantity,
	// unit or item id, or an update that sets nothing.
	ErrInvalid = errors.New("shopping: invalid input")
	// ErrNotFound reports an item the caller's household does not have.
	// An item of another household is reported the same way, so that ids
	// cannot be probed across households.
	ErrNotFound = errors.New("shopping: not found")
)

// Input limits. Lengths count characters (runes), not bytes, after trimming
// surrounding white space.
const (
	// MaxNameLen is the longest item name.
	MaxNameLen = 200
	// MaxUnitLen is the longest unit.
	MaxUnitLen = 32
	// MaxQuantity is the largest quantity: far above any real shopping
	// list, small enough to show without exponent notation.
	MaxQuantity = 1e6
)

// validateName returns the trimmed name, or an error wrapping [ErrInvalid].
// Control characters (newlines, NUL, escape sequences) are refused because a
// name is shown on one line in other people's screens and in logs.
func validateName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: name must be valid UTF-8", ErrInvalid)
	}
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return "", fmt.Errorf("%w: name must not be empty or only spaces", ErrInvalid)
	case n > MaxNameLen:
		return "", fmt.Errorf("%w: name must be at most %d characters, got %d", ErrInvalid, MaxNameLen, n)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: name must not contain control characters", ErrInvalid)
	}
	return name, nil
}

// validateUnit returns the trimmed unit (possibly empty), or an error
// wrapping [ErrInvalid].
func validateUnit(unit string) (string, error) {
	if !utf8.ValidString(unit) {
		return "", fmt.Errorf("%w: unit must be valid UTF-8", ErrInvalid)
	}
	unit = strings.TrimSpace(unit)
	if n := utf8.RuneCountInString(unit); n > MaxUnitLen {
		return "", fmt.Errorf("%w: unit must be at most %d characters, got %d", ErrInvalid, MaxUnitLen, n)
	}
	if strings.IndexFunc(unit, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%w: unit must not contain control characters", ErrInvalid)
	}
	return unit, nil
}

// validateQuantity accepts 0 (unspecified) up to [MaxQuantity]. NaN and
// infinities are refused: they do not survive JSON and compare oddly.
func validateQuantity(q float64) error {
	if math.IsNaN(q) || math.IsInf(q, 0) {
		return fmt.Errorf("%w: quantity must be a finite number", ErrInvalid)
	}
	if q < 0 || q > MaxQuantity {
		return fmt.Errorf("%w: quantity must be between 0 and %g, got %g", ErrInvalid, float64(MaxQuantity), q)
	}
	return nil
}

// ValidateItemID reports whether id has the form [NewItemID] makes, wrapping
// [ErrInvalid] if not. A malformed id is a caller mistake (InvalidArgument),
// unlike a well-formed id that does not exist (NotFound).
func ValidateItemID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: item_id is required", ErrInvalid)
	}
	if len(id) != itemIDLen || !strings.HasPrefix(id, itemIDPrefix) {
		return fmt.Errorf("%w: item_id must look like %q followed by 26 characters", ErrInvalid, itemIDPrefix)
	}
	for _, c := range []byte(id[len(itemIDPrefix):]) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("%w: item_id contains a character ids never have", ErrInvalid)
		}
	}
	return nil
}

// validateHousehold guards the store against an unscoped call; the service
// never passes an empty household (it refuses such callers first).
func validateHousehold(id string) error {
	if id == "" {
		return fmt.Errorf("%w: household id is empty", ErrInvalid)
	}
	return nil
}
