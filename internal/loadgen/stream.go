package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The Subscribe endpoint and the request body both protocols send: one
// envelope holding an empty SubscribeRequest (no resume cursor).
const subscribePath = "/honeydo.realtime.v1.RealtimeService/Subscribe"

var emptyRequest = []byte{0, 0, 0, 0, 0}

// Buffer sizes of one subscriber. A stream starts small, since W1 holds
// thousands of idle ones, and doubles while reads keep filling it, up to
// maxReadBuffer.
const (
	initialReadBuffer = 2 << 10
	maxReadBuffer     = 256 << 10
	http1ReadBuffer   = 4 << 10 // bufio under the HTTP/1.1 response parser
)

// stream is one Subscribe call. After the welcome frame a single goroutine
// owns it: it reads into buf, scans every complete envelope in place and
// folds what it counted into the run's totals once per read.
type stream struct {
	r     *run
	body  io.Reader
	close func()
	grpc  bool

	buf        []byte
	start, end int // unread bytes are buf[start:end]
	t          tally
	folded     tally // part of t already added to the run's totals

	closing atomic.Bool
}

// shut closes the stream on purpose: its end is not a disconnect.
func (s *stream) shut() {
	if s.closing.CompareAndSwap(false, true) {
		s.close()
	}
}

// awaitWelcome reads until the welcome frame has been scanned.
func (s *stream) awaitWelcome() error {
	for {
		kind, err := s.read()
		if kind == frameWelcome {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// loop reads until the stream ends, then counts a disconnect unless the
// run closed it.
func (s *stream) loop() {
	for {
		if _, err := s.read(); err != nil {
			if !s.closing.Load() {
				s.r.disconnects.Add(1)
				s.r.noteError(err)
			}
			s.close()
			return
		}
	}
}

// read does one Read and scans every complete message; it returns the kind
// of the last frame scanned.
func (s *stream) read() (frameKind, error) {
	if s.start == s.end {
		s.start, s.end = 0, 0
	}
	if s.buf == nil {
		s.buf = make([]byte, initialReadBuffer)
	}
	if len(s.buf)-s.end < 512 && s.start > 0 {
		s.end = copy(s.buf, s.buf[s.start:s.end])
		s.start = 0
	}
	if s.end == len(s.buf) {
		s.grow(2 * len(s.buf))
	}
	n, err := s.body.Read(s.buf[s.end:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return frameOther, s.endError(err)
	}
	full := s.end+n == len(s.buf)
	s.end += n
	s.t.nowUs = time.Now().UnixMicro()
	kind, need, perr := s.scan()
	s.fold()
	if perr != nil {
		return kind, perr
	}
	if need > len(s.buf)-s.start {
		s.grow(need)
	} else if full && len(s.buf) < maxReadBuffer {
		// The reader is behind: read more per call.
		s.grow(2 * len(s.buf))
	}
	if err != nil {
		return kind, s.endError(err)
	}
	return kind, nil
}

// grow makes buf hold at least n bytes, keeping the unread ones at its start.
func (s *stream) grow(n int) {
	size := len(s.buf)
	for size < n {
		size *= 2
	}
	nb := make([]byte, size)
	s.end = copy(nb, s.buf[s.start:s.end])
	s.start = 0
	s.buf = nb
}

// scan consumes the complete envelopes in buf[start:end]. need is the full
// size of an incomplete envelope at the end, if its header has arrived.
func (s *stream) scan() (kind frameKind, need int, err error) {
	for {
		rest := s.buf[s.start:s.end]
		if len(rest) < envelopeHeader {
			return kind, 0, nil
		}
		n := int(uint32(rest[1])<<24 | uint32(rest[2])<<16 | uint32(rest[3])<<8 | uint32(rest[4]))
		if n > maxMessage {
			return kind, 0, fmt.Errorf("message of %d bytes exceeds the %d limit", n, maxMessage)
		}
		if len(rest) < envelopeHeader+n {
			return kind, envelopeHeader + n, nil
		}
		flags, msg := rest[0], rest[envelopeHeader:envelopeHeader+n]
		s.start += envelopeHeader + n
		switch {
		case flags&flagEndStream != 0 && !s.grpc:
			return kind, 0, endStreamError(msg)
		case flags&flagCompressed != 0:
			return kind, 0, errors.New("compressed message: the generator never offers compression")
		}
		k, err := scanResponse(msg, &s.t)
		if err != nil {
			return kind, 0, err
		}
		kind = k
	}
}

// fold adds what this stream counted since the last fold to the run.
func (s *stream) fold() {
	r := s.r
	if d := s.t.probes - s.folded.probes; d > 0 {
		r.received.Add(d)
		for {
			l := r.lastRecvUs.Load()
			if s.t.lastUs <= l || r.lastRecvUs.CompareAndSwap(l, s.t.lastUs) {
				break
			}
		}
	}
	if d := s.t.batches - s.folded.batches; d > 0 {
		r.frames.Add(d)
	}
	if d := s.t.events - s.folded.events; d > 0 {
		r.events.Add(d)
	}
	s.folded = s.t
}

// endError explains why the body ended.
func (s *stream) endError(err error) error {
	if errors.Is(err, io.EOF) {
		return errEndOfStream
	}
	return err
}

// openHTTP1 opens a Connect stream on a connection of its own, speaking
// HTTP/1.1 by hand: one goroutine, one small bufio.Reader, no transport.
func (r *run) openHTTP1(ctx context.Context, token string, timeout time.Duration) (*stream, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", r.hostport)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	req := make([]byte, 0, len(r.http1Head)+len(token)+16)
	req = append(req, r.http1Head...)
	req = append(req, token...)
	req = append(req, "\r\n\r\n"...)
	req = append(req, emptyRequest...)
	if _, err := conn.Write(req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, http1ReadBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := checkResponse(resp, "application/connect+proto"); err != nil {
		conn.Close()
		return nil, err
	}
	s := &stream{r: r, body: resp.Body, close: func() { conn.Close() }, t: tally{h: r.hist}}
	if err := s.awaitWelcome(); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// openH2 opens a stream over HTTP/2 through rt: one of the run's h2c
// transports, where it shares a connection with other streams, or a TLS
// connection of its own (openTLS). release, if not nil, runs when the
// stream closes.
func (r *run) openH2(ctx context.Context, rt http.RoundTripper, token string, timeout time.Duration, release func()) (*stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.baseURL+subscribePath, bytes.NewReader(emptyRequest))
	if err != nil {
		cancel()
		return nil, err
	}
	wantType := "application/connect+proto"
	if r.cfg.protocol == "grpc" {
		wantType = "application/grpc+proto"
		req.Header.Set("Te", "trailers")
	} else {
		req.Header.Set("Connect-Protocol-Version", "1")
	}
	req.Header.Set("Content-Type", wantType)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", userAgent)
	timer := time.AfterFunc(timeout, cancel)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, err
	}
	if err := checkResponse(resp, wantType); err != nil {
		timer.Stop()
		cancel()
		resp.Body.Close()
		return nil, err
	}
	if resp.ProtoMajor != 2 {
		timer.Stop()
		cancel()
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe: the server answered with %s, not HTTP/2", resp.Proto)
	}
	s := &stream{r: r, body: resp.Body, grpc: r.cfg.protocol == "grpc", t: tally{h: r.hist}, close: func() {
		cancel()
		resp.Body.Close()
		if release != nil {
			release()
		}
	}}
	err = s.awaitWelcome()
	if !timer.Stop() && err == nil {
		err = errors.New("connect timeout")
	}
	if err != nil {
		s.close()
		if st := resp.Trailer.Get("Grpc-Message"); st != "" {
			err = fmt.Errorf("%w (grpc-status %s: %s)", err, resp.Trailer.Get("Grpc-Status"), st)
		}
		return nil, err
	}
	return s, nil
}

func checkResponse(resp *http.Response, wantType string) error {
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
		if m := resp.Header.Get("Grpc-Message"); m != "" { // trailers-only gRPC error
			return fmt.Errorf("grpc-status %s: %s", resp.Header.Get("Grpc-Status"), m)
		}
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return fmt.Errorf("subscribe: HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.TrimSpace(b))
}
