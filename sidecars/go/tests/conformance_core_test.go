package tests

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const coreType = "conformance-core-go"

func countState(n string) *pb.PluginState { return &pb.PluginState{Version: 1, Data: []byte(n)} }

// The core reference plugin: its descriptor, the Handle count kept in the state the caller passes back (also
// to another instance), the file wait, behaviours, a state of an unknown version, and Abort.
func TestConformanceCoreHandle(t *testing.T) {
	n := testenv.StartNATS(t)
	audit := filepath.Join(t.TempDir(), "audit")
	_, a := startConformance(t, n.URL, "conf-core-a", audit, "CONFORMANCE_KIND=core")
	_, b := startConformance(t, n.URL, "conf-core-b", audit, "CONFORMANCE_KIND=core")
	ctx := callCtx(t)

	described, err := a.meta.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d := described.GetPlugin()
	props := d.GetProperties()
	if d.GetName() != coreType || d.GetKind() != pb.PluginKind_PLUGIN_KIND_CORE || d.GetTaskTypes()[0].GetType() != coreType ||
		d.GetTaskTypes()[0].GetVersion() != 1 || props.GetResyncInterval().AsDuration() != 200*time.Millisecond ||
		props.GetHandleTimeout().AsDuration() != 2*time.Second || props.GetAbortTimeout().AsDuration() != 2*time.Second ||
		props.GetFinalizeTimeout().AsDuration() != 2*time.Second || props.GetMaxSystemFailures() != 2 {
		t.Fatalf("descriptor %v", d)
	}
	h, err := a.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "pluginbridge.v1.CorePluginService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("core health: %v %v", h, err)
	}

	file := filepath.Join(t.TempDir(), "ready")
	script := map[string]any{"polls": 2, "waitForFile": file, "echo": "grüße ✓", "outputBytes": 3}
	handle := func(c *client, state *pb.PluginState) *pb.HandleResponse {
		t.Helper()
		r, err := c.core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, coreType, "exec-h", 1, script), State: state})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var state *pb.PluginState
	for i, want := range []string{"polling", "polling", "waiting"} {
		r := handle(a, state)
		if r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING || r.GetPhaseInfo().GetReason() != want || !proto.Equal(r.GetState(), countState(itoa(i+1))) {
			t.Fatalf("handle %d: %v", i+1, r)
		}
		state = r.GetState()
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The count lives in the state, not in the process: another instance carries on from it.
	r := handle(b, state)
	out := r.GetOutputs().AsMap()
	if r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || !proto.Equal(r.GetState(), countState("4")) || out["handles"] != float64(4) ||
		out["language"] != "go" || out["instance"] != "conf-core-b" || out["echo"] != "grüße ✓" || out["payload"] != "xxx" {
		t.Fatalf("final handle: %v", r)
	}
	if _, has := out["gets"]; has {
		t.Fatal("core outputs carry gets")
	}
	lines := auditLines(t, audit, "handle")
	if len(lines) != 4 || lines[0] != "handle exec-h 1 conf-core-a" || lines[3] != "handle exec-h 1 conf-core-b" {
		t.Fatalf("audit handles: %q", lines)
	}

	_, err = a.core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, coreType, "exec-v", 1, nil), State: &pb.PluginState{Version: 2, Data: []byte("1")}})
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "unknown state version 2" {
		t.Fatalf("unknown state version: %v", err)
	}
	_, err = a.core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, coreType, "exec-c", 1, map[string]any{"handle": "BEHAVIOR_CRASH", "message": "boom!"})})
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "boom!") {
		t.Fatalf("crash: %v", err)
	}
	r, err = a.core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, coreType, "exec-p", 1, map[string]any{"handle": "BEHAVIOR_PERMANENT", "message": "m"})})
	if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_PERMANENT_FAILURE || r.GetPhaseInfo().GetError().GetCode() != "Scripted" ||
		r.GetPhaseInfo().GetError().GetKind() != pb.ErrorKind_ERROR_KIND_USER || !proto.Equal(r.GetState(), countState("1")) {
		t.Fatalf("permanent: %v %v", r, err)
	}

	// Abort tolerates an attempt that never had a Handle; a failing one is not audited.
	if _, err := a.core.Abort(ctx, &pb.AbortRequest{Context: taskContext(t, coreType, "exec-a", 1, nil), Reason: "stop"}); err != nil {
		t.Fatal(err)
	}
	_, err = a.core.Abort(ctx, &pb.AbortRequest{Context: taskContext(t, coreType, "exec-a", 2, map[string]any{"abort": "BEHAVIOR_USER_ERROR", "message": "no"}),
		State: countState("3")})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "no" {
		t.Fatalf("abort user error: %v", err)
	}
	if lines := auditLines(t, audit, "abort"); len(lines) != 1 || lines[0] != "abort exec-a 1 conf-core-a" {
		t.Fatalf("audit aborts: %q", lines)
	}
}

// Finalize runs once per execution and attempt: concurrent and repeated calls, another instance and a
// restarted one all answer OK with one audited finalize; a failed one runs again.
func TestConformanceCoreFinalizeOnce(t *testing.T) {
	n := testenv.StartNATS(t)
	audit := filepath.Join(t.TempDir(), "audit")
	pa, a := startConformance(t, n.URL, "conf-fin-a", audit, "CONFORMANCE_KIND=core")
	_, b := startConformance(t, n.URL, "conf-fin-b", audit, "CONFORMANCE_KIND=core")
	ctx := callCtx(t)
	finalize := func(c *client, attempt uint32, custom map[string]any) error {
		_, err := c.core.Finalize(ctx, &pb.FinalizeRequest{Context: taskContext(t, coreType, "exec-f", attempt, custom), State: countState("5")})
		return err
	}

	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := finalize(a, 1, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, c := range []*client{a, b} {
		if err := finalize(c, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pa.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, exited := pa.Wait(40 * time.Second); !exited || code != 0 {
		t.Fatalf("exit code %d (exited %v)", code, exited)
	}
	_, restarted := startConformance(t, n.URL, "conf-fin-a", audit, "CONFORMANCE_KIND=core")
	if err := finalize(restarted, 1, nil); err != nil {
		t.Fatal(err)
	}
	if lines := auditLines(t, audit, "finalize"); len(lines) != 1 || lines[0] != "finalize exec-f 1 conf-fin-a" {
		t.Fatalf("audit finalizes: %q, want exactly one by conf-fin-a", lines)
	}

	// Attempt 2 fails first (nothing remembered, nothing audited), then its retry runs once.
	err := finalize(b, 2, map[string]any{"finalize": "BEHAVIOR_USER_ERROR", "message": "not yet"})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "not yet" {
		t.Fatalf("failing finalize: %v", err)
	}
	for _, c := range []*client{b, restarted} {
		if err := finalize(c, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	if lines := auditLines(t, audit, "finalize"); len(lines) != 2 || lines[1] != "finalize exec-f 2 conf-fin-b" {
		t.Fatalf("audit finalizes: %q", lines)
	}
}
