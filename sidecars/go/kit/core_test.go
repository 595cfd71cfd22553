package kit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// corePlugin is an in-process core plugin whose Script message picks what each call does.
type corePlugin struct {
	finalizes     atomic.Int32
	failures      atomic.Int32
	finalizeState atomic.Pointer[kit.State] // what the last Finalize that ran was given
	aborts        chan abortCall
	cancelled     chan struct{} // signalled when a hanging Handle sees its context end
	entered       chan struct{} // signalled when a hanging Handle or a blocking Finalize has started
	release       chan struct{} // a blocking Finalize waits for it
	releaseOnce   sync.Once
}

type abortCall struct {
	state  *kit.State
	reason string
}

// count is the JSON state of the default Handle.
type count struct {
	N int `json:"n"`
}

func newCorePlugin() *corePlugin {
	return &corePlugin{
		aborts: make(chan abortCall, 16), cancelled: make(chan struct{}, 1),
		entered: make(chan struct{}, 16), release: make(chan struct{}),
	}
}

func (p *corePlugin) unblock() { p.releaseOnce.Do(func() { close(p.release) }) }

func (p *corePlugin) plugin() *kit.Core[script] {
	return &kit.Core[script]{
		Name:      "kit-core",
		Version:   "0.2.0",
		TaskTypes: []kit.TaskType{{Type: "kit-core", Version: 3}},
		Properties: kit.Properties{
			ResyncInterval: 100 * time.Millisecond, HandleTimeout: time.Second, AbortTimeout: 2 * time.Second,
			FinalizeTimeout: 3 * time.Second, MaxSystemFailures: 4,
		},
		Handle: p.handle,
		Abort: func(ctx context.Context, task *kit.Task[script], state *kit.State, reason string) error {
			switch task.Spec.GetMessage() {
			case "plain":
				return errors.New("abort failed")
			case "panic":
				panic("abort exploded")
			}
			p.aborts <- abortCall{state, reason}
			return nil
		},
		Finalize: func(ctx context.Context, task *kit.Task[script], state *kit.State) error {
			p.finalizes.Add(1)
			p.finalizeState.Store(state)
			switch task.Spec.GetMessage() {
			case "block":
				p.entered <- struct{}{}
				select {
				case <-p.release:
				case <-ctx.Done():
					return ctx.Err()
				}
			case "fail once":
				if p.failures.Add(1) == 1 {
					return errors.New("finalize failed")
				}
			case "panic":
				panic("finalize exploded")
			}
			return nil
		},
	}
}

func (p *corePlugin) handle(ctx context.Context, task *kit.Task[script], state *kit.State) (kit.Result, *kit.State, error) {
	switch task.Spec.GetMessage() {
	case "keep":
		return kit.Running("kept"), nil, nil
	case "raw":
		// Describes the state it got and answers with one derived from it, so the bytes' trip shows.
		if state == nil {
			return kit.Running("none"), &kit.State{Version: 1, Data: []byte{0}}, nil
		}
		next := &kit.State{Version: state.Version + 1, Data: append(state.Data, byte(state.Version))}
		return kit.Running(fmt.Sprintf("v%d %x", state.Version, state.Data)), next, nil
	case "no phase":
		return kit.Result{}, nil, nil
	case "unspecified":
		return kit.Result{PhaseInfo: &pb.PhaseInfo{}}, nil, nil
	case "bad outputs":
		return kit.Success([]int{1, 2}), nil, nil
	case "user":
		return kit.Result{}, nil, kit.Errorf(codes.InvalidArgument, "bad input %d", 7)
	case "status":
		return kit.Result{}, nil, status.Error(codes.NotFound, "gone")
	case "plain":
		return kit.Result{}, nil, errors.New("plain failure")
	case "panic":
		panic("handle exploded")
	case "hang":
		p.entered <- struct{}{}
		<-ctx.Done()
		p.cancelled <- struct{}{}
		return kit.Result{}, nil, ctx.Err()
	}
	var c count
	if err := state.DecodeJSON(&c); err != nil {
		return kit.Result{}, nil, err
	}
	c.N++
	next, err := kit.JSONState(1, c)
	if err != nil {
		return kit.Result{}, nil, err
	}
	if c.N <= int(task.Spec.GetPolls()) {
		return kit.Running("polling"), next, nil
	}
	return kit.Success(map[string]any{"n": c.N, "echo": task.Spec.GetEcho()}), next, nil
}

func startCore(t *testing.T, p *corePlugin, options ...kit.Option) (*sidecar, pb.CorePluginServiceClient) {
	t.Helper()
	s := startSidecar(t, p.plugin(), options...)
	return s, pb.NewCorePluginServiceClient(s.conn)
}

func TestCoreDescribeAndHealth(t *testing.T) {
	s, _ := startCore(t, newCorePlugin(), kit.WithoutNATS())
	ctx := callCtx(t)
	response, err := s.meta.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d := response.GetPlugin()
	if d.GetName() != "kit-core" || d.GetKind() != pb.PluginKind_PLUGIN_KIND_CORE || d.GetTaskTypes()[0].GetVersion() != 3 ||
		d.GetSpecification().GetMessageName() != "pluginbridge.conformance.v1.Script" {
		t.Fatalf("descriptor %v", d)
	}
	props := d.GetProperties()
	if props.GetHandleTimeout().AsDuration() != time.Second || props.GetAbortTimeout().AsDuration() != 2*time.Second ||
		props.GetFinalizeTimeout().AsDuration() != 3*time.Second || props.GetResyncInterval().AsDuration() != 100*time.Millisecond ||
		props.GetMaxSystemFailures() != 4 || props.GetCreateTimeout() != nil || props.GetDoTimeout() != nil {
		t.Fatalf("properties %v", props)
	}
	for _, service := range []string{"", "pluginbridge.v1.PluginMetadataService", "pluginbridge.v1.CorePluginService", "grpc.health.v1.Health"} {
		r, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v, %v", service, r, err)
		}
	}
	for _, other := range []string{"pluginbridge.v1.AsyncPluginService", "pluginbridge.v1.SyncPluginService"} {
		if _, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: other}); status.Code(err) != codes.NotFound {
			t.Errorf("health %q: %v, want NOT_FOUND", other, err)
		}
	}
	// A core sidecar serves no async calls.
	if _, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e", 1, nil)}); status.Code(err) != codes.Unimplemented {
		t.Errorf("async Get on a core sidecar: %v", err)
	}
}

func TestCoreDeclarationChecks(t *testing.T) {
	incomplete := newCorePlugin().plugin()
	incomplete.Finalize = nil
	negative := newCorePlugin().plugin()
	negative.Properties.FinalizeTimeout = -time.Second
	for _, bad := range []*kit.Core[script]{incomplete, negative} {
		if _, err := kit.Start(context.Background(), bad, kit.WithoutNATS(), kit.WithEndpoint("127.0.0.1:0")); err == nil {
			t.Errorf("%+v started", bad.Properties)
		}
	}
}

func TestCoreHandleStateRoundTrip(t *testing.T) {
	_, core := startCore(t, newCorePlugin(), kit.WithoutNATS())
	ctx := callCtx(t)
	custom := map[string]any{"polls": 2, "echo": "grüße ✓"}
	var state *pb.PluginState // the host's copy, as it would keep it
	for i, want := range []string{"polling", "polling", ""} {
		r, err := core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, "run-1", 2, custom), State: state})
		if err != nil {
			t.Fatalf("handle %d: %v", i, err)
		}
		if r.GetPhaseInfo().GetOccurredAt() == nil || r.GetState().GetVersion() != 1 || string(r.GetState().GetData()) != fmt.Sprintf(`{"n":%d}`, i+1) {
			t.Fatalf("handle %d: %v", i, r)
		}
		if want != "" && (r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING || r.GetPhaseInfo().GetReason() != want) {
			t.Fatalf("handle %d: %v", i, r)
		}
		state = r.GetState()
		if want == "" {
			out := r.GetOutputs().AsMap()
			if r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || out["n"] != float64(3) || out["echo"] != "grüße ✓" {
				t.Fatalf("final handle: %v", r)
			}
		}
	}

	// A nil state from the plugin leaves the response's state unset: the host keeps its own.
	r, err := core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, "run-1", 2, map[string]any{"message": "keep"}), State: state})
	if err != nil || r.GetState() != nil || r.GetPhaseInfo().GetReason() != "kept" {
		t.Fatalf("keep: %v %v", r, err)
	}

	// Bytes and version pass through untouched, in both directions; no state reaches the plugin as nil.
	raw := taskContext(t, "raw", 1, map[string]any{"message": "raw"})
	r, err = core.Handle(ctx, &pb.HandleRequest{Context: raw})
	if err != nil || r.GetPhaseInfo().GetReason() != "none" || !proto.Equal(r.GetState(), &pb.PluginState{Version: 1, Data: []byte{0}}) {
		t.Fatalf("raw, no state: %v %v", r, err)
	}
	r, err = core.Handle(ctx, &pb.HandleRequest{Context: raw, State: &pb.PluginState{Version: 7, Data: []byte{0, 0xff}}})
	if err != nil || r.GetPhaseInfo().GetReason() != "v7 00ff" || !proto.Equal(r.GetState(), &pb.PluginState{Version: 8, Data: []byte{0, 0xff, 7}}) {
		t.Fatalf("raw state: %v %v", r, err)
	}
}

func TestCoreHandleErrors(t *testing.T) {
	_, core := startCore(t, newCorePlugin(), kit.WithoutNATS())
	ctx := callCtx(t)
	handle := func(custom map[string]any, state *pb.PluginState) error {
		_, err := core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, "e", 1, custom), State: state})
		return err
	}
	cases := []struct {
		message string
		code    codes.Code
		text    string
	}{
		{"no phase", codes.Internal, "handle returned no PhaseInfo; return kit.Success(), kit.Running() ..."},
		{"unspecified", codes.Internal, "handle returned PHASE_UNSPECIFIED"},
		{"bad outputs", codes.Internal, "outputs must encode to a JSON object"},
		{"user", codes.InvalidArgument, "bad input 7"},
		{"status", codes.NotFound, "gone"},
		{"plain", codes.Internal, "plain failure"},
		{"panic", codes.Internal, "panic: handle exploded"},
	}
	for _, c := range cases {
		err := handle(map[string]any{"message": c.message}, nil)
		if status.Code(err) != c.code || status.Convert(err).Message() != c.text {
			t.Errorf("%s: %v, want %s %q", c.message, err, c.code, c.text)
		}
	}
	err := handle(map[string]any{"polls": "many"}, nil)
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "template.custom.polls: ") {
		t.Errorf("bad custom: %v", err)
	}
	if _, err := core.Handle(ctx, &pb.HandleRequest{}); status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "context is required" {
		t.Errorf("no context: %v", err)
	}
	err = handle(nil, &pb.PluginState{Version: 1, Data: []byte("not json")})
	if status.Code(err) != codes.FailedPrecondition || !strings.HasPrefix(status.Convert(err).Message(), "state version 1 is not the JSON this plugin expects: ") {
		t.Errorf("state that is not JSON: %v", err)
	}
	// Still serving after the panic.
	if err := handle(nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCoreHandleCancelledThroughContext(t *testing.T) {
	p := newCorePlugin()
	_, core := startCore(t, p, kit.WithoutNATS())
	// Cancelled by hand once the Handle runs: a deadline would race the server's own copy of it.
	ctx, cancel := context.WithCancel(callCtx(t))
	defer cancel()
	go func() {
		<-p.entered
		cancel()
	}()
	_, err := core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, "e", 1, map[string]any{"message": "hang"})})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("hanging handle: %v", err)
	}
	select {
	case <-p.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin's context was not cancelled")
	}
}

func TestCoreAbort(t *testing.T) {
	p := newCorePlugin()
	_, core := startCore(t, p, kit.WithoutNATS())
	ctx := callCtx(t)
	if _, err := core.Abort(ctx, &pb.AbortRequest{Context: taskContext(t, "e", 1, nil), State: &pb.PluginState{Version: 2, Data: []byte("s")}, Reason: "user asked"}); err != nil {
		t.Fatal(err)
	}
	got := <-p.aborts
	if got.reason != "user asked" || got.state == nil || got.state.Version != 2 || string(got.state.Data) != "s" {
		t.Fatalf("abort got %+v", got)
	}
	// An attempt with no Handle yet has no state: the plugin gets nil.
	if _, err := core.Abort(ctx, &pb.AbortRequest{Context: taskContext(t, "e", 2, nil)}); err != nil {
		t.Fatal(err)
	}
	if got := <-p.aborts; got.state != nil || got.reason != "" {
		t.Fatalf("abort without state got %+v", got)
	}
	_, err := core.Abort(ctx, &pb.AbortRequest{Context: taskContext(t, "e", 1, map[string]any{"message": "plain"})})
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "abort failed" {
		t.Errorf("failing abort: %v", err)
	}
	_, err = core.Abort(ctx, &pb.AbortRequest{Context: taskContext(t, "e", 1, map[string]any{"message": "panic"})})
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "panic: abort exploded" {
		t.Errorf("panicking abort: %v", err)
	}
	_, err = core.Abort(ctx, &pb.AbortRequest{Context: &pb.TaskContext{ExecutionId: &pb.TaskExecutionId{Id: "e", Attempt: 1}}})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "context.template is required" {
		t.Errorf("no template: %v", err)
	}
}

func TestCoreFinalizeRunsOnceInProcess(t *testing.T) {
	p := newCorePlugin()
	_, core := startCore(t, p, kit.WithoutNATS())
	ctx := callCtx(t)
	finalize := func(execution string, attempt uint32, custom map[string]any, state *pb.PluginState) error {
		_, err := core.Finalize(ctx, &pb.FinalizeRequest{Context: taskContext(t, execution, attempt, custom), State: state})
		return err
	}

	// Sequential repeats: one run, and the plugin got the state.
	for range 3 {
		if err := finalize("seq", 1, nil, &pb.PluginState{Version: 1, Data: []byte("last")}); err != nil {
			t.Fatal(err)
		}
	}
	if p.finalizes.Load() != 1 || string(p.finalizeState.Load().Data) != "last" {
		t.Fatalf("sequential: %d runs, state %v", p.finalizes.Load(), p.finalizeState.Load())
	}
	// A new attempt is a new Finalize, with or without state.
	if err := finalize("seq", 2, nil, nil); err != nil || p.finalizes.Load() != 2 || p.finalizeState.Load() != nil {
		t.Fatalf("second attempt: %v, %d runs", err, p.finalizes.Load())
	}

	// Concurrent duplicates share one run; those that come after it are answered without one.
	block := map[string]any{"message": "block"}
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- finalize("conc", 1, block, nil) }()
	}
	<-p.entered
	time.Sleep(200 * time.Millisecond) // let every duplicate join the run in flight
	p.unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := finalize("conc", 1, block, nil); err != nil || p.finalizes.Load() != 3 {
		t.Fatalf("concurrent: %v, %d runs, want 3", err, p.finalizes.Load())
	}

	// A Finalize that failed or panicked is not remembered: the retry runs it.
	err := finalize("fail", 1, map[string]any{"message": "fail once"}, nil)
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "finalize failed" {
		t.Fatalf("failing finalize: %v", err)
	}
	for range 2 {
		if err := finalize("fail", 1, map[string]any{"message": "fail once"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if p.finalizes.Load() != 5 {
		t.Fatalf("after a failure: %d runs, want 5", p.finalizes.Load())
	}
	for range 2 {
		err = finalize("boom", 1, map[string]any{"message": "panic"}, nil)
		if status.Code(err) != codes.Internal || status.Convert(err).Message() != "panic: finalize exploded" {
			t.Fatalf("panicking finalize: %v", err)
		}
	}
	if p.finalizes.Load() != 7 {
		t.Fatalf("after panics: %d runs, want 7", p.finalizes.Load())
	}
}

func TestCoreFinalizeRunsOnceAcrossInstances(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx := callCtx(t)
	request := &pb.FinalizeRequest{Context: taskContext(t, "run-1", 2, nil)}

	first := newCorePlugin()
	s1, core1 := startCore(t, first, kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-core-a"))
	if _, err := core1.Finalize(ctx, request); err != nil {
		t.Fatal(err)
	}
	_, js := n.Connect(t)
	creates, err := js.KeyValue(ctx, "pb_creates")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := creates.Get(ctx, "kit-core.run-1.2.finalize")
	if err != nil || string(entry.Value()) != "finalized" {
		t.Fatalf("stored marker: %v %v", entry, err)
	}
	if _, err := creates.Get(ctx, "kit-core.run-1.2"); err == nil {
		t.Fatal("Finalize wrote a Create key")
	}

	// Another instance, and the same instance restarted (a fresh process memory), answer from the store.
	second := newCorePlugin()
	_, core2 := startCore(t, second, kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-core-b"))
	if _, err := core2.Finalize(ctx, request); err != nil {
		t.Fatal(err)
	}
	s1.server.Stop()
	restarted := newCorePlugin()
	_, core3 := startCore(t, restarted, kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-core-a"))
	if _, err := core3.Finalize(ctx, request); err != nil {
		t.Fatal(err)
	}
	if first.finalizes.Load() != 1 || second.finalizes.Load() != 0 || restarted.finalizes.Load() != 0 {
		t.Fatalf("runs: first %d, second %d, restarted %d; want 1, 0, 0", first.finalizes.Load(), second.finalizes.Load(), restarted.finalizes.Load())
	}
}

func TestCoreFinalizeRefusedWithoutStore(t *testing.T) {
	p := newCorePlugin()
	_, core := startCore(t, p, kit.WithNATSURL("nats://127.0.0.1:"+itoa(testenv.FreePort(t))))
	_, err := core.Finalize(callCtx(t), &pb.FinalizeRequest{Context: taskContext(t, "e", 1, nil)})
	if status.Code(err) != codes.Unavailable || !strings.HasPrefix(status.Convert(err).Message(), "finalize idempotency store unavailable: ") {
		t.Fatalf("got %v, want UNAVAILABLE", err)
	}
	if p.finalizes.Load() != 0 {
		t.Fatal("Finalize ran without the store")
	}
}

func TestCoreDrainWaitsForCallsInFlight(t *testing.T) {
	p := newCorePlugin()
	s, core := startCore(t, p, kit.WithoutNATS())
	ctx := callCtx(t)
	result := make(chan error, 1)
	go func() {
		_, err := core.Finalize(ctx, &pb.FinalizeRequest{Context: taskContext(t, "blocked", 1, map[string]any{"message": "block"})})
		result <- err
	}()
	select {
	case <-p.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("Finalize never started")
	}
	drained := make(chan struct{})
	go func() { s.server.Drain(); close(drained) }()
	testenv.Eventually(t, 10*time.Second, "a new Handle is refused", func() bool {
		_, err := core.Handle(ctx, &pb.HandleRequest{Context: taskContext(t, "other", 1, nil)})
		return status.Code(err) == codes.Unavailable && status.Convert(err).Message() == "draining"
	})
	p.unblock()
	if err := <-result; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatal("drain did not finish")
	}
}
