package kit_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
)

// testToken looks like the tokens hosts issue: 64 hex digits.
const testToken = "4f1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff0"

// lockedBuffer is a log sink the test reads while the kit writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func pluginsBucket(t *testing.T, n *testenv.NATS) jetstream.KeyValue {
	t.Helper()
	_, js := n.Connect(t)
	kv, err := js.KeyValue(callCtx(t), "pb_plugins")
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func storedValue(t *testing.T, kv jetstream.KeyValue, key string) []byte {
	t.Helper()
	entry, err := kv.Get(callCtx(t), key)
	if err != nil {
		t.Fatalf("announcement %s: %v", key, err)
	}
	return entry.Value()
}

// With a token, the first announcement, every heartbeat and the draining one are signed, pushes carry signed
// headers, and the token shows in no log line. kit.WithToken wins over the environment.
func TestSignedAnnouncementsAndPushes(t *testing.T) {
	t.Setenv("PLUGIN_BRIDGE_TOKEN_ID", "from-the-environment")
	t.Setenv("PLUGIN_BRIDGE_TOKEN", "another-token")
	n := testenv.StartNATS(t)
	sub := subscribePushes(t, n)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := newTestPlugin()
	s := startSidecar(t, p.plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-signed"),
		kit.WithHeartbeatInterval(100*time.Millisecond), kit.WithToken("sidecar-a", testToken), kit.WithLogger(logger))
	waitAnnounced(t, s.server)
	kv := pluginsBucket(t, n)
	const key = "kit-test.kit-signed"

	first := testenv.SignedInstance(t, storedValue(t, kv, key), "sidecar-a", testToken)
	if first.GetInstanceId() != "kit-signed" || first.GetEndpoint() != s.server.Endpoint() ||
		first.GetDescriptor_().GetName() != "kit-test" || first.GetDescriptor_().GetTaskTypes()[0].GetType() != "kit-test" ||
		first.GetStartedAt() == nil || first.GetDraining() {
		t.Fatalf("signed instance %v", first)
	}
	testenv.Eventually(t, 10*time.Second, "a signed heartbeat", func() bool {
		beat := testenv.SignedInstance(t, storedValue(t, kv, key), "sidecar-a", testToken)
		return beat.GetHeartbeatAt().AsTime().After(first.GetHeartbeatAt().AsTime())
	})

	ctx := callCtx(t)
	if err := s.server.Push(ctx, "exec-signed", 2, kit.Success(map[string]any{"answer": 42})); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no pushed status: %v", err)
	}
	testenv.CheckSignedPush(t, msg, "sidecar-a", testToken)

	// A Create in flight holds the drain between its draining announcement and the withdrawal.
	created, drained := drainWithCreateInFlight(t, ctx, s, p, "signed-drain")
	testenv.Eventually(t, 10*time.Second, "a signed draining announcement", func() bool {
		return testenv.SignedInstance(t, storedValue(t, kv, key), "sidecar-a", testToken).GetDraining()
	})
	close(p.release)
	if err := <-created; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	<-drained

	if strings.Contains(logs.String(), testToken) {
		t.Fatalf("the token is in the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "signedBy=sidecar-a") {
		t.Errorf("the log does not say who signs:\n%s", logs.String())
	}
}

// Without a token, announcements and pushes are as they were before tokens existed.
func TestUnsignedWithoutToken(t *testing.T) {
	t.Setenv("PLUGIN_BRIDGE_TOKEN_ID", "")
	t.Setenv("PLUGIN_BRIDGE_TOKEN", "")
	n := testenv.StartNATS(t)
	sub := subscribePushes(t, n)
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-unsigned"))
	waitAnnounced(t, s.server)
	instance := testenv.UnsignedInstance(t, storedValue(t, pluginsBucket(t, n), "kit-test.kit-unsigned"))
	if instance.GetInstanceId() != "kit-unsigned" || instance.GetEndpoint() != s.server.Endpoint() {
		t.Fatalf("instance %v", instance)
	}
	if err := s.server.Push(callCtx(t), "exec-unsigned", 1, kit.Success(nil)); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no pushed status: %v", err)
	}
	if len(msg.Header) != 0 {
		t.Fatalf("an unsigned push has headers %v", msg.Header)
	}
}

// A token without its id, or an id without its token, stops Start, naming what is missing but not the token.
func TestTokenNeedsItsID(t *testing.T) {
	for _, c := range []struct {
		name, envID, envToken string
		options               []kit.Option
		missing, notMissing   string
	}{
		{"token without id", "", testToken, nil, "PLUGIN_BRIDGE_TOKEN_ID", ""},
		{"id without token", "sidecar-a", "", nil, "PLUGIN_BRIDGE_TOKEN ", "PLUGIN_BRIDGE_TOKEN_ID"},
		{"WithToken without id", "sidecar-a", testToken, []kit.Option{kit.WithToken("", testToken)}, "PLUGIN_BRIDGE_TOKEN_ID", ""},
		{"WithToken without token", "", "", []kit.Option{kit.WithToken("sidecar-a", "")}, "PLUGIN_BRIDGE_TOKEN ", "PLUGIN_BRIDGE_TOKEN_ID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PLUGIN_BRIDGE_TOKEN_ID", c.envID)
			t.Setenv("PLUGIN_BRIDGE_TOKEN", c.envToken)
			options := append([]kit.Option{kit.WithoutNATS(), kit.WithEndpoint("unix:" + t.TempDir() + "/s.sock")}, c.options...)
			s, err := kit.Start(context.Background(), newTestPlugin().plugin(), options...)
			if err == nil {
				s.Stop()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.missing) || (c.notMissing != "" && strings.Contains(err.Error(), c.notMissing)) ||
				strings.Contains(err.Error(), testToken) {
				t.Fatalf("error %q should name %q", err, strings.TrimSpace(c.missing))
			}
		})
	}
	// Both, from the environment alone, are a token.
	t.Setenv("PLUGIN_BRIDGE_TOKEN_ID", "sidecar-a")
	t.Setenv("PLUGIN_BRIDGE_TOKEN", testToken)
	startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS())
}
