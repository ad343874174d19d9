package textrule

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

var (
	name = Field{Name: "name", MaxLen: 10}
	unit = Field{Name: "unit", MaxLen: 4, Optional: true}
)

func TestClean(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		field   Field
		in      string
		want    string
		wantErr string // substring; "" means success
	}{
		{desc: "plain", field: name, in: "Milk", want: "Milk"},
		{desc: "white space trimmed", field: name, in: " \t Eggs\r\n", want: "Eggs"},
		{desc: "no-break and ideographic space trimmed", field: name, in: "\u00a0\u3000Tea\u2002", want: "Tea"},
		{desc: "zero-width edges trimmed", field: name, in: "\u200b\ufeffRice\u2060\u200d", want: "Rice"},
		{desc: "separators at the edges trimmed", field: name, in: "\u2028Salt\u2029", want: "Salt"},
		{desc: "NFC: e + combining acute becomes é", field: name, in: "Cafe\u0301", want: "Café"},
		{desc: "NFC before counting: 10 decomposed é fit", field: name, in: strings.Repeat("e\u0301", 10), want: strings.Repeat("é", 10)},
		{desc: "Hangul jamo compose", field: name, in: "\u1100\u1161", want: "가"},
		{desc: "emoji with ZWJ and variation selector kept", field: name, in: "👩\u200d🌾 ❤\ufe0f", want: "👩\u200d🌾 ❤\ufe0f"},
		{desc: "interior ZWSP kept", field: name, in: "a\u200bb", want: "a\u200bb"},
		{desc: "RTL text with marks kept", field: name, in: "\u200fחלב\u200e 1", want: "\u200fחלב\u200e 1"},
		{desc: "Arabic", field: name, in: "حليب", want: "حليب"},
		{desc: "CJK", field: name, in: "牛乳", want: "牛乳"},
		{desc: "digits only", field: name, in: "42", want: "42"},
		{desc: "punctuation only", field: name, in: "?!", want: "?!"},
		{desc: "exactly max", field: name, in: "ääääääääää", want: "ääääääääää"},
		{desc: "optional empty", field: unit, in: "", want: ""},
		{desc: "optional spaces become empty", field: unit, in: "  \u200b ", want: ""},
		{desc: "optional value", field: unit, in: " kg ", want: "kg"},

		{desc: "invalid UTF-8", field: name, in: "Milk\xff", wantErr: "name must be valid UTF-8"},
		{desc: "lone surrogate encoding", field: name, in: "\xed\xa0\x80", wantErr: "valid UTF-8"},
		{desc: "empty", field: name, in: "", wantErr: "name must not be empty"},
		{desc: "only spaces", field: name, in: " \t\n ", wantErr: "name must not be empty"},
		{desc: "only zero-width space", field: name, in: "\u200b", wantErr: "name must not be empty"},
		{desc: "only zero-width characters", field: name, in: "\u200b\u200c\u200d\u2060\ufeff", wantErr: "name must not be empty"},
		{desc: "only separators", field: name, in: "\u2028\u2029", wantErr: "name must not be empty"},
		{desc: "only LRM and RLM", field: name, in: "\u200e\u200f", wantErr: "name must contain a visible character"},
		{desc: "only soft hyphen", field: name, in: "\u00ad", wantErr: "visible character"},
		{desc: "only Hangul filler", field: name, in: "\u3164", wantErr: "visible character"},
		{desc: "only halfwidth Hangul filler", field: name, in: "\uffa0\uffa0", wantErr: "visible character"},
		{desc: "only braille blank", field: name, in: "\u2800", wantErr: "visible character"},
		{desc: "only combining marks", field: name, in: "\u0301\u0302", wantErr: "visible character"},
		{desc: "only variation selector", field: name, in: "\ufe0f", wantErr: "visible character"},
		{desc: "only tag characters", field: name, in: "\U000e0041\U000e0042", wantErr: "visible character"},
		{desc: "only private use", field: name, in: "\ue000", wantErr: "visible character"},
		{desc: "blank unit", field: unit, in: "\u3164", wantErr: "unit must contain a visible character"},
		{desc: "newline inside", field: name, in: "Milk\nEggs", wantErr: "name must not contain control character U+000A (character 5)"},
		{desc: "NUL", field: name, in: "a\x00", wantErr: "control character U+0000"},
		{desc: "escape sequence", field: name, in: "\x1b[31mRed", wantErr: "control character U+001B"},
		{desc: "C1 control", field: name, in: "a\u0085b", wantErr: "control character U+0085"},
		{desc: "DEL", field: name, in: "a\x7f", wantErr: "control character U+007F"},
		{desc: "line separator inside", field: name, in: "a\u2028b", wantErr: "line or paragraph separator U+2028"},
		{desc: "paragraph separator inside", field: name, in: "a\u2029b", wantErr: "line or paragraph separator U+2029"},
		{desc: "RLO", field: name, in: "\u202egnp.exe", wantErr: "bidi control character U+202E"},
		{desc: "LRE", field: name, in: "a\u202ab", wantErr: "bidi control character U+202A"},
		{desc: "PDF", field: name, in: "a\u202cb", wantErr: "bidi control character U+202C"},
		{desc: "LRI", field: name, in: "a\u2066b", wantErr: "bidi control character U+2066"},
		{desc: "PDI", field: name, in: "a\u2069", wantErr: "bidi control character U+2069"},
		{desc: "bidi in unit", field: unit, in: "k\u202eg", wantErr: "unit must not contain bidi control character"},
		{desc: "too long", field: name, in: "abcdefghijk", wantErr: "name must be at most 10 characters, got 11"},
		{desc: "too long unit", field: unit, in: "litre", wantErr: "unit must be at most 4 characters, got 5"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := tc.field.Clean(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Clean(%+q) = %+q, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Clean(%+q) = %+q, %v; want %+q", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzClean checks the rule's promises on arbitrary input: whatever Clean
// accepts is valid UTF-8 in NFC, trimmed, within the length, free of the
// forbidden characters, visible unless empty, and cleans to itself.
func FuzzClean(f *testing.F) {
	for _, s := range []string{
		"Milk", " Eggs ", "\u200b", "\u202eabc", "a\u2028b", "Cafe\u0301", "👩\u200d🌾",
		"\u3164", "\xff", "\u200e\u200f", "e\u0301\u0301\u0301", "\u0301a", " \u0301", "\ufeff\u1100\u1161\u11a8",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, optional bool) {
		field := Field{Name: "field", MaxLen: 16, Optional: optional}
		got, err := field.Clean(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "field must ") {
				t.Fatalf("error %q does not start with the field name", err)
			}
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Clean(%+q) = %+q: not valid UTF-8", in, got)
		}
		if !norm.NFC.IsNormalString(got) {
			t.Fatalf("Clean(%+q) = %+q: not NFC", in, got)
		}
		if n := utf8.RuneCountInString(got); n > field.MaxLen {
			t.Fatalf("Clean(%+q) = %+q: %d characters", in, got, n)
		}
		if got == "" {
			if !optional {
				t.Fatalf("Clean(%+q) = \"\" for a required field", in)
			}
			return
		}
		if strings.IndexFunc(got, Visible) < 0 {
			t.Fatalf("Clean(%+q) = %+q: nothing visible", in, got)
		}
		for _, r := range got {
			if forbidden(r) != "" {
				t.Fatalf("Clean(%+q) = %+q: contains %U", in, got, r)
			}
		}
		first, _ := utf8.DecodeRuneInString(got)
		last, _ := utf8.DecodeLastRuneInString(got)
		if trimmable(first) || trimmable(last) {
			t.Fatalf("Clean(%+q) = %+q: not trimmed", in, got)
		}
		if again, err := field.Clean(got); err != nil || again != got {
			t.Fatalf("Clean(Clean(%+q)) = %+q, %v; want %+q", in, again, err, got)
		}
	})
}
