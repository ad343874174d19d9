package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/honeydo/realtime/internal/broker"
)

// natsOptions are the flags of the NATS JetStream backend. Without --nats-url
// realtimed uses the in-memory backend.
type natsOptions struct {
	url, stream, subjectPrefix string
	creds, nkey                string
	user, password, token      string
	tlsCA, tlsCert, tlsKey     string
	replicas                   int
}

func (n *natsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&n.url, "nats-url", "", "NATS server `URLs` (comma-separated): run on NATS JetStream so that several nodes share\nevents and history (empty: the in-memory backend, single node)")
	fs.StringVar(&n.stream, "nats-stream", broker.DefaultStreamName, "JetStream stream `name`; realtimed creates or updates it at start-up")
	fs.StringVar(&n.subjectPrefix, "nats-subject-prefix", "honeydo.rt", "subject `prefix` of the stream's subjects (<prefix>.user.<id>, .household.<id>, .broadcast)")
	fs.IntVar(&n.replicas, "nats-replicas", 1, "stream replicas: 1 for one NATS server, 3 for a NATS cluster")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials `file` (JWT + nkey seed, as nsc writes it)")
	fs.StringVar(&n.nkey, "nats-nkey", "", "NATS user nkey seed `file`")
	fs.StringVar(&n.user, "nats-user", "", "NATS user `name` (with --nats-password)")
	fs.StringVar(&n.password, "nats-password", "", "NATS `password`; prefer the REALTIMED_NATS_PASSWORD environment variable")
	fs.StringVar(&n.token, "nats-token", "", "NATS authentication `token`; prefer REALTIMED_NATS_TOKEN")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", "", "PEM `file` of CAs that verify the NATS servers (requires TLS)")
	fs.StringVar(&n.tlsCert, "nats-tls-cert", "", "PEM client certificate `file` for NATS servers that verify clients")
	fs.StringVar(&n.tlsKey, "nats-tls-key", "", "PEM client key `file` (with --nats-tls-cert)")
}

// historyBroker is what run needs of a backend.
type historyBroker interface {
	broker.Broker
	broker.Closer
	Epoch() string
}

// openBroker returns the in-memory broker, or the JetStream one when
// --nats-url is set; the --history-* flags become the stream's limits.
func openBroker(ctx context.Context, o *options, log *slog.Logger) (historyBroker, error) {
	limits := broker.HistoryLimits{MaxAge: o.historyMaxAge, MaxEvents: o.historyMaxEvents, MaxBytes: o.historyMaxBytes}
	n := o.nats
	if n.url == "" {
		return broker.NewMemory(broker.MemoryConfig{History: limits}), nil
	}
	auth, err := broker.NATSAuth{
		CredsFile: n.creds, NkeySeedFile: n.nkey, User: n.user, Password: n.password, Token: n.token,
		TLSCA: n.tlsCA, TLSCert: n.tlsCert, TLSKey: n.tlsKey,
	}.Options()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return broker.NewJetStream(ctx, broker.JetStreamConfig{
		URL: n.url, Options: auth, Stream: n.stream, SubjectPrefix: n.subjectPrefix,
		History: limits, Replicas: n.replicas, Logger: log,
	})
}
