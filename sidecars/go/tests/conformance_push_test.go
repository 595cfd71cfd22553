package tests

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"google.golang.org/protobuf/proto"
)

// pushes subscribes to every pushed status, as the hosts' queue group does.
func pushes(t *testing.T, n *testenv.NATS) *nats.Subscription {
	t.Helper()
	nc, _ := n.Connect(t)
	sub, err := nc.QueueSubscribeSync("pb.push.>", "pb-hosts")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

func nextPushed(t *testing.T, sub *nats.Subscription, within time.Duration) (string, *pb.PushedStatus) {
	t.Helper()
	msg, err := sub.NextMsg(within)
	if err != nil {
		t.Fatalf("no pushed status within %s: %v", within, err)
	}
	pushed := &pb.PushedStatus{}
	if err := proto.Unmarshal(msg.Data, pushed); err != nil {
		t.Fatal(err)
	}
	return msg.Subject, pushed
}

func noPush(t *testing.T, sub *nats.Subscription, within time.Duration) {
	t.Helper()
	if msg, err := sub.NextMsg(within); err == nil {
		t.Fatalf("unexpected push on %s", msg.Subject)
	}
}

// Script.push_after_ms: Create schedules a push of SUCCESS that much later, with the usual outputs and "pushed".
func TestConformancePushAfterCreate(t *testing.T) {
	n := testenv.StartNATS(t)
	sub := pushes(t, n)
	_, c := startConformance(t, n.URL, "conf-push", filepath.Join(t.TempDir(), "audit"))
	ctx := callCtx(t)

	// Without push_after_ms nothing is pushed.
	if _, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-quiet", 1, nil)}); err != nil {
		t.Fatal(err)
	}
	noPush(t, sub, 500*time.Millisecond)

	script := map[string]any{"pushAfterMs": 400, "echo": "pushed ✓", "outputBytes": 2}
	created := time.Now()
	if _, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-push", 2, script)}); err != nil {
		t.Fatal(err)
	}
	subject, pushed := nextPushed(t, sub, 10*time.Second)
	if elapsed := time.Since(created); elapsed < 350*time.Millisecond {
		t.Errorf("pushed after %s, want push_after_ms (400 ms)", elapsed)
	}
	fields := pushed.GetOutputs().GetFields()
	if subject != "pb.push.exec-push" || pushed.GetExecutionId() != "exec-push" || pushed.GetAttempt() != 2 ||
		pushed.GetInstanceId() != "conf-push" || pushed.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS ||
		pushed.GetPhaseInfo().GetOccurredAt() == nil || fields["language"].GetStringValue() != "go" ||
		fields["instance"].GetStringValue() != "conf-push" || fields["echo"].GetStringValue() != "pushed ✓" ||
		fields["payload"].GetStringValue() != "xx" || !fields["pushed"].GetBoolValue() {
		t.Fatalf("pushed %v on %s", pushed, subject)
	}
	// A retried Create does not run again, so it schedules nothing more.
	if _, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-push", 2, script)}); err != nil {
		t.Fatal(err)
	}
	noPush(t, sub, 800*time.Millisecond)
}

// For core, the attempt's first Handle schedules the push, with "handles": 1; later Handles do not.
func TestConformanceCorePushAfterFirstHandle(t *testing.T) {
	n := testenv.StartNATS(t)
	sub := pushes(t, n)
	_, c := startConformance(t, n.URL, "conf-core-push", filepath.Join(t.TempDir(), "audit"), "CONFORMANCE_KIND=core")
	ctx := callCtx(t)
	script := map[string]any{"polls": 1000, "pushAfterMs": 300, "echo": "core"}

	first, err := c.core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, coreType, "exec-core-push", 1, script)})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING || string(first.GetState().GetData()) != "1" {
		t.Fatalf("first handle %v", first)
	}
	second, err := c.core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, coreType, "exec-core-push", 1, script), State: first.GetState()})
	if err != nil || string(second.GetState().GetData()) != "2" {
		t.Fatalf("second handle %v %v", second, err)
	}
	subject, pushed := nextPushed(t, sub, 10*time.Second)
	fields := pushed.GetOutputs().GetFields()
	if subject != "pb.push.exec-core-push" || pushed.GetAttempt() != 1 || pushed.GetInstanceId() != "conf-core-push" ||
		pushed.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || fields["language"].GetStringValue() != "go" ||
		fields["echo"].GetStringValue() != "core" || fields["handles"].GetNumberValue() != 1 || !fields["pushed"].GetBoolValue() {
		t.Fatalf("pushed %v on %s", pushed, subject)
	}
	noPush(t, sub, 700*time.Millisecond)
}
