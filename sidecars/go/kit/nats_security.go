package kit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/nats-io/nats.go"
)

// The environment variables that secure the sidecar's NATS connection: the names of the host's own settings
// (natsCredentials, natsTlsCa, natsTlsCert, natsTlsKey), the same in every kit.
const (
	natsCredentialsEnv = "PLUGIN_BRIDGE_NATS_CREDENTIALS"
	natsTLSCAEnv       = "PLUGIN_BRIDGE_NATS_TLS_CA"
	natsTLSCertEnv     = "PLUGIN_BRIDGE_NATS_TLS_CERT"
	natsTLSKeyEnv      = "PLUGIN_BRIDGE_NATS_TLS_KEY"
)

// natsSecurity is how the sidecar proves who it is to NATS and which NATS it trusts, as file paths; an empty
// path leaves that part out, and with none the connection is plain, as before.
type natsSecurity struct {
	credentials string // a .creds file: a user JWT and its NKey seed
	tlsCA       string // PEM: the CA that signed the server's certificate
	tlsCert     string // PEM: a client certificate, for a NATS that asks for one
	tlsKey      string // PEM: the client certificate's key
}

// options turns the files into nats.go options. It first checks that the certificate and key come together
// and that every file given can be read, so a mistake in the deployment stops the sidecar at start with the
// variable's name, rather than failing every connect in the background. No file's content goes into an error.
func (n natsSecurity) options() ([]nats.Option, error) {
	switch {
	case n.tlsCert != "" && n.tlsKey == "":
		return nil, fmt.Errorf("a NATS client certificate needs its key: %s (or kit.WithNATSTLS's key) is empty", natsTLSKeyEnv)
	case n.tlsKey != "" && n.tlsCert == "":
		return nil, fmt.Errorf("a NATS client key needs its certificate: %s (or kit.WithNATSTLS's cert) is empty", natsTLSCertEnv)
	}
	files := []struct{ variable, path string }{
		{natsCredentialsEnv, n.credentials}, {natsTLSCAEnv, n.tlsCA}, {natsTLSCertEnv, n.tlsCert}, {natsTLSKeyEnv, n.tlsKey},
	}
	for _, file := range files {
		if file.path == "" {
			continue
		}
		if _, err := os.ReadFile(file.path); err != nil {
			var pathError *fs.PathError
			if errors.As(err, &pathError) {
				err = pathError.Err // the path is in the message already
			}
			return nil, fmt.Errorf("%s: cannot read %s: %w", file.variable, file.path, err)
		}
	}
	var options []nats.Option
	// nats.go reads the .creds file again at every connect, so a renewed file is used from the next reconnect.
	if n.credentials != "" {
		options = append(options, nats.UserCredentials(n.credentials))
	}
	if n.tlsCA != "" {
		options = append(options, nats.RootCAs(n.tlsCA))
	}
	if n.tlsCert != "" {
		options = append(options, nats.ClientCert(n.tlsCert, n.tlsKey))
	}
	return options, nil
}
