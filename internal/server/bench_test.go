package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/server"
)

func TestBenchAPI(t *testing.T) {
	srv := newTestServer(t, func(c *server.Config) { c.BenchAPI = true })
	tok, _, err := srv.Key.Mint(auth.MintOptions{UserID: "0", HouseholdID: "0", TTL: time.Minute, ExtraRooms: []string{"room:bench"}})
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, srv.realtimeClient(t, clientKinds[0], tok), "")
	res, err := http.Get(srv.URL + "/bench/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Peer       string
		Pid, Conns int
	}
	json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if info.Peer != "realtimed" || info.Pid == 0 || info.Conns != 1 {
		t.Fatalf("info = %+v", info)
	}
	for _, body := range []string{
		`{"mode":"room","room":"bench","rate":1000,"duration_ms":50,"size":200}`,
		`{"mode":"users","users":1,"rate":1000,"duration_ms":50,"size":200}`,
	} {
		res, err := http.Post(srv.URL+"/bench/publish", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var pub struct {
			Published, Errors int64
		}
		json.NewDecoder(res.Body).Decode(&pub)
		res.Body.Close()
		if pub.Published != 50 || pub.Errors != 0 {
			t.Fatalf("%s: %+v", body, pub)
		}
		for i := range pub.Published {
			ev := s.next(t)
			p := ev.GetProbe()
			if p == nil || p.GetSeq() != uint64(i) || len(ev.GetCursor()) == 0 {
				t.Fatalf("event %d: %v", i, ev)
			}
		}
	}
	res, err = http.Post(srv.URL+"/bench/gc", "application/json", bytes.NewReader(nil))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("gc: %v %v", res, err)
	}
}
