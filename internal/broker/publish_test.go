package broker

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/room"
)

func TestStamp(t *testing.T) {
	t.Parallel()
	accepted := time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC)
	target := Target{Room: room.Household("home"), ExceptUserID: "bob"}
	for _, tt := range []struct {
		desc   string
		pos    Position
		id     string // the publisher's id; empty for none
		wantID string
	}{
		{"an empty id is made of the position", Position{Epoch: "ep", Offset: 7}, "", "ep-7"},
		{"the publisher's id is kept", Position{Epoch: "ep", Offset: 8}, "evt-1", "evt-1"},
		{"offsets are decimal", Position{Epoch: "abc", Offset: 1 << 40}, "", "abc-1099511627776"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			ev := note("x")
			ev.Id = tt.id
			ev.Time = timestamppb.New(accepted)
			m, err := stamp(tt.pos, target, ev, accepted)
			if err != nil {
				t.Fatal(err)
			}
			if m.Event != ev || ev.Id != tt.wantID || ev.Cursor != tt.pos.Cursor() {
				t.Errorf("event id %q cursor %q; want %q, %q", ev.Id, ev.Cursor, tt.wantID, tt.pos.Cursor())
			}
			if m.Position != tt.pos || m.Target != target || !m.Time.Equal(accepted) {
				t.Errorf("message at %v to %v accepted %v; want %v, %v, %v", m.Position, m.Target, m.Time, tt.pos, target, accepted)
			}
			back := new(realtimev1.Event)
			if err := proto.Unmarshal(m.Wire, back); err != nil || !proto.Equal(back, ev) {
				t.Errorf("Wire decodes to %v (%v), want %v", back, err, ev)
			}
		})
	}
}

func TestStampInvalid(t *testing.T) {
	t.Parallel()
	ev := note("x")
	ev.SenderUserId = "\xff" // not UTF-8: proto.Marshal refuses it
	if _, err := stamp(Position{Epoch: "ep", Offset: 1}, Target{Room: room.Broadcast}, ev, time.Now()); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("err = %v, want ErrInvalidEvent", err)
	}
}
