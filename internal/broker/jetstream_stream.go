package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream broker's stream: the configuration it manages, creating or
// updating it at start-up (and recreating it if it is deleted), and the
// epoch derived from its identity.

// streamEpoch derives the epoch from the stream's identity: its name and
// creation time, which JetStream keeps across server restarts and which all
// replicas of a clustered stream agree on.
func streamEpoch(name string, created time.Time) string {
	h := sha256.New()
	h.Write([]byte(name))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(created.UnixNano()))
	h.Write(b[:])
	sum := h.Sum(nil)
	return epochEncoding.EncodeToString(sum[:8]) // 13 characters of [a-z2-7]
}

var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (j *JetStream) streamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if j.cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        j.cfg.Stream,
		Description: "HoneyDo Realtime events; managed by realtimed",
		Subjects:    []string{j.prefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      j.cfg.History.MaxAge,
		MaxMsgs:     int64(j.cfg.History.MaxEvents),
		MaxBytes:    j.cfg.History.MaxBytes,
		Storage:     storage,
		Replicas:    j.cfg.Replicas,
		// Publish retries its own attempt under one message id; the
		// window only has to outlast PublishTimeout.
		Duplicates: min(j.cfg.History.MaxAge, 2*time.Minute),
	}
}

// ensureStream creates the stream, or updates the limits this broker
// manages on an existing one, and logs what it did.
func (j *JetStream) ensureStream(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	want := j.streamConfig()
	action := "created"
	s, err := j.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = j.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another node won the race
			s, err = j.js.Stream(ctx, want.Name)
			action = "found"
		}
	case err == nil:
		have := s.CachedInfo().Config
		next := have
		next.Subjects = want.Subjects
		next.Retention, next.Discard = want.Retention, want.Discard
		next.MaxAge, next.MaxMsgs, next.MaxBytes = want.MaxAge, want.MaxMsgs, want.MaxBytes
		next.Replicas, next.Duplicates = want.Replicas, want.Duplicates
		if have.Storage != want.Storage {
			j.log.Warn("stream storage differs from the configured one and cannot be changed in place; keeping it",
				"have", have.Storage.String(), "want", want.Storage.String())
		}
		action = "unchanged"
		if !slices.Equal(have.Subjects, next.Subjects) || have.Retention != next.Retention || have.Discard != next.Discard ||
			have.MaxAge != next.MaxAge || have.MaxMsgs != next.MaxMsgs || have.MaxBytes != next.MaxBytes ||
			have.Replicas != next.Replicas || have.Duplicates != next.Duplicates {
			s, err = j.js.UpdateStream(ctx, next)
			action = "updated"
		}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
			errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			return nil, fmt.Errorf("%w: JetStream stream %s: %v", ErrUnavailable, want.Name, err)
		}
		return nil, fmt.Errorf("broker: JetStream stream %s: %w", want.Name, err)
	}
	info := s.CachedInfo()
	cfg := info.Config
	j.log.Info("jetstream stream "+action,
		"subjects", strings.Join(cfg.Subjects, ","), "replicas", cfg.Replicas, "storage", cfg.Storage.String(),
		"max_age", cfg.MaxAge, "max_msgs", cfg.MaxMsgs, "max_bytes", cfg.MaxBytes,
		"epoch", streamEpoch(cfg.Name, info.Created), "first_seq", info.State.FirstSeq, "last_seq", info.State.LastSeq,
		"messages", info.State.Msgs)
	return info, nil
}

// streamInfo fetches the stream's current state; a missing stream is
// recreated.
func (j *JetStream) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := j.opCtx(ctx, 5*time.Second)
	defer cancel()
	s, err := j.js.Stream(ctx, j.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		j.log.Warn("stream is gone; recreating it")
		return j.ensureStream(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: stream info: %v", ErrUnavailable, err)
	}
	return s.CachedInfo(), nil
}
