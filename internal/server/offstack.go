package server

// offStack runs f on a goroutine of its own and returns its results; the
// caller waits, so f may use what the caller owns (its ResponseWriter, say)
// and never outlives the call. A panic in f is raised again in the caller,
// with its value unchanged, where net/http recovers it as it would have
// (http.ErrAbortHandler included).
//
// Why: the goroutine of a Subscribe handler lives as long as its stream and
// keeps every stack page it ever grew to. Verifying an RS256 token and
// writing the response headers (net/http's chunkWriter.writeHeader alone has
// a 2.8 KiB frame) each take the handler's goroutine past 8 KiB, to 16 KiB,
// and the runtime shrinks a stack only when a GC finds it less than a
// quarter used: an idle stream parks on ~3.3 KiB of frames, just too many.
// Done here, the deep work grows a short-lived goroutine's stack, which is
// freed when it returns, and the handler's stays at 8 KiB. A goroutine
// costs ~1 us, against ~50 us to verify a token.
func offStack[T any](f func() (T, error)) (T, error) {
	type result struct {
		v     T
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			r.panic = recover()
			done <- r
		}()
		r.v, r.err = f()
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.v, r.err
}
