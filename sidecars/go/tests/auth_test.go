package tests

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
)

// sidecarToken looks like the tokens hosts issue: 64 hex digits.
const sidecarToken = "9e8d7c6b5a49382716059f8e7d6c5b4a39281706f5e4d3c2b1a0918273645546"

// A conformance sidecar given PLUGIN_BRIDGE_TOKEN and PLUGIN_BRIDGE_TOKEN_ID signs its announcement, its
// heartbeats, its draining announcement and its pushes, and never writes the token to its log.
func TestSidecarSignsWithItsToken(t *testing.T) {
	n := testenv.StartNATS(t)
	sub := pushes(t, n)
	p, c := startConformance(t, n.URL, "conf-signed", filepath.Join(t.TempDir(), "audit"),
		"PLUGIN_BRIDGE_TOKEN="+sidecarToken, "PLUGIN_BRIDGE_TOKEN_ID=conformance-supervised", "PLUGIN_BRIDGE_LOG_LEVEL=debug")
	_, js := n.Connect(t)
	ctx := callCtx(t)
	const key = "conformance-go.conf-signed"
	var kv jetstream.KeyValue
	testenv.Eventually(t, 15*time.Second, "the instance is announced", func() bool {
		var err error
		if kv, err = js.KeyValue(ctx, "pb_plugins"); err != nil {
			return false
		}
		_, err = kv.Get(ctx, key)
		return err == nil
	})
	read := func() *pb.PluginInstance {
		entry, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("announcement: %v", err)
		}
		return testenv.SignedInstance(t, entry.Value(), "conformance-supervised", sidecarToken)
	}
	first := read()
	if first.GetInstanceId() != "conf-signed" || !strings.HasPrefix(first.GetEndpoint(), "unix:/") ||
		first.GetDescriptor_().GetName() != "conformance-go" || first.GetDescriptor_().GetKind() != pb.PluginKind_PLUGIN_KIND_ASYNC ||
		first.GetDraining() {
		t.Fatalf("signed instance %v", first)
	}
	testenv.Eventually(t, 15*time.Second, "a signed heartbeat (every 3 s)", func() bool {
		return read().GetHeartbeatAt().AsTime().After(first.GetHeartbeatAt().AsTime())
	})

	script := map[string]any{"pushAfterMs": 100}
	if _, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-signed", 1, script)}); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no pushed status: %v", err)
	}
	if msg.Subject != "pb.push.exec-signed" {
		t.Fatalf("pushed on %s", msg.Subject)
	}
	testenv.CheckSignedPush(t, msg, "conformance-supervised", sidecarToken)

	// A Create in flight holds the drain between the draining announcement and the withdrawal.
	result := make(chan error, 1)
	go func() {
		_, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-drain", 1, map[string]any{"createDelayMs": 1500})})
		result <- err
	}()
	testenv.Eventually(t, 15*time.Second, "the Create is in flight", func() bool {
		return strings.Contains(p.Output(), "execution=exec-drain")
	})
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a signed draining announcement", func() bool { return read().GetDraining() })
	if err := <-result; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	if code, exited := p.Wait(40 * time.Second); !exited || code != 0 {
		t.Fatalf("exit code %d (exited %v)", code, exited)
	}
	if strings.Contains(p.Output(), sidecarToken) {
		t.Fatalf("the token is in the sidecar's log:\n%s", p.Output())
	}
}

// A token without its id stops the sidecar at start, with a message that names the missing variable.
func TestSidecarTokenWithoutIDFailsAtStart(t *testing.T) {
	n := testenv.StartNATS(t)
	p := testenv.StartProcess(t, []string{
		"PLUGIN_BRIDGE_NATS_URL=" + n.URL, "PLUGIN_BRIDGE_ENDPOINT=unix:" + filepath.Join(t.TempDir(), "c.sock"),
		"PLUGIN_BRIDGE_TOKEN=" + sidecarToken, "PLUGIN_BRIDGE_TOKEN_ID=",
	}, bin.conformance)
	code, exited := p.Wait(30 * time.Second)
	if !exited || code != 1 {
		t.Fatalf("exit code %d (exited %v); output:\n%s", code, exited, p.Output())
	}
	if !strings.Contains(p.Output(), "PLUGIN_BRIDGE_TOKEN_ID") || strings.Contains(p.Output(), sidecarToken) {
		t.Fatalf("output:\n%s", p.Output())
	}
}
