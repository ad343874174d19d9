package server

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/connwatch"
)

// A direct stream is a Subscribe stream that, once Connect has written its
// response headers and welcome, leaves Connect's handler and writes the
// rest of its response itself (the Connect, gRPC-Web or gRPC envelope
// format, end of stream included), from whichever goroutine runs it
// (parked.go).
//
// Over HTTP/1.1 the connection is hijacked and the stream writes chunks
// straight to it. The handler's goroutine is the connection's, and while
// the stream lived it kept net/http's per-connection state reachable: the
// 4 KiB reader, the 4 KiB and 2 KiB writers, the request and its header
// map, the response, Connect's stream, an 8 KiB stack and net/http's
// background reader. That was two thirds of an idle stream's memory. A
// parked direct stream keeps only its own state, its timers and a
// registration with the server's [connwatch.Watcher], which notices the
// client leaving; its frames also skip Connect's Send and net/http's chunk
// writer (one write(2) each, as before).
//
// Over HTTP/2 the connection is shared and a stream ends when its handler
// returns, so the handler's goroutine stays; but Connect's handler returns
// and the goroutine waits in [detachable], a few frames deep, while the
// stream writes to net/http's ResponseWriter. Connect's stream state, its
// and the gate's request copies go, and the goroutine parks on few enough
// frames for the GC to shrink its stack from 8 KiB to 2-4. The request's context, which net/http
// ends when the client resets the stream or the connection goes, tells
// the stream that the client left.
//
// What the hand-off costs: the Connect interceptors see the call end when
// it detaches. The RPC metrics take the real end from the stream
// ([metrics.TakeStreamEnd]); a tracing span ends at the hand-off. An
// HTTP/1.1 response carries "Connection: close", as the connection cannot
// go back to net/http's pool; a stream's connection carries nothing else
// anyway. A timeout the client sent (Connect-Timeout-Ms, grpc-timeout) is
// its own to keep: the client ends the stream when it passes.
//
// Streams stay on Connect's path when they cannot be handed off: HTTP/1.0
// (no chunked encoding), gRPC over HTTP/1.1 (chunked trailers), a
// ResponseWriter that cannot be hijacked (over HTTP/1.1) or that something
// has set to encode the body (an embedding application's middleware), a
// codec other than proto and JSON, a response compression other than gzip,
// and once the server shuts down.

// detachableWriter is the ResponseWriter a Subscribe handler runs with.
// Once its stream is detached, Connect's last writes after the handler
// returns (the end of stream, which the stream writes itself) go nowhere:
// over HTTP/1.1 net/http would log every one as a write on a hijacked
// connection, and over HTTP/2 they would end the response under the
// stream's feet.
type detachableWriter struct {
	http.ResponseWriter
	detached bool // set and read on the handler's goroutine only
	// discard is the header map Connect sees once detached: over HTTP/2 it
	// would set gRPC trailers in the real one.
	discard http.Header
	// shared: the response is an HTTP/2 stream's, whose handler must not
	// return before the stream's end is written.
	shared bool
	// reqCtx is the request's context as net/http made it.
	reqCtx context.Context
	// over is closed by a detached HTTP/2 stream once its end is written
	// (or the client left): the handler may return.
	over chan struct{}
}

type detachableWriterKey struct{}

// detachable lets the Subscribe streams of h become direct streams. Over
// HTTP/2 it keeps the handler, once h has returned, until the stream that
// detached has ended: keep the chain of handlers above it short, as their
// frames are what the goroutine parks on.
func detachable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An HTTP/1.0 response has no chunked encoding: its body ends with
		// the connection, which a direct stream does not write.
		if r.ProtoMajor < 2 && !r.ProtoAtLeast(1, 1) {
			h.ServeHTTP(w, r)
			return
		}
		dw := &detachableWriter{ResponseWriter: w, shared: r.ProtoMajor >= 2, reqCtx: r.Context()}
		h.ServeHTTP(dw, r.WithContext(context.WithValue(r.Context(), detachableWriterKey{}, dw)))
		if dw.over != nil {
			dw.discard = nil // what Connect wrote last: gRPC's trailers
			<-dw.over
		}
	})
}

func (w *detachableWriter) Header() http.Header {
	if w.detached {
		if w.discard == nil {
			w.discard = make(http.Header)
		}
		return w.discard
	}
	return w.ResponseWriter.Header()
}

func (w *detachableWriter) Write(p []byte) (int, error) {
	if w.detached {
		return 0, http.ErrHijacked
	}
	return w.ResponseWriter.Write(p)
}

func (w *detachableWriter) WriteHeader(code int) {
	if !w.detached {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Flush implements http.Flusher, which Connect requires of a streaming
// response.
func (w *detachableWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController calls.
func (w *detachableWriter) FlushError() error {
	if w.detached {
		return http.ErrHijacked
	}
	return flush(w.ResponseWriter)
}

func flush(w http.ResponseWriter) error {
	switch f := w.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.ErrNotSupported
}

// Unwrap lets http.ResponseController reach net/http's writer.
func (w *detachableWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// directPlan is what a stream needs to go direct, known before it opens.
type directPlan struct {
	w     *detachableWriter
	web   bool // gRPC-Web
	grpc  bool // gRPC, over HTTP/2 only; neither: the Connect protocol
	codec marshalAppender
}

// marshalAppender is the part of a connect.Codec that a direct stream uses.
type marshalAppender interface {
	MarshalAppend(dst []byte, m any) ([]byte, error)
}

// planDirect says whether a stream over protocol with the request's
// Content-Type may go direct: nil unless it runs behind [detachable], with
// a codec whose frames it can write.
func planDirect(ctx context.Context, protocol, contentType string) *directPlan {
	w, _ := ctx.Value(detachableWriterKey{}).(*detachableWriter)
	if w == nil {
		return nil
	}
	p := &directPlan{w: w}
	switch protocol {
	case connect.ProtocolConnect:
	case connect.ProtocolGRPCWeb:
		p.web = true
	case connect.ProtocolGRPC:
		// connect-go serves a gRPC server stream over HTTP/1.1 too, whose
		// trailers would be chunked ones: those stay on Connect's path.
		if !w.shared {
			return nil
		}
		p.grpc = true
	default:
		return nil
	}
	switch codecName(protocol, contentType) {
	case "proto":
		p.codec = protoCodec{}
	case "json":
		p.codec = jsonCodec{}
	default:
		return nil
	}
	return p
}

// shared says the stream's connection is HTTP/2, shared with others.
func (p *directPlan) shared() bool { return p.w.shared }

// detach takes over the plan's response, whose headers and welcome Connect
// has sent, and returns the stream's direct writer: over HTTP/1.1 by
// hijacking the connection. It fails, and the stream stays on Connect's
// path, when the response cannot be hijacked, Connect compresses it with
// anything but gzip, or middleware encodes the body.
func (p *directPlan) detach(compressMinBytes int) (*directWriter, error) {
	encHeader := "Connect-Content-Encoding"
	if p.web || p.grpc {
		encHeader = "Grpc-Encoding"
	}
	gz := false
	switch enc := p.w.Header().Get(encHeader); enc {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		return nil, errors.New("response compression " + enc)
	}
	if enc := p.w.Header().Get("Content-Encoding"); enc != "" {
		// Middleware encodes the body: what it wrote is not ours to go on.
		return nil, errors.New("body encoded as " + enc)
	}
	d := &directWriter{web: p.web, grpc: p.grpc, codec: p.codec}
	if gz {
		d.gzipMin = max(compressMinBytes, 1)
	}
	if p.w.shared {
		p.w.over = make(chan struct{})
		d.h2 = &sharedResponse{w: p.w.ResponseWriter, rc: http.NewResponseController(p.w.ResponseWriter), ctx: p.w.reqCtx, over: p.w.over}
		p.w.detached = true
		return d, nil
	}
	conn, brw, err := http.NewResponseController(p.w.ResponseWriter).Hijack()
	if err != nil {
		return nil, err
	}
	p.w.detached = true
	d.conn = conn
	// The client sent more after its request (pipelining), which nothing
	// can answer while the stream holds the connection.
	d.pipelined = brw.Reader.Buffered() > 0
	return d, nil
}

// directWriter writes a detached stream's frames: to its hijacked HTTP/1.1
// connection (conn), or to its HTTP/2 stream's response (h2).
type directWriter struct {
	conn    net.Conn
	h2      *sharedResponse
	web     bool // gRPC-Web
	grpc    bool // gRPC: the end of stream is HTTP/2 trailers
	codec   marshalAppender
	gzipMin int  // compress messages of at least this many bytes; 0: never
	broken  bool // a write failed: the end of stream is not written
	// gone is set when the client leaves. Over HTTP/1.1 it is also set
	// when the client sends anything: a client that reads a streaming
	// response sends nothing until it ends, unless it pipelines another
	// request behind it ([directWriter.seen] tells which).
	gone      atomic.Bool
	pipelined bool // bytes of another request came with this one
	data      bool // the watch saw data: set before gone
	stopWatch func()
}

// sharedResponse is an HTTP/2 direct stream's response. Its handler waits
// in [detachable] until over is closed, after which nothing may touch w.
type sharedResponse struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	ctx  context.Context // the request's: ends when the client leaves
	over chan struct{}
}

// watch has gone set, and then left called, when the client leaves or
// sends anything, which w notices without a goroutine of the stream's
// (over HTTP/2, the request's context ending).
// Watch fails only once w is closed, after Shutdown has ended every
// direct stream, and a stream that meets it is ending for Shutdown too:
// it goes on as if the client had left.
func (d *directWriter) watch(w *connwatch.Watcher, left func()) {
	if d.h2 != nil {
		stop := context.AfterFunc(d.h2.ctx, func() {
			d.gone.Store(true)
			left()
		})
		d.stopWatch = func() { stop() }
		return
	}
	if !d.pipelined {
		stop, err := w.Watch(d.conn, func(data bool) {
			d.data = data
			d.gone.Store(true)
			left()
		})
		if err == nil {
			d.stopWatch = stop
			return
		}
	}
	d.gone.Store(true)
	left()
}

// What the watch saw, once gone is set ([directWriter.seen]).
type watchNews int

const (
	clientLeft      watchNews = iota // closed or reset the connection
	clientPipelined                  // sent another request
	clientStayed                     // TLS: sent a record that is no request; watch again
)

// seen says what the watch saw, once gone is set. Over TLS, where any
// record is data to the watch (TLS 1.3 hides an alert's type), it reads
// the connection for up to a second to tell: a close_notify alert reads
// as end of file, a request as data, and a record that is neither (a key
// update) or has not all arrived as nothing; then the stream watches again.
func (d *directWriter) seen() watchNews {
	switch {
	case d.pipelined:
		return clientPipelined
	case !d.data:
		return clientLeft
	}
	if _, isTLS := d.conn.(*tls.Conn); !isTLS {
		return clientPipelined
	}
	_ = d.conn.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	n, err := d.conn.Read(b[:])
	if n > 0 {
		d.pipelined = true
		return clientPipelined
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		// crypto/tls keeps a partial record across a read timeout.
		return clientStayed
	}
	d.data = false // told: not again
	return clientLeft
}

// rewatch watches again after [directWriter.seen] found the client stayed.
func (d *directWriter) rewatch(w *connwatch.Watcher, left func()) {
	_ = d.conn.SetReadDeadline(time.Time{})
	if d.stopWatch != nil {
		d.stopWatch()
		d.stopWatch = nil
	}
	d.gone.Store(false)
	d.data = false
	d.watch(w, left)
}

// errPipelined ends a direct stream whose client sent another request on
// its connection.
var errPipelined = errors.New("another request arrived on this stream's HTTP/1.1 connection, which cannot answer it while the stream is open: send each request on a connection of its own")

// Envelope flags of the Connect streaming and gRPC-Web protocols.
const (
	envelopeCompressed   = 0x01
	connectEndStreamFlag = 0x02
	grpcWebTrailerFlag   = 0x80
	chunkHeaderRoom      = 16 + 2 // hex digits of a length, CRLF
	envelopePrefix       = 5      // flags, big-endian length
	directFrameStart     = chunkHeaderRoom + envelopePrefix
	chunkedEndOfBody     = "0\r\n\r\n"
)

func (d *directWriter) send(frame any) error {
	if fb, ok := frame.(*frameBuffer); ok { // built in place, frameEncoder.room
		return d.write(d.envelope(fb, fb.b, 0, ""))
	}
	buf := frameBuffers.get()
	defer frameBuffers.put(buf)
	b, err := d.codec.MarshalAppend(buf.b[:directFrameStart], frame)
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	return d.write(d.envelope(buf, b, 0, ""))
}

func (d *directWriter) setWriteDeadline(t time.Time) error {
	if d.h2 != nil {
		return d.h2.rc.SetWriteDeadline(t)
	}
	return d.conn.SetWriteDeadline(t)
}

// envelope turns b, a message after directFrameStart bytes of room (b is
// buf.b or grew from it), into its envelope, compressed when it is big
// enough; it returns what to write. Over HTTP/1.1 that is one HTTP chunk
// holding the envelope, with tail (the end of the body) after the chunk.
func (d *directWriter) envelope(buf *frameBuffer, b []byte, flags byte, tail string) []byte {
	msg := b[directFrameStart:]
	if d.gzipMin > 0 && len(msg) >= d.gzipMin {
		buf.z.Reset()
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf.z)
		_, _ = zw.Write(msg)
		_ = zw.Close()
		zw.Reset(io.Discard) // not to keep buf alive in the pool
		gzipWriters.Put(zw)
		b = append(b[:directFrameStart], buf.z.Bytes()...)
		msg = b[directFrameStart:]
		flags |= envelopeCompressed
	}
	b[chunkHeaderRoom] = flags
	binary.BigEndian.PutUint32(b[chunkHeaderRoom+1:directFrameStart], uint32(len(msg)))
	if d.h2 != nil { // HTTP/2 frames the body itself
		buf.b = b[:0]
		return b[chunkHeaderRoom:]
	}
	var hex [16]byte
	size := strconv.AppendUint(hex[:0], uint64(envelopePrefix+len(msg)), 16)
	start := chunkHeaderRoom - 2 - len(size)
	copy(b[start:], size)
	b[chunkHeaderRoom-2], b[chunkHeaderRoom-1] = '\r', '\n'
	b = append(b, '\r', '\n')
	b = append(b, tail...)
	buf.b = b[:0]
	return b[start:]
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// write writes p; an error is Unknown, as Connect reports a failed write.
func (d *directWriter) write(p []byte) error {
	var err error
	if d.h2 != nil {
		// net/http's HTTP/2 writer copies p into its buffer; the flush
		// hands it to the connection's serve goroutine and waits for the
		// frame to be written (or the write deadline).
		if _, err = d.h2.w.Write(p); err == nil {
			err = flush(d.h2.w)
		}
	} else {
		_, err = d.conn.Write(p)
	}
	if err != nil {
		d.broken = true
		return connect.NewError(connect.CodeUnknown, err)
	}
	return nil
}

// end writes the end of stream for err, as Connect writes it, unless the
// client is gone or a write failed; then it stops the watch and closes the
// connection, or over HTTP/2 lets the handler return, which ends the
// stream (with the trailers, for gRPC).
func (d *directWriter) end(err error) {
	defer func() {
		if d.stopWatch != nil {
			d.stopWatch()
		}
		if d.h2 != nil {
			close(d.h2.over)
		} else {
			_ = d.conn.Close()
		}
	}()
	if d.broken || errors.Is(err, errClientLeft) {
		return
	}
	if d.gone.Load() && d.seen() == clientLeft { // nobody reads the end
		return
	}
	if d.grpc {
		grpcTrailers(d.h2.w.Header(), err)
		return
	}
	buf := frameBuffers.get()
	defer frameBuffers.put(buf)
	var payload []byte
	flags := byte(connectEndStreamFlag)
	if d.web {
		flags = grpcWebTrailerFlag
		payload = grpcWebTrailer(buf.b[:directFrameStart], err)
	} else {
		payload = connectEndStream(buf.b[:directFrameStart], err)
	}
	_ = d.write(d.envelope(buf, payload, flags, chunkedEndOfBody))
}

// errClientLeft is in the error a stream whose client has left ends with
// ([clientGone]).
var errClientLeft = errors.New("the client closed the stream")

// clientGone is the error of a stream whose client has left: Canceled, as
// connect-go reports a call its client ended. A new one each time, as
// interceptors may set its metadata.
func clientGone() error { return connect.NewError(connect.CodeCanceled, errClientLeft) }

// connectEndStream appends the Connect protocol's end-of-stream message
// for err to b, as connect-go writes it: {} or {"error":{...}}. A stream's
// errors carry neither details nor metadata.
func connectEndStream(b []byte, err error) []byte {
	type wireError struct {
		Code    string `json:"code"`
		Message string `json:"message,omitempty"`
	}
	var end struct {
		Error *wireError `json:"error,omitempty"`
	}
	if err != nil {
		code, msg := codeAndMessage(err)
		end.Error = &wireError{Code: code.String(), Message: msg}
	}
	j, _ := json.Marshal(end) // cannot fail: two strings
	return append(b, j...)
}

// grpcWebTrailer appends gRPC-Web's trailer block for err to b, as
// connect-go writes it: http.Header's wire form with lower-case names, in
// sorted order.
func grpcWebTrailer(b []byte, err error) []byte {
	if err == nil {
		return append(b, "grpc-status: 0\r\n"...)
	}
	code, msg := codeAndMessage(err)
	b = append(b, "grpc-message: "...)
	// connect-go writes the block with http.Header.Write, which trims a
	// value's ends; after the percent-encoding only spaces are left there.
	b = appendGRPCPercentEncoded(b, strings.Trim(msg, " "))
	b = append(b, "\r\ngrpc-status: "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "\r\n"...)
}

// grpcTrailers sets gRPC's trailers for err in h, as connect-go sets them:
// net/http sends them when the handler returns.
func grpcTrailers(h http.Header, err error) {
	if err == nil {
		h.Set(http.TrailerPrefix+"Grpc-Status", "0")
		return
	}
	code, msg := codeAndMessage(err)
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(code)))
	h.Set(http.TrailerPrefix+"Grpc-Message", string(appendGRPCPercentEncoded(nil, msg)))
}

// codeAndMessage are err's Connect code and the message a client sees.
func codeAndMessage(err error) (connect.Code, string) {
	if cerr := new(connect.Error); errors.As(err, &cerr) {
		return cerr.Code(), cerr.Message()
	}
	return connect.CodeUnknown, err.Error()
}

// appendGRPCPercentEncoded appends msg percent-encoded as gRPC requires of
// grpc-message: printable ASCII except '%' as is, every other byte as %XX.
func appendGRPCPercentEncoded(b []byte, msg string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return b
}

// directStreams keeps the direct streams, which net/http no longer tracks
// once they have taken their HTTP/1.1 connections, so that Shutdown can
// end them (a parked stream has no goroutine that would notice; an HTTP/2
// one's handler waits for it) and wait for them; once it has begun, no
// more streams go direct.
type directStreams struct {
	mu     sync.Mutex
	live   map[*liveStream]struct{}
	closed bool
	idle   chan struct{} // closed when live empties after shut
}

// begin adds a stream about to go direct; it says false once the server
// is shutting down. A stream added calls done when it has ended.
func (d *directStreams) begin(ls *liveStream) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	if d.live == nil {
		d.live = make(map[*liveStream]struct{})
	}
	d.live[ls] = struct{}{}
	return true
}

func (d *directStreams) done(ls *liveStream) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.live, ls)
	if len(d.live) == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// shut lets no more streams go direct and wakes those that did, which
// end as the server's closing channel (closed before) says.
func (d *directStreams) shut() {
	d.mu.Lock()
	d.closed = true
	streams := make([]*liveStream, 0, len(d.live))
	for ls := range d.live {
		streams = append(streams, ls)
	}
	d.mu.Unlock()
	for _, ls := range streams {
		ls.wakeFor(0)
	}
}

// wait waits until the direct streams have ended, or ctx ends; call it
// after shut.
func (d *directStreams) wait(ctx context.Context) error {
	d.mu.Lock()
	if len(d.live) == 0 {
		d.mu.Unlock()
		return nil
	}
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
