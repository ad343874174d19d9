// Package devapi serves the dev-mode HTTP endpoints: GET /dev/token mints a
// dev token for anybody who asks, GET /dev/streams lists the open streams.
// A server mounts them only in dev mode, behind the Host guard of package
// devhost, since a token for any user is the whole of a dev server's
// security.
//
// The handlers keep no state of their own and are safe for concurrent use.
package devapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/honeydo/realtime/internal/auth"
)

// Streams reports the server's open Subscribe streams, in total and by user.
type Streams func() (total int, byUser map[string]int)

// Mount registers GET /dev/token, which mints tokens with key, and GET
// /dev/streams, which answers from streams, on mux.
func Mount(mux *http.ServeMux, key *auth.DevKey, streams Streams) {
	mux.HandleFunc("GET /dev/token", func(w http.ResponseWriter, r *http.Request) { token(w, r, key) })
	mux.HandleFunc("GET /dev/streams", func(w http.ResponseWriter, _ *http.Request) {
		total, byUser := streams()
		writeJSON(w, map[string]any{"open": total, "byUser": byUser})
	})
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// token mints a dev token: GET /dev/token?user=alice&household=home&ttl=60s
// (household defaults to "home", ttl to 60s; rooms= adds extra rooms,
// comma-separated).
func token(w http.ResponseWriter, r *http.Request, key *auth.DevKey) {
	q := r.URL.Query()
	user, household := q.Get("user"), q.Get("household")
	if household == "" {
		household = "home"
	}
	if !idPattern.MatchString(user) || !idPattern.MatchString(household) {
		http.Error(w, "user and household must be 1-64 characters of [A-Za-z0-9_.-]", http.StatusBadRequest)
		return
	}
	ttl := 60 * time.Second
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 24*time.Hour {
			http.Error(w, "ttl must be a duration between 1s and 24h, e.g. 60s", http.StatusBadRequest)
			return
		}
		ttl = d
	}
	var rooms []string
	if v := q.Get("rooms"); v != "" {
		rooms = strings.Split(v, ",")
	}
	tok, exp, err := key.Mint(auth.MintOptions{UserID: user, HouseholdID: household, TTL: ttl, ExtraRooms: rooms})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, map[string]string{"token": tok, "expireTime": exp.UTC().Format(time.RFC3339Nano), "userId": user, "householdId": household})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
