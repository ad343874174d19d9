package broker

import (
	"errors"
	"testing"
)

func TestParseCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Position
		wantErr bool
	}{
		{in: "abc234_0", want: Position{Epoch: "abc234", Offset: 0}},
		{in: "e_18446744073709551615", want: Position{Epoch: "e", Offset: 1<<64 - 1}},
		{in: "", wantErr: true},
		{in: "_1", wantErr: true},
		{in: "abc_", wantErr: true},
		{in: "abc_01", wantErr: true},
		{in: "abc_-1", wantErr: true},
		{in: "abc_18446744073709551616", wantErr: true},
		{in: "ABC_1", wantErr: true},
		{in: "a b_1", wantErr: true},
		{in: "abc_1_2", wantErr: true},
		{in: "abcdefghijklmnopqrstuvwxyz0123456789_1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseCursor(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("ParseCursor(%q) error = %v, want ErrInvalidCursor", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if back := got.Cursor(); back != tt.in {
			t.Errorf("round trip of %q gave %q", tt.in, back)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"abc_1", "e_0", "", "_", "x_01", "k2j3_18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("error %v does not wrap ErrInvalidCursor", err)
			}
			return
		}
		if p.Cursor() != s {
			t.Fatalf("accepted %q but re-encodes as %q", s, p.Cursor())
		}
	})
}
