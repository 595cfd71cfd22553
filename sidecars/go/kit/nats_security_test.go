package kit_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
)

// The NATS credentials and TLS files are checked at start: a certificate without its key, a key without its
// certificate and a file that cannot be read stop Start with the variable's name (and the file's path).
// Options replace the environment, and a sidecar without NATS ignores both.
func TestNATSSecuritySettingsAtStart(t *testing.T) {
	dir := t.TempDir()
	readable := filepath.Join(dir, "present.pem")
	if err := os.WriteFile(readable, []byte("not looked at before a connect"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	deadNATS := kit.WithNATSURL("nats://127.0.0.1:" + itoa(testenv.FreePort(t)))
	for _, c := range []struct {
		name    string
		env     map[string]string
		options []kit.Option
		want    []string // in the error; none for a start that succeeds
	}{
		{"a certificate without its key", map[string]string{"PLUGIN_BRIDGE_NATS_TLS_CERT": readable}, nil,
			[]string{"PLUGIN_BRIDGE_NATS_TLS_KEY", "is empty"}},
		{"a key without its certificate", map[string]string{"PLUGIN_BRIDGE_NATS_TLS_KEY": readable}, nil,
			[]string{"PLUGIN_BRIDGE_NATS_TLS_CERT", "is empty"}},
		{"a CA that is missing", map[string]string{"PLUGIN_BRIDGE_NATS_TLS_CA": missing}, nil,
			[]string{"PLUGIN_BRIDGE_NATS_TLS_CA: cannot read " + missing + ": no such file or directory"}},
		{"credentials that are missing", map[string]string{"PLUGIN_BRIDGE_NATS_CREDENTIALS": missing}, nil,
			[]string{"PLUGIN_BRIDGE_NATS_CREDENTIALS: cannot read " + missing}},
		{"a key that is a directory", map[string]string{"PLUGIN_BRIDGE_NATS_TLS_CERT": readable, "PLUGIN_BRIDGE_NATS_TLS_KEY": dir}, nil,
			[]string{"PLUGIN_BRIDGE_NATS_TLS_KEY: cannot read " + dir}},
		{"options over the environment", map[string]string{"PLUGIN_BRIDGE_NATS_TLS_CA": missing, "PLUGIN_BRIDGE_NATS_CREDENTIALS": missing},
			[]kit.Option{kit.WithNATSTLS("", "", ""), kit.WithNATSCredentials("")}, nil},
		{"an option's missing file", nil, []kit.Option{kit.WithNATSCredentials(missing)},
			[]string{"PLUGIN_BRIDGE_NATS_CREDENTIALS: cannot read " + missing}},
		{"no NATS at all", map[string]string{"PLUGIN_BRIDGE_NATS_TLS_CERT": missing}, []kit.Option{kit.WithoutNATS()}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, name := range []string{"PLUGIN_BRIDGE_NATS_CREDENTIALS", "PLUGIN_BRIDGE_NATS_TLS_CA", "PLUGIN_BRIDGE_NATS_TLS_CERT", "PLUGIN_BRIDGE_NATS_TLS_KEY"} {
				t.Setenv(name, c.env[name])
			}
			options := append([]kit.Option{deadNATS, kit.WithEndpoint("unix:" + filepath.Join(t.TempDir(), "s.sock")), kit.WithSignals(false)}, c.options...)
			server, err := kit.Start(context.Background(), newTestPlugin().plugin(), options...)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				server.Stop()
				return
			}
			if err == nil {
				server.Stop()
				t.Fatalf("Start succeeded, want an error with %q", c.want)
			}
			for _, part := range c.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}
