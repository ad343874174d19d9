// Package textrule is the one rule for short text that a person types and
// other people then see: shopping item names and units today, and the labels
// of any module added later. Every module validates such fields with a
// [Field], so that a name which looks empty, reorders the text around it or
// breaks a line is refused the same way everywhere.
//
// [Field.Clean] does, in order:
//
//  1. refuses text that is not valid UTF-8;
//  2. normalizes to NFC, so that "é" typed as e + U+0301 and as U+00E9 is
//     stored, compared and counted as the same text;
//  3. trims white space (Unicode White_Space, which includes the line and
//     paragraph separators U+2028/U+2029) and zero-width characters (U+200B,
//     U+200C, U+200D, U+2060, U+FEFF, U+180E) from both ends;
//  4. refuses, anywhere in what is left, control characters (Cc: newlines,
//     NUL, escape sequences), the line and paragraph separators U+2028 and
//     U+2029, and the bidi embedding, override and isolate characters
//     U+202A–U+202E and U+2066–U+2069, which reorder the text displayed
//     after them ("Trojan Source");
//  5. refuses an empty result unless the field is optional, and one longer
//     than the field's maximum, counted in characters (runes) after NFC;
//  6. refuses a non-empty result without a visible character: one that is a
//     letter, number, punctuation or symbol, other than the blank-looking
//     Hangul fillers (U+115F, U+1160, U+3164, U+FFA0) and the blank braille
//     pattern U+2800. Text made only of zero-width, format, combining or
//     private-use characters is refused.
//
// Invisible characters inside visible text stay: the zero-width joiner
// builds emoji sequences (👩‍🌾), the zero-width non-joiner and the
// left-to-right and right-to-left marks (U+200E, U+200F) are needed to
// write some languages, and variation selectors choose an emoji's look.
//
// Errors name the field and the reason in words a caller can act on (for
// example "name must not contain bidi control character U+202E"); callers
// wrap them in their own error kind, e.g. an invalid-input sentinel that
// becomes INVALID_ARGUMENT.
package textrule

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Field is the rule for one text field. The zero value is not useful: set
// Name and MaxLen.
type Field struct {
	// Name is the field as callers know it ("name", "unit"); errors start
	// with it.
	Name string
	// MaxLen is the most characters (runes, after NFC and trimming) the
	// field may hold.
	MaxLen int
	// Optional lets the field be empty after trimming.
	Optional bool
}

// Clean returns s normalized and trimmed as the package doc describes, or an
// error that names the field and says what is wrong. Clean is idempotent:
// cleaning its result again returns the same string.
func (f Field) Clean(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s must be valid UTF-8", f.Name)
	}
	s = strings.TrimFunc(norm.NFC.String(s), trimmable)
	for i, r := range []rune(s) {
		if reason := forbidden(r); reason != "" {
			return "", fmt.Errorf("%s must not contain %s %U (character %d)", f.Name, reason, r, i+1)
		}
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0 && f.Optional:
		return "", nil
	case n == 0:
		return "", fmt.Errorf("%s must not be empty or only spaces", f.Name)
	case n > f.MaxLen:
		return "", fmt.Errorf("%s must be at most %d characters, got %d", f.Name, f.MaxLen, n)
	case strings.IndexFunc(s, Visible) < 0:
		return "", fmt.Errorf("%s must contain a visible character, not only invisible or blank ones such as %U", f.Name, []rune(s)[0])
	}
	return s, nil
}

// zeroWidth are characters that draw nothing and mean nothing at either end
// of a field, so they are trimmed like white space.
var zeroWidth = map[rune]bool{
	'\u180E': true, // MONGOLIAN VOWEL SEPARATOR (was a space until Unicode 6.3)
	'\u200B': true, // ZERO WIDTH SPACE
	'\u200C': true, // ZERO WIDTH NON-JOINER
	'\u200D': true, // ZERO WIDTH JOINER
	'\u2060': true, // WORD JOINER
	'\uFEFF': true, // ZERO WIDTH NO-BREAK SPACE (byte order mark)
}

func trimmable(r rune) bool { return unicode.IsSpace(r) || zeroWidth[r] }

// forbidden says why r may not appear in a field, or "" if it may.
func forbidden(r rune) string {
	switch {
	case unicode.IsControl(r):
		return "control character"
	case r == '\u2028' || r == '\u2029':
		return "line or paragraph separator"
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
		return "bidi control character"
	}
	return ""
}

// blank are letters and symbols by category that render as empty space;
// they are popular for names that look empty.
var blank = map[rune]bool{
	'\u115F': true, // HANGUL CHOSEONG FILLER
	'\u1160': true, // HANGUL JUNGSEONG FILLER
	'\u2800': true, // BRAILLE PATTERN BLANK
	'\u3164': true, // HANGUL FILLER
	'\uFFA0': true, // HALFWIDTH HANGUL FILLER
}

// Visible reports whether r draws something on its own: a letter, number,
// punctuation or symbol that is not one of the blank-looking fillers. A
// field must hold at least one.
func Visible(r rune) bool {
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) && !blank[r]
}
