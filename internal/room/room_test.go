package room

import (
	"slices"
	"testing"

	"github.com/honeydo/realtime/internal/auth"
)

func TestConstructors(t *testing.T) {
	for _, tt := range []struct {
		got, want Name
	}{
		{User("alice"), "user:alice"},
		{User(""), "user:"},
		{Household("org_1"), "household:org_1"},
		{Extra("bench"), "room:bench"},
		{Broadcast, "broadcast"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		name   Name
		kind   Kind
		id     string
		remake Name // the constructor call that gives name back; "" for none
	}{
		{"user:alice", KindUser, "alice", User("alice")},
		{"user:", KindUser, "", User("")},
		{"user:a:b", KindUser, "a:b", User("a:b")},
		{"household:h1", KindHousehold, "h1", Household("h1")},
		{"broadcast", KindBroadcast, "", Broadcast},
		{"room:bench", KindExtra, "bench", Extra("bench")},
		{"custom1", KindOther, "custom1", ""},
		{"user", KindOther, "user", ""},
		{"room", KindOther, "room", ""},
		{"broadcast:x", KindOther, "broadcast:x", ""},
		{"broadcast2", KindOther, "broadcast2", ""},
		{"team:kitchen", KindOther, "team:kitchen", ""},
		{"", KindOther, "", ""},
		// Names a dev token may carry: none becomes a kind of its own.
		{"x:user", KindOther, "x:user", ""},
		{"Household:h1", KindOther, "Household:h1", ""},
		{"évil\n{}", KindOther, "évil\n{}", ""},
	} {
		kind, id := tt.name.Split()
		if kind != tt.kind || id != tt.id {
			t.Errorf("%q.Split() = %q, %q; want %q, %q", tt.name, kind, id, tt.kind, tt.id)
		}
		if got := tt.name.Kind(); got != tt.kind {
			t.Errorf("%q.Kind() = %q, want %q", tt.name, got, tt.kind)
		}
		if tt.remake != "" && tt.remake != tt.name {
			t.Errorf("constructor gives %q, want %q", tt.remake, tt.name)
		}
	}
}

func TestFor(t *testing.T) {
	for _, tt := range []struct {
		desc string
		p    auth.Principal
		want []Name
	}{
		{"person with household", auth.Principal{UserID: "alice", HouseholdID: "home"},
			[]Name{"user:alice", "household:home", "broadcast"}},
		{"person without household", auth.Principal{UserID: "alice"},
			[]Name{"user:alice", "broadcast"}},
		{"extra rooms come last, as given", auth.Principal{UserID: "bob", HouseholdID: "h", ExtraRooms: []string{"room:bench", "custom"}},
			[]Name{"user:bob", "household:h", "broadcast", "room:bench", "custom"}},
		{"a service joins nothing, even named like a person", auth.Principal{UserID: "alice", HouseholdID: "home", Service: true, ExtraRooms: []string{"room:bench"}},
			nil},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			if got := For(&tt.p); !slices.Equal(got, tt.want) {
				t.Errorf("For = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	if got := Strings([]Name{User("a"), Broadcast}); !slices.Equal(got, []string{"user:a", "broadcast"}) {
		t.Errorf("Strings = %q", got)
	}
	if got := Strings(nil); got == nil || len(got) != 0 {
		t.Errorf("Strings(nil) = %#v, want an empty, non-nil slice", got)
	}
}
