package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/natsoperator"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
)

// announcedIn reports whether key is in pb_plugins, read through js (a client the secured server accepts).
func announcedIn(t *testing.T, js jetstream.JetStream, key string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "pb_plugins")
	if err != nil {
		return false
	}
	_, err = kv.Get(ctx, key)
	return err == nil
}

// saysWhy reports whether one line of output says a connect failed, and why.
func saysWhy(output, reason string) bool {
	for _, line := range strings.Split(output, "\n") {
		if strings.Contains(line, "NATS not reachable; retrying") && strings.Contains(line, reason) {
			return true
		}
	}
	return false
}

// A nats-server that speaks only TLS and requires client certificates: a sidecar given the CA and a client
// certificate through the environment announces itself; one without the CA never connects, and says why.
func TestSidecarOverTLSToNATS(t *testing.T) {
	pki := testenv.NewNATSTLS(t)
	n := testenv.StartNATSWithConfig(t, pki.ServerConfig, nats.RootCAs(pki.CA), nats.ClientCert(pki.ClientCert, pki.ClientKey))
	_, js := n.Connect(t)
	audit := filepath.Join(t.TempDir(), "audit")

	untrusting, _ := startConformance(t, n.URL, "conf-no-ca", audit,
		"PLUGIN_BRIDGE_NATS_TLS_CERT="+pki.ClientCert, "PLUGIN_BRIDGE_NATS_TLS_KEY="+pki.ClientKey)
	testenv.Eventually(t, 30*time.Second, "the sidecar without the CA says why it cannot connect", func() bool {
		return saysWhy(untrusting.Output(), "certificate signed by unknown authority")
	})

	startConformance(t, n.URL, "conf-tls", audit,
		"PLUGIN_BRIDGE_NATS_TLS_CA="+pki.CA, "PLUGIN_BRIDGE_NATS_TLS_CERT="+pki.ClientCert, "PLUGIN_BRIDGE_NATS_TLS_KEY="+pki.ClientKey)
	testenv.Eventually(t, 30*time.Second, "the sidecar with the CA and a client certificate is announced", func() bool {
		return announcedIn(t, js, "conformance-go.conf-tls")
	})
	if announcedIn(t, js, "conformance-go.conf-no-ca") {
		t.Fatalf("the sidecar that does not trust the server's CA was announced:\n%s", untrusting.Output())
	}
}

// A nats-server in operator mode (JWTs, a memory resolver, a system account): a sidecar given a user's .creds
// file announces itself, and never writes the file's JWT or seed to its log; one without credentials is refused.
func TestSidecarWithNATSCredentials(t *testing.T) {
	setup, err := natsoperator.New("sidecar")
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(t.TempDir(), "sidecar.creds")
	if err := os.WriteFile(creds, setup.Credentials, 0o600); err != nil {
		t.Fatal(err)
	}
	n := testenv.StartNATSWithConfig(t, setup.ServerConfig, nats.UserCredentials(creds))
	_, js := n.Connect(t)
	audit := filepath.Join(t.TempDir(), "audit")

	anonymous, _ := startConformance(t, n.URL, "conf-anonymous", audit)
	testenv.Eventually(t, 30*time.Second, "the sidecar without credentials says why it cannot connect", func() bool {
		return saysWhy(anonymous.Output(), "Authorization Violation")
	})

	p, _ := startConformance(t, n.URL, "conf-creds", audit, "PLUGIN_BRIDGE_NATS_CREDENTIALS="+creds, "PLUGIN_BRIDGE_LOG_LEVEL=debug")
	testenv.Eventually(t, 30*time.Second, "the sidecar with credentials is announced", func() bool {
		return announcedIn(t, js, "conformance-go.conf-creds")
	})
	if announcedIn(t, js, "conformance-go.conf-anonymous") {
		t.Fatalf("the sidecar without credentials was announced:\n%s", anonymous.Output())
	}
	for _, line := range strings.Split(string(setup.Credentials), "\n") {
		if len(line) > 20 && strings.Contains(p.Output(), line) {
			t.Fatalf("the sidecar logged a line of its .creds file:\n%s", p.Output())
		}
	}
}
