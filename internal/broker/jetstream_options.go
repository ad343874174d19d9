package broker

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// NATSAuth holds the ways a NATS client proves who it is and checks the
// server, as nats users know them from the nats CLI and server configs. At
// most one of CredsFile, NkeySeedFile, User/Password and Token may be set.
type NATSAuth struct {
	// CredsFile is a decentralized-auth credentials file (JWT + nkey seed),
	// as `nsc generate creds` writes it.
	CredsFile string
	// NkeySeedFile is a file holding a user nkey seed (SU...).
	NkeySeedFile string
	// User and Password authenticate with a username and password.
	User, Password string
	// Token authenticates with a bearer token.
	Token string
	// TLSCA is a PEM file of root CAs that verify the server: use it when
	// the NATS servers have a private CA. Setting it (or a client
	// certificate) makes the connection require TLS.
	TLSCA string
	// TLSCert and TLSKey are a PEM client certificate and key, for servers
	// that verify clients (mTLS). Both or neither.
	TLSCert, TLSKey string
}

// Options returns the nats.Options that apply a. It reports conflicting or
// incomplete settings; files are read when connecting, so a missing file
// shows up as a connection error.
func (a NATSAuth) Options() ([]nats.Option, error) {
	methods := 0
	for _, set := range []bool{a.CredsFile != "", a.NkeySeedFile != "", a.User != "" || a.Password != "", a.Token != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return nil, errors.New("nats: use only one of credentials file, nkey seed, user/password and token")
	}
	if (a.User == "") != (a.Password == "") {
		return nil, errors.New("nats: user and password go together")
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return nil, errors.New("nats: TLS client certificate and key go together")
	}
	var opts []nats.Option
	switch {
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats: nkey seed: %w", err)
		}
		opts = append(opts, o)
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	return opts, nil
}
