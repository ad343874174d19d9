package auth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
)

// Mint a dev token, as `realtimectl token --user alice --household
// household-1` does, and verify it, as the server's interceptor does.
func ExampleDevKey_Mint() {
	dir, err := os.MkdirTemp("", "realtimed-data-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	token, _, err := key.Mint(auth.MintOptions{UserID: "alice", HouseholdID: "household-1"})
	if err != nil {
		log.Fatal(err)
	}

	v, err := auth.NewVerifier(auth.Config{Dev: key})
	if err != nil {
		log.Fatal(err)
	}
	p, err := v.Verify(context.Background(), token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.UserID, p.HouseholdID)

	// A production verifier (here: one that trusts the same public key as
	// if it were CLERK_JWT_KEY) refuses dev tokens.
	prod, err := auth.NewVerifier(auth.Config{JWTKeyPEM: key.PublicKeyPEM()})
	if err != nil {
		log.Fatal(err)
	}
	_, err = prod.Verify(context.Background(), token)
	fmt.Println(auth.Code(err), auth.Reason(err))
	// Output:
	// alice household-1
	// unauthenticated wrong_issuer
}

// Wire the interceptor into a Connect handler; handlers then read the
// caller with auth.FromContext, and Publish checks auth.RequireService.
func ExampleNewInterceptor() {
	v, err := auth.NewVerifier(auth.Config{
		SecretKey:         os.Getenv("CLERK_SECRET_KEY"),
		JWTKeyPEM:         os.Getenv("CLERK_JWT_KEY"),
		AuthorizedParties: []string{"https://app.example.com"},
		ServiceKeys:       map[string]string{"shopping": os.Getenv("SHOPPING_SERVICE_KEY")},
	})
	if err != nil {
		log.Print(err)
		return
	}
	var svc realtimev1connect.RealtimeServiceHandler = realtimev1connect.UnimplementedRealtimeServiceHandler{}
	mux := http.NewServeMux()
	mux.Handle(realtimev1connect.NewRealtimeServiceHandler(svc, connect.WithInterceptors(auth.NewInterceptor(v))))
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}
