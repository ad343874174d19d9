package broker

import (
	"context"
	"regexp"
)

// An origin is the opaque id a client attaches to its calls (one browser
// tab, one Go client), carried by the events those calls cause in
// Event.origin. The client whose origin an event carries already applied its
// own call's answer and skips the event; every other stream, the same user's
// other devices and tabs included, handles it.

// originPattern is what an origin may look like: short, and safe to log and
// to put in a header.
var originPattern = regexp.MustCompile(`^[A-Za-z0-9._:~-]{1,128}$`)

// ValidOrigin reports whether s may be used as an origin: 1 to 128
// characters of [A-Za-z0-9._:~-].
func ValidOrigin(s string) bool { return originPattern.MatchString(s) }

type originKey struct{}

// WithOrigin returns a copy of ctx that carries the origin of the call being
// handled; the server's interceptor sets it from the request. An empty
// origin leaves ctx as it is.
func WithOrigin(ctx context.Context, origin string) context.Context {
	if origin == "" {
		return ctx
	}
	return context.WithValue(ctx, originKey{}, origin)
}

// OriginFromContext returns the origin [WithOrigin] stored in ctx, or "".
func OriginFromContext(ctx context.Context) string {
	s, _ := ctx.Value(originKey{}).(string)
	return s
}
