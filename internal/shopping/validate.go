package shopping

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/honeydo/realtime/internal/textrule"
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
	// ErrListFull reports an add to a list that already holds the most
	// items a household may have. It can succeed once items are removed,
	// but not by retrying as it is.
	ErrListFull = errors.New("shopping: list full")
)

// Input limits. Lengths count characters (runes), not bytes, after NFC
// normalization and trimming (see package textrule).
const (
	// MaxNameLen is the longest item name.
	MaxNameLen = 200
	// MaxUnitLen is the longest unit.
	MaxUnitLen = 32
	// MaxQuantity is the largest quantity: far above any real shopping
	// list, small enough to show without exponent notation.
	MaxQuantity = 1e6
)

// nameField and unitField are the character rules for names and units;
// they are the rules every module shares (see package textrule).
var (
	nameField = textrule.Field{Name: "name", MaxLen: MaxNameLen}
	unitField = textrule.Field{Name: "unit", MaxLen: MaxUnitLen, Optional: true}
)

// validateName returns the name as it is stored (NFC, trimmed), or an
// error wrapping [ErrInvalid]. Names are shown on one line on other
// people's screens and in logs, so they must have something visible and
// nothing that breaks the line or reorders the text around it.
func validateName(name string) (string, error) {
	name, err := nameField.Clean(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return name, nil
}

// validateUnit returns the unit as it is stored (possibly empty), or an
// error wrapping [ErrInvalid].
func validateUnit(unit string) (string, error) {
	unit, err := unitField.Clean(unit)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
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
