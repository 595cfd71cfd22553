package tests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func auditLines(t *testing.T, path, call string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, call+" ") {
			lines = append(lines, line)
		}
	}
	return lines
}

func startConformance(t *testing.T, natsURL, instance, audit string, env ...string) (*testenv.Process, *client) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "c.sock")
	p := testenv.StartProcess(t, append([]string{
		"PLUGIN_BRIDGE_NATS_URL=" + natsURL,
		"PLUGIN_BRIDGE_INSTANCE_ID=" + instance,
		"PLUGIN_BRIDGE_ENDPOINT=unix:" + socket,
		"CONFORMANCE_AUDIT_FILE=" + audit,
	}, env...), bin.conformance)
	return p, dial(t, "unix:"+socket)
}

// A Create retried on the same instance and on another process runs once: the audit file says so.
func TestIdempotentCreateAcrossProcesses(t *testing.T) {
	n := testenv.StartNATS(t)
	audit := filepath.Join(t.TempDir(), "audit")
	_, a := startConformance(t, n.URL, "conf-a", audit)
	_, b := startConformance(t, n.URL, "conf-b", audit)
	ctx := callCtx(t)
	request := &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-1", 1, map[string]any{"createDelayMs": 300})}

	var wg sync.WaitGroup
	metas := make([][]byte, 3)
	for i := range metas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := a.async.Create(ctx, request)
			if err != nil {
				t.Error(err)
				return
			}
			metas[i] = r.GetResourceMeta()
		}()
	}
	wg.Wait()
	again, err := a.async.Create(ctx, request)
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.async.Create(ctx, request)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(metas, other.GetResourceMeta()) {
		if string(m) != string(again.GetResourceMeta()) {
			t.Fatalf("resource metas differ: %q / %q", m, again.GetResourceMeta())
		}
	}
	if lines := auditLines(t, audit, "create"); len(lines) != 1 || lines[0] != "create exec-1 1 conf-a" {
		t.Fatalf("audit creates: %q, want exactly one by conf-a", lines)
	}
	// A new attempt is a new Create.
	if _, err := b.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-1", 2, nil)}); err != nil {
		t.Fatal(err)
	}
	if lines := auditLines(t, audit, "create"); len(lines) != 2 || lines[1] != "create exec-1 2 conf-b" {
		t.Fatalf("audit creates: %q", lines)
	}
}

// The reference plugin acts out its script: polls, outputs, a panic (INTERNAL, and it keeps serving), a
// user error, failures as phases.
func TestConformanceBehaviors(t *testing.T) {
	n := testenv.StartNATS(t)
	audit := filepath.Join(t.TempDir(), "audit")
	_, c := startConformance(t, n.URL, "conf-behave", audit)
	ctx := callCtx(t)
	script := map[string]any{"polls": 2, "echo": "grüße ✓", "outputBytes": 5}
	get := func(custom map[string]any) (*pb.GetResponse, error) {
		return c.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "conformance-go", "exec-b", 1, custom), ResourceMeta: []byte(`{}`)})
	}
	for i := 0; i < 2; i++ {
		r, err := get(script)
		if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING || r.GetPhaseInfo().GetReason() != "polling" {
			t.Fatalf("poll %d: %v %v", i, r, err)
		}
	}
	r, err := get(script)
	if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS {
		t.Fatalf("final get: %v %v", r, err)
	}
	out := r.GetOutputs().AsMap()
	if out["language"] != "go" || out["instance"] != "conf-behave" || out["echo"] != "grüße ✓" || out["gets"] != float64(3) || out["payload"] != "xxxxx" {
		t.Fatalf("outputs %v", out)
	}
	if lines := auditLines(t, audit, "get"); len(lines) != 3 {
		t.Fatalf("audit gets: %q", lines)
	}

	_, err = c.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "conformance-go", "exec-crash", 1, map[string]any{"get": "BEHAVIOR_CRASH", "message": "boom!"})})
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "boom!") {
		t.Fatalf("crash: %v", err)
	}
	_, err = c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-user", 1, map[string]any{"create": "BEHAVIOR_USER_ERROR", "message": "bad"})})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "bad" {
		t.Fatalf("user error: %v", err)
	}
	r, err = c.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "conformance-go", "exec-r", 1, map[string]any{"get": "BEHAVIOR_RETRYABLE"})})
	if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RETRYABLE_FAILURE || r.GetPhaseInfo().GetError().GetCode() != "Scripted" ||
		r.GetPhaseInfo().GetError().GetKind() != pb.ErrorKind_ERROR_KIND_SYSTEM || r.GetPhaseInfo().GetError().GetMessage() != "scripted failure" {
		t.Fatalf("retryable: %v %v", r, err)
	}
	_, err = c.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "conformance-go", "exec-x", 1, map[string]any{"polls": "x"})})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "template.custom.polls: ") {
		t.Fatalf("bad custom: %v", err)
	}
	// Still serving after the panic.
	if _, err := c.async.Delete(ctx, &pb.DeleteRequest{Context: taskContext(t, "conformance-go", "exec-b", 1, nil)}); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceSync(t *testing.T) {
	n := testenv.StartNATS(t)
	audit := filepath.Join(t.TempDir(), "audit")
	_, c := startConformance(t, n.URL, "conf-sync", audit, "CONFORMANCE_KIND=sync")
	ctx := callCtx(t)
	r, err := c.sync.Do(ctx, &pb.DoRequest{Context: taskContext(t, "conformance-sync-go", "exec-s", 1, map[string]any{"echo": "e"})})
	if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || r.GetOutputs().AsMap()["echo"] != "e" {
		t.Fatalf("do: %v %v", r, err)
	}
	if _, has := r.GetOutputs().AsMap()["gets"]; has {
		t.Fatal("sync outputs carry gets")
	}
	r, err = c.sync.Do(ctx, &pb.DoRequest{Context: taskContext(t, "conformance-sync-go", "exec-p", 1, map[string]any{"do": "BEHAVIOR_PERMANENT", "message": "m"})})
	if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_PERMANENT_FAILURE || r.GetPhaseInfo().GetError().GetKind() != pb.ErrorKind_ERROR_KIND_USER {
		t.Fatalf("permanent: %v %v", r, err)
	}
	if lines := auditLines(t, audit, "do"); len(lines) != 2 || lines[0] != "do exec-s 1 conf-sync" {
		t.Fatalf("audit: %q", lines)
	}
}

// SIGTERM drains: the call in flight finishes, the announcement goes, the process exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	n := testenv.StartNATS(t)
	audit := filepath.Join(t.TempDir(), "audit")
	p, c := startConformance(t, n.URL, "conf-drain", audit)
	_, js := n.Connect(t)
	ctx := callCtx(t)
	var kv jetstream.KeyValue
	testenv.Eventually(t, 15*time.Second, "the instance is announced", func() bool {
		var err error
		if kv, err = js.KeyValue(ctx, "pb_plugins"); err != nil {
			return false
		}
		_, err = kv.Get(ctx, "conformance-go.conf-drain")
		return err == nil
	})

	result := make(chan error, 1)
	go func() {
		_, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-d", 1, map[string]any{"createDelayMs": 1500})})
		result <- err
	}()
	testenv.Eventually(t, 15*time.Second, "the Create is in flight", func() bool {
		return strings.Contains(p.Output(), "msg=create")
	})
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	code, exited := p.Wait(40 * time.Second)
	if !exited || code != 0 {
		t.Fatalf("exit code %d (exited %v)", code, exited)
	}
	if lines := auditLines(t, audit, "create"); len(lines) != 1 {
		t.Fatalf("audit: %q", lines)
	}
	if _, err := kv.Get(ctx, "conformance-go.conf-drain"); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Fatalf("announcement after drain: %v", err)
	}
	if !strings.Contains(p.Output(), "announcement withdrawn") {
		t.Fatalf("no withdrawal in the log:\n%s", p.Output())
	}
}

// A sidecar started before NATS waits for it, then announces.
func TestStartsBeforeNATS(t *testing.T) {
	port := testenv.FreePort(t)
	audit := filepath.Join(t.TempDir(), "audit")
	socket := filepath.Join(t.TempDir(), "c.sock")
	p := testenv.StartProcess(t, []string{
		"PLUGIN_BRIDGE_NATS_URL=nats://127.0.0.1:" + itoa(port), "PLUGIN_BRIDGE_INSTANCE_ID=conf-early",
		"PLUGIN_BRIDGE_ENDPOINT=unix:" + socket, "CONFORMANCE_AUDIT_FILE=" + audit,
	}, bin.conformance)
	dial(t, "unix:"+socket) // serving without NATS
	n := testenv.StartNATSOnPort(t, port)
	testenv.Eventually(t, 30*time.Second, "the late announcement", func() bool { return strings.Contains(p.Output(), "msg=announced") })
	_, js := n.Connect(t)
	kv, err := js.KeyValue(callCtx(t), "pb_plugins")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(callCtx(t), "conformance-go.conf-early"); err != nil {
		t.Fatal(err)
	}
}
