package kit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// subscribePushes subscribes to every pushed status, as the hosts' queue group does.
func subscribePushes(t *testing.T, n *testenv.NATS) *nats.Subscription {
	t.Helper()
	nc, _ := n.Connect(t)
	sub, err := nc.QueueSubscribeSync("pb.push.>", "pb-hosts")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the subscription is in place before anything is pushed
		t.Fatal(err)
	}
	return sub
}

func nextPush(t *testing.T, sub *nats.Subscription) (string, *pb.PushedStatus) {
	t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no pushed status: %v", err)
	}
	pushed := &pb.PushedStatus{}
	if err := proto.Unmarshal(msg.Data, pushed); err != nil {
		t.Fatalf("a pushed status that does not decode: %v", err)
	}
	return msg.Subject, pushed
}

func waitAnnounced(t *testing.T, s *kit.Server) {
	t.Helper()
	select {
	case <-s.Announced():
	case <-time.After(15 * time.Second):
		t.Fatal("no announcement within 15 s")
	}
}

func TestPushPublishesPushedStatus(t *testing.T) {
	n := testenv.StartNATS(t)
	sub := subscribePushes(t, n)
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-push-a"))
	waitAnnounced(t, s.server)
	ctx := callCtx(t)

	before := time.Now()
	result := kit.Success(map[string]any{"answer": 42, "echo": "héllo"}, kit.WithLog("file:///x", "x"), kit.WithVersion(2))
	if err := s.server.Push(ctx, "exec_push-1", 3, result); err != nil {
		t.Fatal(err)
	}
	subject, pushed := nextPush(t, sub)
	if subject != "pb.push.exec_push-1" || subject != kit.PushSubject("exec_push-1") {
		t.Errorf("subject %q", subject)
	}
	info := pushed.GetPhaseInfo()
	fields := pushed.GetOutputs().GetFields()
	if pushed.GetExecutionId() != "exec_push-1" || pushed.GetAttempt() != 3 || pushed.GetInstanceId() != "kit-push-a" ||
		info.GetPhase() != pb.Phase_PHASE_SUCCESS || info.GetVersion() != 2 || len(info.GetLogs()) != 1 ||
		info.GetLogs()[0].GetUri() != "file:///x" || fields["answer"].GetNumberValue() != 42 || fields["echo"].GetStringValue() != "héllo" {
		t.Fatalf("pushed %v", pushed)
	}
	if at := info.GetOccurredAt().AsTime(); at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("occurred_at %v", at)
	}

	// A PhaseInfo built by hand gets its occurred_at, as a Get answer does; a non-terminal phase has no outputs.
	if err := s.server.Push(ctx, "exec_push-1", 3, kit.Result{PhaseInfo: &pb.PhaseInfo{Phase: pb.Phase_PHASE_RUNNING, Reason: "halfway"}}); err != nil {
		t.Fatal(err)
	}
	_, pushed = nextPush(t, sub)
	if pushed.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING || pushed.GetPhaseInfo().GetReason() != "halfway" ||
		pushed.GetPhaseInfo().GetOccurredAt() == nil || pushed.GetOutputs() != nil {
		t.Fatalf("pushed %v", pushed)
	}

	// A failure keeps its error.
	if err := s.server.Push(ctx, "e2", 1, kit.PermanentFailure("Broken", "it broke", pb.ErrorKind_ERROR_KIND_USER)); err != nil {
		t.Fatal(err)
	}
	subject, pushed = nextPush(t, sub)
	if subject != "pb.push.e2" || pushed.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_PERMANENT_FAILURE ||
		pushed.GetPhaseInfo().GetError().GetCode() != "Broken" || pushed.GetPhaseInfo().GetError().GetKind() != pb.ErrorKind_ERROR_KIND_USER {
		t.Fatalf("pushed %v", pushed)
	}
}

// Task.Push pushes for the call's execution and attempt, also after the call returned.
func TestTaskPushAfterTheCall(t *testing.T) {
	n := testenv.StartNATS(t)
	sub := subscribePushes(t, n)
	tasks := make(chan *kit.Task[script], 1)
	plugin := newTestPlugin().plugin()
	plugin.Create = func(ctx context.Context, task *kit.Task[script]) (meta, error) {
		tasks <- task
		return meta{Execution: task.ExecutionID}, nil
	}
	s := startSidecar(t, plugin, kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-push-task"))
	waitAnnounced(t, s.server)
	ctx := callCtx(t)
	if _, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "run-7", 2, map[string]any{"echo": "x"})}); err != nil {
		t.Fatal(err)
	}
	task := <-tasks
	if err := task.Push(ctx, kit.Success(map[string]any{"done": true})); err != nil {
		t.Fatal(err)
	}
	subject, pushed := nextPush(t, sub)
	if subject != "pb.push.run-7" || pushed.GetExecutionId() != "run-7" || pushed.GetAttempt() != 2 || pushed.GetInstanceId() != "kit-push-task" ||
		pushed.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || !pushed.GetOutputs().GetFields()["done"].GetBoolValue() {
		t.Fatalf("pushed %v on %s", pushed, subject)
	}

	// A Task the kit did not make cannot push.
	if err := (&kit.Task[script]{ExecutionID: "run-7", Attempt: 2}).Push(ctx, kit.Success(nil)); err == nil {
		t.Error("a Task made by hand pushed")
	}
}

func TestPushRefusals(t *testing.T) {
	ctx := callCtx(t)
	ok := kit.Success(map[string]any{"a": 1})

	t.Run("without NATS", func(t *testing.T) {
		s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS())
		if err := s.server.Push(ctx, "e1", 1, ok); !errors.Is(err, kit.ErrPushWithoutNATS) {
			t.Fatalf("got %v, want ErrPushWithoutNATS", err)
		}
	})

	t.Run("while NATS is not connected", func(t *testing.T) {
		dead := testenv.FreePort(t)
		s := startSidecar(t, newTestPlugin().plugin(), kit.WithNATSURL("nats://127.0.0.1:"+itoa(dead)))
		start := time.Now()
		if err := s.server.Push(ctx, "e1", 1, ok); !errors.Is(err, kit.ErrNotConnected) {
			t.Fatalf("got %v, want ErrNotConnected", err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("the refusal took %s; it should be at once", time.Since(start))
		}
	})

	n := testenv.StartNATS(t)
	sub := subscribePushes(t, n)
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-push-refusals"))
	waitAnnounced(t, s.server)

	for _, id := range []string{"", "a.b", "a b", "a>", "*", "exé", strings.Repeat("x", 65)} {
		if err := s.server.Push(ctx, id, 1, ok); err == nil || !strings.Contains(err.Error(), "is not one a host gives") {
			t.Errorf("execution id %q: %v", id, err)
		}
	}
	// A 64 KiB id would overflow NATS's control line: refused, and only 80 characters of it repeated.
	err := s.server.Push(ctx, strings.Repeat("x", 64<<10), 1, ok)
	if want := `push: execution id "` + strings.Repeat("x", 80) + `"… (65536 characters) is not one a host gives: 1 to 64 letters, digits, '-' and '_'`; err == nil || err.Error() != want {
		t.Errorf("a 64 KiB execution id: %v", err)
	}
	for _, c := range []struct {
		name    string
		result  kit.Result
		message string
	}{
		{"no PhaseInfo", kit.Result{Outputs: map[string]any{"a": 1}}, "push returned no PhaseInfo"},
		{"PHASE_UNSPECIFIED", kit.Result{PhaseInfo: &pb.PhaseInfo{}}, "push returned PHASE_UNSPECIFIED"},
		{"outputs that are not an object", kit.Result{PhaseInfo: ok.PhaseInfo, Outputs: []int{1, 2}}, "outputs"},
		{"outputs that do not encode", kit.Result{PhaseInfo: ok.PhaseInfo, Outputs: map[string]any{"f": func() {}}}, "outputs"},
	} {
		err := s.server.Push(ctx, "e1", 1, c.result)
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: %v, want INTERNAL %q", c.name, err, c.message)
		}
	}
	// Bigger than the server's max_payload (8 MiB in the tests): NATS refuses it, and Push says so.
	big := kit.Success(map[string]any{"payload": strings.Repeat("x", 9<<20)})
	if err := s.server.Push(ctx, "e1", 1, big); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("a push over max_payload: %v", err)
	}
	// A cancelled context sends nothing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.server.Push(cancelled, "e1", 1, ok); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled push: %v", err)
	}

	// None of the refused pushes went out: the next message is the one that was not refused.
	if err := s.server.Push(ctx, "e-good", 1, ok); err != nil {
		t.Fatal(err)
	}
	if subject, _ := nextPush(t, sub); subject != "pb.push.e-good" {
		t.Fatalf("a refused push was published on %s", subject)
	}

	// After Stop the connection is gone.
	s.server.Stop()
	if err := s.server.Push(ctx, "e1", 1, ok); err == nil {
		t.Fatal("a stopped server pushed")
	}
	if msg, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("unexpected push on %s", msg.Subject)
	}
}
