package kit_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	conformancev1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/conformance/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

type script = *conformancev1.Script

// testPlugin is an in-process plugin whose Script message picks what each call does.
type testPlugin struct {
	creates  atomic.Int32
	release  chan struct{} // Create waits for it when the script's message is "block"
	entered  chan struct{} // signalled when a blocking Create has started
	blocking sync.Once
}

type meta struct {
	Execution string `json:"execution"`
	N         int32  `json:"n"`
}

func (p *testPlugin) plugin() *kit.Async[script, meta] {
	return &kit.Async[script, meta]{
		Name:       "kit-test",
		Version:    "0.1.0",
		TaskTypes:  []kit.TaskType{{Type: "kit-test", Version: 1}},
		Properties: kit.Properties{ResyncInterval: 250 * time.Millisecond, MaxSystemFailures: 3},
		Create: func(ctx context.Context, task *kit.Task[script]) (meta, error) {
			n := p.creates.Add(1)
			switch task.Spec.GetMessage() {
			case "block":
				p.entered <- struct{}{}
				select {
				case <-p.release:
				case <-ctx.Done():
					return meta{}, ctx.Err()
				}
			case "slow":
				time.Sleep(300 * time.Millisecond)
			}
			return meta{Execution: task.ExecutionID, N: n}, nil
		},
		Get: func(ctx context.Context, task *kit.Task[script], m meta) (kit.Result, error) {
			switch task.Spec.GetMessage() {
			case "panic":
				panic("get exploded")
			case "user":
				return kit.Result{}, kit.Errorf(codes.InvalidArgument, "bad input %d", 7)
			case "plain":
				return kit.Result{}, errors.New("plain failure")
			case "repeat":
				// A plugin that repeats its input whole in an error, as plugins do.
				return kit.Result{}, kit.Errorf(codes.FailedPrecondition, "cannot run %s", task.Spec.GetEcho())
			}
			return kit.Success(map[string]any{"n": m.N, "echo": task.Spec.GetEcho()}, kit.WithLog("file:///x", "x")), nil
		},
		Delete: func(ctx context.Context, task *kit.Task[script], m meta) error { return nil },
	}
}

func newTestPlugin() *testPlugin {
	return &testPlugin{release: make(chan struct{}), entered: make(chan struct{}, 16)}
}

type sidecar struct {
	server *kit.Server
	conn   *grpc.ClientConn
	async  pb.AsyncPluginServiceClient
	meta   pb.PluginMetadataServiceClient
	health healthpb.HealthClient
}

func startSidecar(t *testing.T, plugin kit.Plugin, options ...kit.Option) *sidecar {
	t.Helper()
	options = append([]kit.Option{kit.WithEndpoint("unix:" + t.TempDir() + "/s.sock"), kit.WithSignals(false)}, options...)
	server, err := kit.Start(context.Background(), plugin, options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient(server.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sidecar{server, conn, pb.NewAsyncPluginServiceClient(conn), pb.NewPluginMetadataServiceClient(conn), healthpb.NewHealthClient(conn)}
}

func taskContext(t *testing.T, execution string, attempt uint32, custom map[string]any) *pb.TaskContext {
	t.Helper()
	s, err := structpb.NewStruct(custom)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.TaskContext{
		ExecutionId: &pb.TaskExecutionId{Id: execution, Attempt: attempt},
		Template:    &pb.TaskTemplate{Type: "kit-test", TypeVersion: 1, Custom: s},
	}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDescribeAndHealth(t *testing.T) {
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS())
	ctx := callCtx(t)
	response, err := s.meta.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d := response.GetPlugin()
	if d.GetName() != "kit-test" || d.GetVersion() != "0.1.0" || d.GetKind() != pb.PluginKind_PLUGIN_KIND_ASYNC ||
		len(d.GetTaskTypes()) != 1 || d.GetTaskTypes()[0].GetType() != "kit-test" || d.GetTaskTypes()[0].GetVersion() != 1 {
		t.Fatalf("descriptor %v", d)
	}
	if d.GetProperties().GetResyncInterval().AsDuration() != 250*time.Millisecond || d.GetProperties().GetMaxSystemFailures() != 3 ||
		d.GetProperties().GetCreateTimeout() != nil {
		t.Fatalf("properties %v", d.GetProperties())
	}
	files, err := protodesc.NewFiles(d.GetSpecification().GetFileDescriptorSet())
	if err != nil {
		t.Fatalf("the FileDescriptorSet does not resolve: %v", err)
	}
	found, err := files.FindDescriptorByName(protoreflect.FullName(d.GetSpecification().GetMessageName()))
	if err != nil || d.GetSpecification().GetMessageName() != "pluginbridge.conformance.v1.Script" {
		t.Fatalf("message %q: %v", d.GetSpecification().GetMessageName(), err)
	}
	if _, ok := found.(protoreflect.MessageDescriptor); !ok {
		t.Fatalf("%v is not a message", found)
	}

	for _, service := range []string{"", "pluginbridge.v1.PluginMetadataService", "pluginbridge.v1.AsyncPluginService", "grpc.health.v1.Health"} {
		r, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v, %v", service, r, err)
		}
	}
	_, err = s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "pluginbridge.v1.SyncPluginService"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown service: %v, want NOT_FOUND", err)
	}
}

func TestFileDescriptorSetIncludesDependenciesFirst(t *testing.T) {
	set := kit.FileDescriptorSetFor((&pb.PluginAnnouncement{}).ProtoReflect().Descriptor())
	seen := map[string]bool{}
	for _, file := range set.GetFile() {
		for _, dependency := range file.GetDependency() {
			if !seen[dependency] {
				t.Errorf("%s comes before its dependency %s", file.GetName(), dependency)
			}
		}
		seen[file.GetName()] = true
	}
	for _, want := range []string{"google/protobuf/duration.proto", "google/protobuf/descriptor.proto", "pluginbridge/v1/task.proto"} {
		if !seen[want] {
			t.Errorf("%s missing from %v", want, seen)
		}
	}
	if _, err := protodesc.NewFiles(set); err != nil {
		t.Fatal(err)
	}
}

func TestCallErrors(t *testing.T) {
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS())
	ctx := callCtx(t)

	_, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, map[string]any{"polls": "many"})})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "template.custom.polls: ") {
		t.Errorf("bad custom: %v", err)
	}
	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, map[string]any{"nope": true})})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "template.custom.nope: unknown field") {
		t.Errorf("unknown field: %v", err)
	}
	_, err = s.async.Get(ctx, &pb.GetRequest{Context: &pb.TaskContext{}})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "context.execution_id.id is required" {
		t.Errorf("no execution id: %v", err)
	}
	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, map[string]any{"message": "user"})})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "bad input 7" {
		t.Errorf("kit error: %v", err)
	}
	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, map[string]any{"message": "plain"})})
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "plain failure" {
		t.Errorf("plain error: %v", err)
	}
	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, map[string]any{"message": "panic"})})
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "get exploded") {
		t.Errorf("panic: %v", err)
	}
	// The sidecar keeps serving after a panic.
	got, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, map[string]any{"echo": "héllo"}), ResourceMeta: []byte(`{"n":4}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || got.GetOutputs().GetFields()["echo"].GetStringValue() != "héllo" ||
		got.GetOutputs().GetFields()["n"].GetNumberValue() != 4 || got.GetPhaseInfo().GetOccurredAt() == nil || len(got.GetPhaseInfo().GetLogs()) != 1 {
		t.Errorf("get after panic: %v", got)
	}
	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e1", 1, nil), ResourceMeta: []byte("not json")})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad meta: %v", err)
	}
}

func TestAnnouncementAndIdempotentCreate(t *testing.T) {
	n := testenv.StartNATS(t)
	p := newTestPlugin()
	s := startSidecar(t, p.plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-test-a"), kit.WithHeartbeatInterval(200*time.Millisecond))
	select {
	case <-s.server.Announced():
	case <-time.After(15 * time.Second):
		t.Fatal("no announcement within 15 s")
	}
	_, js := n.Connect(t)
	ctx := callCtx(t)
	kv, err := js.KeyValue(ctx, "pb_plugins")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	if st.History() != 1 || st.TTL() != 15*time.Second || cfg.Storage != jetstream.FileStorage || cfg.SubjectDeleteMarkerTTL != 5*time.Second {
		t.Errorf("pb_plugins settings: history %d ttl %s storage %v marker %s", st.History(), st.TTL(), cfg.Storage, cfg.SubjectDeleteMarkerTTL)
	}
	read := func() *pb.PluginAnnouncement {
		entry, err := kv.Get(ctx, "kit-test.kit-test-a")
		if err != nil {
			t.Fatal(err)
		}
		a := &pb.PluginAnnouncement{}
		if err := proto.Unmarshal(entry.Value(), a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := read()
	if first.GetTtlSeconds() != 10 || first.GetInstance().GetEndpoint() != s.server.Endpoint() ||
		!strings.HasPrefix(first.GetInstance().GetEndpoint(), "unix:/") || first.GetInstance().GetInstanceId() != "kit-test-a" ||
		first.GetInstance().GetDescriptor_().GetName() != "kit-test" || first.GetInstance().GetDraining() {
		t.Fatalf("announcement %v", first)
	}
	testenv.Eventually(t, 10*time.Second, "the heartbeat advances", func() bool {
		return read().GetInstance().GetHeartbeatAt().AsTime().After(first.GetInstance().GetHeartbeatAt().AsTime())
	})

	// Concurrent duplicates share one Create; a retry gets the stored meta.
	var wg sync.WaitGroup
	metas := make([]string, 6)
	for i := range metas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "run-1", 2, map[string]any{"message": "slow"})})
			if err != nil {
				t.Error(err)
				return
			}
			metas[i] = string(r.GetResourceMeta())
		}()
	}
	wg.Wait()
	again, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "run-1", 2, map[string]any{"message": "slow"})})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		if m != string(again.GetResourceMeta()) {
			t.Fatalf("metas differ: %q vs %q", metas, again.GetResourceMeta())
		}
	}
	if p.creates.Load() != 1 {
		t.Fatalf("Create ran %d times, want 1", p.creates.Load())
	}
	creates, err := js.KeyValue(ctx, "pb_creates")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := creates.Get(ctx, "kit-test.run-1.2")
	if err != nil || string(entry.Value()) != `{"execution":"run-1","n":1}` {
		t.Fatalf("stored meta: %v %v", entry, err)
	}
	cst, _ := creates.Status(ctx)
	if cst.History() != 1 || cst.TTL() != 24*time.Hour {
		t.Errorf("pb_creates settings: history %d ttl %s", cst.History(), cst.TTL())
	}

	// A second instance (a fresh process memory) answers from the store without calling Create.
	p2 := newTestPlugin()
	s2 := startSidecar(t, p2.plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-test-b"))
	r2, err := s2.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "run-1", 2, nil)})
	if err != nil || string(r2.GetResourceMeta()) != string(again.GetResourceMeta()) || p2.creates.Load() != 0 {
		t.Fatalf("second instance: %q %v creates=%d", r2.GetResourceMeta(), err, p2.creates.Load())
	}
}

func TestCreateRefusedWithoutStore(t *testing.T) {
	p := newTestPlugin()
	dead := testenv.FreePort(t)
	s := startSidecar(t, p.plugin(), kit.WithNATSURL("nats://127.0.0.1:"+itoa(dead)))
	_, err := s.async.Create(callCtx(t), &pb.CreateRequest{Context: taskContext(t, "e", 1, nil)})
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "create idempotency store unavailable") {
		t.Fatalf("got %v, want UNAVAILABLE", err)
	}
	if p.creates.Load() != 0 {
		t.Fatal("Create ran without the store")
	}
}

func TestDrainWaitsForCallsInFlight(t *testing.T) {
	n := testenv.StartNATS(t)
	p := newTestPlugin()
	s := startSidecar(t, p.plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-test-drain"))
	select {
	case <-s.server.Announced():
	case <-time.After(15 * time.Second):
		t.Fatal("no announcement")
	}
	ctx := callCtx(t)
	result, drained := drainWithCreateInFlight(t, ctx, s, p, "blocked")
	_, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "other", 1, nil)})
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "draining" {
		t.Fatalf("new call while draining: %v", err)
	}
	_, js := n.Connect(t)
	kv, err := js.KeyValue(ctx, "pb_plugins")
	if err != nil {
		t.Fatal(err)
	}
	// The drain turns NOT_SERVING before it stores the draining announcement: wait for it rather than read once.
	testenv.Eventually(t, 10*time.Second, "the announcement says draining", func() bool {
		entry, err := kv.Get(ctx, "kit-test.kit-test-drain")
		if err != nil {
			t.Fatalf("announcement while draining: %v", err)
		}
		a := &pb.PluginAnnouncement{}
		if err := proto.Unmarshal(entry.Value(), a); err != nil {
			t.Fatal(err)
		}
		return a.GetInstance().GetDraining()
	})
	close(p.release)
	if err := <-result; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatal("drain did not finish")
	}
	if _, err := kv.Get(ctx, "kit-test.kit-test-drain"); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Fatalf("announcement still there after drain: %v", err)
	}
}

func TestSyncPluginMustFinish(t *testing.T) {
	plugin := &kit.Sync[script]{
		Name: "sync-test", Version: "1", TaskTypes: []kit.TaskType{{Type: "sync-test", Version: 1}},
		Do: func(ctx context.Context, task *kit.Task[script]) (kit.Result, error) {
			if task.Spec.GetPolls() > 0 {
				return kit.Running("not done"), nil
			}
			return kit.PermanentFailure("Nope", "no", pb.ErrorKind_ERROR_KIND_USER), nil
		},
	}
	s := startSidecar(t, plugin, kit.WithoutNATS())
	client := pb.NewSyncPluginServiceClient(s.conn)
	ctx := callCtx(t)
	r, err := client.Do(ctx, &pb.DoRequest{Context: taskContext(t, "s", 1, nil)})
	if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_PERMANENT_FAILURE || r.GetPhaseInfo().GetError().GetCode() != "Nope" {
		t.Fatalf("do: %v %v", r, err)
	}
	_, err = client.Do(ctx, &pb.DoRequest{Context: taskContext(t, "s", 1, map[string]any{"polls": 1})})
	if status.Code(err) != codes.Internal {
		t.Fatalf("non-terminal do: %v", err)
	}
	h, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "pluginbridge.v1.SyncPluginService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("sync health: %v %v", h, err)
	}
}

func TestDeclarationChecks(t *testing.T) {
	for _, bad := range []kit.Plugin{
		&kit.Sync[script]{Name: "bad name", Version: "1", TaskTypes: []kit.TaskType{{Type: "x"}}, Do: func(context.Context, *kit.Task[script]) (kit.Result, error) { return kit.Result{}, nil }},
		&kit.Sync[script]{Name: "ok", Version: "1", TaskTypes: []kit.TaskType{{Type: "x"}}},
		&kit.Async[script, string]{Name: "ok", Version: "1"},
	} {
		if _, err := kit.Start(context.Background(), bad, kit.WithoutNATS(), kit.WithEndpoint("127.0.0.1:0")); err == nil {
			t.Errorf("%T started", bad)
		}
	}
	if _, err := kit.Start(context.Background(), newTestPlugin().plugin(), kit.WithoutNATS(), kit.WithInstanceID("a.b")); err == nil {
		t.Error("a bad instance id was accepted")
	}
}

func TestTCPEndpoint(t *testing.T) {
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS(), kit.WithEndpoint(":0"))
	if !strings.HasPrefix(s.server.Endpoint(), "127.0.0.1:") || strings.HasSuffix(s.server.Endpoint(), ":0") {
		t.Fatalf("endpoint %q", s.server.Endpoint())
	}
	if _, err := s.meta.Describe(callCtx(t), &pb.DescribeRequest{}); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDescribeVersionRangesAndDefault(t *testing.T) {
	plugin := newTestPlugin().plugin()
	plugin.TaskTypes = []kit.TaskType{kit.TaskType{Type: "kit-test", Version: 3}.AcceptingFrom(1), {Type: "other", Version: 0}}
	plugin.DefaultForUnclaimedTypes = true
	s := startSidecar(t, plugin, kit.WithoutNATS())
	response, err := s.meta.Describe(callCtx(t), &pb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d := response.GetPlugin()
	types := d.GetTaskTypes()
	if !d.GetDefaultForUnclaimedTypes() || len(types) != 2 || types[0].MinVersion == nil || types[0].GetMinVersion() != 1 || types[1].MinVersion != nil {
		t.Fatalf("descriptor %v", d)
	}

	bad := newTestPlugin().plugin()
	bad.TaskTypes = []kit.TaskType{kit.TaskType{Type: "kit-test", Version: 1}.AcceptingFrom(2)}
	if _, err := kit.Start(context.Background(), bad, kit.WithoutNATS(), kit.WithSignals(false)); err == nil ||
		!strings.Contains(err.Error(), "has MinVersion 2, not 0…1") {
		t.Fatalf("a range past its version: %v", err)
	}
}

func TestDescribeRateLimitsAndQuota(t *testing.T) {
	plugin := newTestPlugin().plugin()
	plugin.Properties.ReadLimit = &kit.RateLimit{QPS: 5}
	plugin.Properties.WriteLimit = &kit.RateLimit{QPS: 0.5, Burst: 3}
	plugin.Properties.Quota = &kit.ResourceQuota{Total: 4, PerNamespace: 1}
	s := startSidecar(t, plugin, kit.WithoutNATS())
	response, err := s.meta.Describe(callCtx(t), &pb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := response.GetPlugin().GetProperties()
	if p.GetReadLimit().GetQps() != 5 || p.GetReadLimit().GetBurst() != 0 || p.GetWriteLimit().GetQps() != 0.5 || p.GetWriteLimit().GetBurst() != 3 ||
		p.GetQuota().GetTotal() != 4 || p.GetQuota().GetPerNamespace() != 1 {
		t.Fatalf("properties %v", p)
	}
	bad := newTestPlugin().plugin()
	bad.Properties.WriteLimit = &kit.RateLimit{}
	if _, err := kit.Start(context.Background(), bad, kit.WithoutNATS(), kit.WithSignals(false)); err == nil ||
		!strings.Contains(err.Error(), "a RateLimit needs a finite QPS > 0") {
		t.Fatalf("a zero rate: %v", err)
	}
}

// drainWithCreateInFlight starts a Create that blocks in the plugin until p.release is closed, then a drain, and
// returns once health says NOT_SERVING: the Create's answer and the drain's end come on the channels.
func drainWithCreateInFlight(t *testing.T, ctx context.Context, s *sidecar, p *testPlugin, execution string) (<-chan error, <-chan struct{}) {
	t.Helper()
	created := make(chan error, 1)
	go func() {
		_, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, execution, 1, map[string]any{"message": "block"})})
		created <- err
	}()
	select {
	case <-p.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("Create never started")
	}
	drained := make(chan struct{})
	go func() { s.server.Drain(); close(drained) }()
	testenv.Eventually(t, 10*time.Second, "health turns NOT_SERVING", func() bool {
		r, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	return created, drained
}
