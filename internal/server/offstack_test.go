package server

import (
	"net/http"
	"testing"
)

// A panic in offStack's goroutine reaches the caller with its value
// unchanged: net/http aborts quietly on http.ErrAbortHandler, and only if
// it is that very value.
func TestOffStackKeepsThePanicValue(t *testing.T) {
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Fatalf("recovered %v (%T), want http.ErrAbortHandler", p, p)
		}
	}()
	offStack(func() (int, error) { panic(http.ErrAbortHandler) })
	t.Fatal("offStack returned after its function panicked")
}
