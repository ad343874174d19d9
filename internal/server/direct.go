package server

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// A direct stream is an HTTP/1.1 Subscribe stream that, once Connect has
// written its response headers and welcome, leaves the handler: the
// connection is hijacked and a goroutine of the stream's own writes the
// rest of the response (chunked, in the Connect or gRPC-Web envelope
// format, end of stream included) straight to it.
//
// Why: over HTTP/1.1 the handler's goroutine is the connection's, and while
// the stream lives it keeps net/http's per-connection state reachable: the
// 4 KiB reader, the 4 KiB and 2 KiB writers, the request and its header
// map, the response, Connect's stream, an 8 KiB stack and net/http's
// background reader. That was two thirds of an idle stream's memory. A
// direct stream keeps a small stack parked in [liveStream.pump], a 1-byte
// read that notices the client leaving, and its own state; its frames also
// skip Connect's Send and net/http's chunk writer (one write(2) each, as
// before).
//
// What the hand-off costs: the Connect interceptors see the call end when
// it detaches. The RPC metrics take the real end from the stream
// ([metrics.TakeStreamEnd]); a tracing span ends at the hand-off. The
// response carries "Connection: close", as the connection cannot go back
// to net/http's pool; a stream's connection carries nothing else anyway.
//
// Streams stay on Connect's path when they cannot be handed off: HTTP/2
// (the connection is shared), a ResponseWriter that cannot be hijacked (an
// embedding application's middleware), a codec other than proto and JSON,
// or a response compression other than gzip.

// detachableWriter is the ResponseWriter a Subscribe handler runs with over
// HTTP/1.1. Once its stream is detached, Connect's last writes after the
// handler returns (the end of stream that the stream writes itself) go
// nowhere: net/http would log every one as a write on a hijacked
// connection.
type detachableWriter struct {
	http.ResponseWriter
	detached bool // set and read on the handler's goroutine only
}

type detachableWriterKey struct{}

// detachable lets the Subscribe streams of h become direct streams.
func detachable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			h.ServeHTTP(w, r)
			return
		}
		dw := &detachableWriter{ResponseWriter: w}
		h.ServeHTTP(dw, r.WithContext(context.WithValue(r.Context(), detachableWriterKey{}, dw)))
	})
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
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach net/http's writer.
func (w *detachableWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// directPlan is what a stream needs to go direct, known before it opens.
type directPlan struct {
	w     *detachableWriter
	web   bool // gRPC-Web, else the Connect protocol
	codec marshalAppender
}

// marshalAppender is the part of a connect.Codec that a direct stream uses.
type marshalAppender interface {
	MarshalAppend(dst []byte, m any) ([]byte, error)
}

// planDirect says whether a stream over protocol with the request's
// Content-Type may go direct: nil unless it runs over HTTP/1.1 behind
// [detachable], with a codec whose frames it can write.
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

// detach hijacks the plan's connection, whose response headers and welcome
// Connect has sent, and returns the stream's direct writer. It fails, and
// the stream stays on Connect's path, when the response cannot be hijacked
// or Connect compresses it with anything but gzip.
func (p *directPlan) detach(compressMinBytes int) (*directWriter, error) {
	encHeader := "Connect-Content-Encoding"
	if p.web {
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
	conn, brw, err := http.NewResponseController(p.w.ResponseWriter).Hijack()
	if err != nil {
		return nil, err
	}
	p.w.detached = true
	d := &directWriter{conn: conn, web: p.web, codec: p.codec, gone: make(chan struct{})}
	if gz {
		d.gzipMin = max(compressMinBytes, 1)
	}
	if brw.Reader.Buffered() > 0 {
		// The client sent more after its request (pipelining): nothing can
		// answer it, so the stream ends as if the client had left.
		close(d.gone)
	} else {
		go d.watch()
	}
	return d, nil
}

// directWriter writes a detached stream's frames to its connection.
type directWriter struct {
	conn    net.Conn
	web     bool
	codec   marshalAppender
	gzipMin int  // compress messages of at least this many bytes; 0: never
	broken  bool // a write failed: the end of stream is not written
	// gone is closed when the client closes its side of the connection (or
	// sends anything: an HTTP/1.1 client that reads a streaming response
	// sends nothing until it ends).
	gone chan struct{}
}

// watch waits for the client to leave. It returns when the connection is
// closed by either side; [directWriter.end] waits for it.
func (d *directWriter) watch() {
	defer close(d.gone)
	var b [1]byte
	_, _ = d.conn.Read(b[:])
}

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
	buf := frameBuffers.get()
	defer frameBuffers.put(buf)
	b, err := d.codec.MarshalAppend(buf.b[:directFrameStart], frame)
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	return d.write(d.envelope(buf, b, 0, ""))
}

func (d *directWriter) setWriteDeadline(t time.Time) error { return d.conn.SetWriteDeadline(t) }

// envelope turns b, a message after directFrameStart bytes of room (b is
// buf.b or grew from it), into one HTTP chunk holding its envelope,
// compressed when it is big enough, with tail (the end of the body) after
// the chunk; it returns what to write.
func (d *directWriter) envelope(buf *frameBuffer, b []byte, flags byte, tail string) []byte {
	msg := b[directFrameStart:]
	if d.gzipMin > 0 && len(msg) >= d.gzipMin {
		buf.z.Reset()
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf.z)
		_, _ = zw.Write(msg)
		_ = zw.Close()
		gzipWriters.Put(zw)
		b = append(b[:directFrameStart], buf.z.Bytes()...)
		msg = b[directFrameStart:]
		flags |= envelopeCompressed
	}
	b[chunkHeaderRoom] = flags
	binary.BigEndian.PutUint32(b[chunkHeaderRoom+1:directFrameStart], uint32(len(msg)))
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

func (d *directWriter) write(p []byte) error {
	if _, err := d.conn.Write(p); err != nil {
		d.broken = true
		return connect.NewError(connect.CodeUnavailable, err)
	}
	return nil
}

// end writes the end of stream for err, as Connect writes it, unless the
// client is gone or a write failed; then it closes the connection and waits
// for [directWriter.watch].
func (d *directWriter) end(err error) {
	defer func() {
		_ = d.conn.Close()
		<-d.gone
	}()
	if d.broken || errors.Is(err, errClientGone) {
		return
	}
	select {
	case <-d.gone:
		return
	default:
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

// errClientGone ends a stream whose client has left.
var errClientGone = connect.NewError(connect.CodeCanceled, errors.New("the client closed the stream"))

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
	b = appendGRPCPercentEncoded(b, msg)
	b = append(b, "\r\ngrpc-status: "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "\r\n"...)
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
