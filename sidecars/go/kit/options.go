package kit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

// Option changes how [Serve] and [Start] run a plugin. Without options, everything comes from the
// environment, as the TypeScript kit reads it.
type Option func(*settings)

type settings struct {
	natsURL           string
	noNATS            bool
	endpoint          string
	instanceID        string
	drainTimeout      time.Duration
	heartbeatInterval time.Duration
	handleSignals     bool
	logger            *slog.Logger
	tracerProvider    trace.TracerProvider
	tokenID           string
	token             string
	signer            *token // from tokenID and token; nil without a token
	natsSecurity      natsSecurity
	natsOptions       []nats.Option // from natsSecurity; none for a plain connection
}

// WithNATSURL sets the NATS server URL(s), comma-separated. Default: $PLUGIN_BRIDGE_NATS_URL, else
// $NATS_URL, else nats://127.0.0.1:4222 (the host's embedded server).
func WithNATSURL(url string) Option { return func(s *settings) { s.natsURL = url } }

// WithoutNATS runs without NATS: no announcement, and Create is idempotent within the process only. For
// local development and tests.
func WithoutNATS() Option { return func(s *settings) { s.noNATS = true } }

// WithEndpoint sets where to listen: "unix:/path" or "host:port" (":0" picks a free loopback port).
// Default: $PLUGIN_BRIDGE_ENDPOINT, else a unix socket in os.TempDir() named after the instance.
func WithEndpoint(endpoint string) Option { return func(s *settings) { s.endpoint = endpoint } }

// WithInstanceID sets the instance id (letters, digits, '-', '_'). Default: $PLUGIN_BRIDGE_INSTANCE_ID,
// else "<plugin name>-<8 hex digits>".
func WithInstanceID(id string) Option { return func(s *settings) { s.instanceID = id } }

// WithDrainTimeout bounds how long a drain waits for calls in flight. Default 30 s.
func WithDrainTimeout(d time.Duration) Option { return func(s *settings) { s.drainTimeout = d } }

// WithHeartbeatInterval sets how often the announcement is refreshed. Default 3 s.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(s *settings) { s.heartbeatInterval = d }
}

// WithSignals chooses whether [Serve] drains on SIGTERM and SIGINT. Default true.
func WithSignals(handle bool) Option { return func(s *settings) { s.handleSignals = handle } }

// WithLogger replaces the default logger (text lines on stderr at $PLUGIN_BRIDGE_LOG_LEVEL).
func WithLogger(logger *slog.Logger) Option { return func(s *settings) { s.logger = logger } }

// WithTracerProvider makes the kit create its server spans with provider, which the application owns and
// shuts down, instead of the global one or one set up from OTEL_* variables. An application that installs its
// provider globally (otel.SetTracerProvider) before Serve or Start needs no option: the kit uses it.
func WithTracerProvider(provider trace.TracerProvider) Option {
	return func(s *settings) { s.tracerProvider = provider }
}

// WithToken gives the sidecar its identity: the token a host issued (an opaque secret) and the id it was
// issued for. The kit then signs every announcement and every push with it, as hosts that require sidecar
// authentication expect. Default: $PLUGIN_BRIDGE_TOKEN_ID and $PLUGIN_BRIDGE_TOKEN; both or neither must be
// set, and this option replaces both. The token is never logged nor sent; only signatures made with it are.
func WithToken(id, token string) Option {
	return func(s *settings) { s.tokenID, s.token = id, token }
}

// WithNATSCredentials authenticates the sidecar to NATS with a .creds file (a user JWT and its NKey seed), as
// NATS in operator mode requires. Default: $PLUGIN_BRIDGE_NATS_CREDENTIALS; "" for none. The file's content is
// never logged.
func WithNATSCredentials(path string) Option {
	return func(s *settings) { s.natsSecurity.credentials = path }
}

// WithNATSTLS connects to NATS over TLS. ca is the PEM file of the CA that signed the server's certificate ("":
// the system's roots); cert and key are a PEM client certificate and its key, for a NATS that asks for one
// (both or neither). Default: $PLUGIN_BRIDGE_NATS_TLS_CA, $PLUGIN_BRIDGE_NATS_TLS_CERT and
// $PLUGIN_BRIDGE_NATS_TLS_KEY; this option replaces all three.
func WithNATSTLS(ca, cert, key string) Option {
	return func(s *settings) {
		s.natsSecurity.tlsCA, s.natsSecurity.tlsCert, s.natsSecurity.tlsKey = ca, cert, key
	}
}

// DefaultNATSURL is the host's embedded nats-server's default address.
const DefaultNATSURL = "nats://127.0.0.1:4222"

var instanceIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func resolveSettings(name string, options []Option) (settings, error) {
	s := settings{
		natsURL:           firstNonEmpty(os.Getenv("PLUGIN_BRIDGE_NATS_URL"), os.Getenv("NATS_URL"), DefaultNATSURL),
		endpoint:          os.Getenv("PLUGIN_BRIDGE_ENDPOINT"),
		instanceID:        os.Getenv("PLUGIN_BRIDGE_INSTANCE_ID"),
		drainTimeout:      30 * time.Second,
		heartbeatInterval: DefaultHeartbeatInterval,
		handleSignals:     true,
		tokenID:           os.Getenv(tokenIDEnv),
		token:             os.Getenv(tokenEnv),
		natsSecurity: natsSecurity{
			credentials: os.Getenv(natsCredentialsEnv),
			tlsCA:       os.Getenv(natsTLSCAEnv),
			tlsCert:     os.Getenv(natsTLSCertEnv),
			tlsKey:      os.Getenv(natsTLSKeyEnv),
		},
	}
	for _, option := range options {
		option(&s)
	}
	if s.instanceID == "" {
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		s.instanceID = name + "-" + hex.EncodeToString(suffix)
	}
	// The id is a token of the announcement key and part of the socket name: refuse anything else up front.
	if !instanceIDPattern.MatchString(s.instanceID) {
		return s, fmt.Errorf("instance id %q must be letters, digits, '-' and '_'", s.instanceID)
	}
	var err error
	if s.signer, err = newToken(s.tokenID, s.token); err != nil {
		return s, err
	}
	if !s.noNATS {
		if s.natsOptions, err = s.natsSecurity.options(); err != nil {
			return s, err
		}
	}
	if s.logger == nil {
		s.logger = newLogger(name)
	}
	return s, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
