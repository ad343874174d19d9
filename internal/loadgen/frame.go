package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/honeydo/realtime/internal/framewire"
)

// Wire layout read by hand. Connect streaming and gRPC share the envelope:
// one flags byte, a big-endian uint32 length, then the message. The field
// numbers come from internal/framewire, which the server's frame writer
// shares and which is checked against the generated descriptors.
const (
	envelopeHeader = 5

	flagCompressed = 0x01 // both protocols
	flagEndStream  = 0x02 // Connect: the last message, JSON, with the error if any

	fieldWelcome   = framewire.SubscribeResponseWelcome
	fieldEvents    = framewire.SubscribeResponseEvents
	fieldHeartbeat = framewire.SubscribeResponseHeartbeat
	fieldBatch     = framewire.EventBatchEvents
	fieldProbe     = framewire.EventProbe
	fieldSendTime  = framewire.ProbeSendTimeUnixMicros
)

// maxMessage bounds one message; the server caps a frame at 256 events.
const maxMessage = 16 << 20

// frameKind says what a SubscribeResponse carried.
type frameKind uint8

const (
	frameOther frameKind = iota
	frameWelcome
	frameEvents
	frameHeartbeat
)

// errEndOfStream is a Connect end-of-stream message without an error.
var errEndOfStream = errors.New("stream ended by the server")

// endStreamError turns a Connect end-of-stream message into an error.
func endStreamError(msg []byte) error {
	var end struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &end); err != nil {
		return fmt.Errorf("bad end-of-stream message: %w", err)
	}
	if end.Error == nil {
		return errEndOfStream
	}
	return fmt.Errorf("%s: %s", end.Error.Code, end.Error.Message)
}

// tally accumulates what one connection received; it is owned by that
// connection's goroutine and folded into the run's totals once per read.
type tally struct {
	h       *hist
	nowUs   int64 // receive time of the data being scanned
	events  int64 // events seen
	probes  int64 // events that carried a probe
	lastUs  int64 // receive time of the latest event
	batches int64 // events frames
}

func (t *tally) probe(ts int64, ok bool) {
	t.events++
	t.lastUs = t.nowUs
	if ok {
		t.probes++
		t.h.add(t.nowUs - ts)
	}
}

// scanResponse reads one SubscribeResponse without unmarshalling it: for an
// events frame it records each event's Probe.send_time_unix_micros in t.
// It allocates nothing.
func scanResponse(msg []byte, t *tally) (frameKind, error) {
	kind := frameOther
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return kind, protowire.ParseError(n)
		}
		msg = msg[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
				return kind, protowire.ParseError(n)
			}
			msg = msg[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(msg)
		if n < 0 {
			return kind, protowire.ParseError(n)
		}
		msg = msg[n:]
		switch num {
		case fieldWelcome:
			kind = frameWelcome
		case fieldHeartbeat:
			kind = frameHeartbeat
		case fieldEvents:
			kind = frameEvents
			t.batches++
			if err := scanBatch(v, t); err != nil {
				return kind, err
			}
		}
	}
	return kind, nil
}

func scanBatch(b []byte, t *tally) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num != fieldBatch || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		ev, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		ts, ok, err := eventSendTime(ev)
		if err != nil {
			return err
		}
		t.probe(ts, ok)
	}
	return nil
}

// eventSendTime finds Event.probe.send_time_unix_micros.
func eventSendTime(ev []byte) (ts int64, ok bool, err error) {
	for len(ev) > 0 {
		num, typ, n := protowire.ConsumeTag(ev)
		if n < 0 {
			return 0, false, protowire.ParseError(n)
		}
		ev = ev[n:]
		if num != fieldProbe || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, ev); n < 0 {
				return 0, false, protowire.ParseError(n)
			}
			ev = ev[n:]
			continue
		}
		p, n := protowire.ConsumeBytes(ev)
		if n < 0 {
			return 0, false, protowire.ParseError(n)
		}
		ev = ev[n:]
		for len(p) > 0 {
			pn, pt, m := protowire.ConsumeTag(p)
			if m < 0 {
				return 0, false, protowire.ParseError(m)
			}
			p = p[m:]
			if pn == fieldSendTime && pt == protowire.VarintType {
				v, m := protowire.ConsumeVarint(p)
				if m < 0 {
					return 0, false, protowire.ParseError(m)
				}
				ts, ok = int64(v), true
				p = p[m:]
				continue
			}
			if m = protowire.ConsumeFieldValue(pn, pt, p); m < 0 {
				return 0, false, protowire.ParseError(m)
			}
			p = p[m:]
		}
	}
	return ts, ok, nil
}
