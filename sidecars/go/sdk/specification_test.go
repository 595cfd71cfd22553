package sdk

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1/pluginbridgev1connect"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeRegistry answers ListPlugins with fixed instances and counts the calls. The process tests run the
// real host; this covers what its example plugins cannot show: draining instances, no specification, a
// specification that does not resolve.
type fakeRegistry struct {
	pluginbridgev1connect.UnimplementedPluginRegistryServiceHandler
	instances []*pb.PluginInstance
	calls     atomic.Int32
}

func (f *fakeRegistry) ListPlugins(context.Context, *connect.Request[pb.ListPluginsRequest]) (*connect.Response[pb.ListPluginsResponse], error) {
	f.calls.Add(1)
	return connect.NewResponse(&pb.ListPluginsResponse{Plugins: []*pb.Plugin{{Name: "p", Instances: f.instances}}}), nil
}

func instance(id string, draining bool, spec *pb.PluginSpecification, types ...*pb.SupportedTaskType) *pb.PluginInstance {
	return &pb.PluginInstance{InstanceId: id, Draining: draining, Descriptor_: &pb.PluginDescriptor{
		Name: "p", Version: "1.0.0", TaskTypes: types, Specification: spec,
	}}
}

func batchSpec() *pb.PluginSpecification {
	return &pb.PluginSpecification{
		FileDescriptorSet: &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
			protodesc.ToFileDescriptorProto(durationpb.File_google_protobuf_duration_proto),
			protodesc.ToFileDescriptorProto(batchv1.File_pluginbridge_plugins_batch_v1_batch_proto),
		}},
		MessageName: "pluginbridge.plugins.batch.v1.BatchJob",
	}
}

func startFake(t *testing.T, registry *fakeRegistry, options ...Option) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pluginbridgev1connect.NewPluginRegistryServiceHandler(registry))
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	return New(server.URL, append([]Option{WithProtocol(ProtocolConnect), WithHTTPClient(server.Client())}, options...)...)
}

func TestSpecificationLookupAndErrors(t *testing.T) {
	registry := &fakeRegistry{instances: []*pb.PluginInstance{
		instance("old", true, batchSpec(), &pb.SupportedTaskType{Type: "job", Version: 1}),
		instance("bad", false, &pb.PluginSpecification{FileDescriptorSet: &descriptorpb.FileDescriptorSet{}, MessageName: "nope.Missing"},
			&pb.SupportedTaskType{Type: "broken", Version: 1}),
		instance("new", false, batchSpec(), &pb.SupportedTaskType{Type: "job", Version: 3}, &pb.SupportedTaskType{Type: "job", Version: 2}),
		instance("free", false, nil, &pb.SupportedTaskType{Type: "free", Version: 1}),
		instance("gone", true, nil, &pb.SupportedTaskType{Type: "leaving", Version: 1}),
	}}
	client := startFake(t, registry)
	ctx := context.Background()

	schema, err := client.Schema(ctx, "job", 2)
	if err != nil || schema.Message.FullName() != "pluginbridge.plugins.batch.v1.BatchJob" || schema.Plugin != "p" || schema.PluginVersion != "1.0.0" {
		t.Fatalf("job v2: %v %v", schema, err)
	}
	for _, c := range []struct {
		taskType string
		version  int32
		code     connect.Code
		message  string
	}{
		{"job", 1, connect.CodeNotFound, `task type "job" has no live plugin for type_version 1 (live type_versions: 2, 3)`},
		{"nothing", 1, connect.CodeNotFound, `no live plugin serves task type "nothing"`},
		{"leaving", 1, connect.CodeNotFound, `task type "leaving" has no live plugin for type_version 1 (every instance serving it is draining)`},
		{"broken", 1, connect.CodeFailedPrecondition, `the plugin for "broken" declares an unusable specification: message nope.Missing is not in its file set`},
	} {
		_, err := client.Schema(ctx, c.taskType, c.version)
		if connect.CodeOf(err) != c.code || err.(*connect.Error).Message() != c.message {
			t.Errorf("%s v%d: %v, want %v %q", c.taskType, c.version, err, c.code, c.message)
		}
	}

	// Without a specification, any custom passes and the schema says so.
	free := &pb.TaskTemplate{Type: "free", TypeVersion: 1, Custom: mustStruct(t, map[string]any{"anything": 1})}
	if err := client.Validate(ctx, free); err != nil {
		t.Fatal(err)
	}
	if schema, err := client.Schema(ctx, "free", 1); err != nil || schema.Message != nil || !strings.Contains(schema.String(), "no specification") {
		t.Fatalf("free: %v %v", schema, err)
	}

	bad := &pb.TaskTemplate{Type: "job", TypeVersion: 3, Custom: mustStruct(t, map[string]any{"command": "x", "timeout": "soon"})}
	err = client.Validate(ctx, bad)
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.HasPrefix(err.(*connect.Error).Message(),
		`template.custom.timeout: invalid google.protobuf.Duration value "soon" (template.custom must parse as pluginbridge.plugins.batch.v1.BatchJob)`) {
		t.Fatalf("bad custom: %v", err)
	}
	for _, template := range []*pb.TaskTemplate{nil, {TypeVersion: 1}} {
		if err := client.Validate(ctx, template); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("template %v: %v", template, err)
		}
	}
}

func TestSpecificationCache(t *testing.T) {
	registry := &fakeRegistry{instances: []*pb.PluginInstance{instance("a", false, batchSpec(), &pb.SupportedTaskType{Type: "job", Version: 1})}}
	ctx := context.Background()
	template := &pb.TaskTemplate{Type: "job", TypeVersion: 1, Custom: mustStruct(t, map[string]any{"command": "true"})}

	cached := startFake(t, registry, WithSpecificationTTL(time.Hour))
	for range 3 {
		if err := cached.Validate(ctx, template); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cached.Schema(ctx, "job", 1); err != nil {
		t.Fatal(err)
	}
	if registry.calls.Load() != 1 {
		t.Fatalf("%d registry calls with a cache, want 1", registry.calls.Load())
	}

	// Errors are not kept: the plugin may announce itself a moment later.
	if _, err := cached.Schema(ctx, "job", 9); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatal(err)
	}
	if _, err := cached.Schema(ctx, "job", 9); connect.CodeOf(err) != connect.CodeNotFound || registry.calls.Load() != 3 {
		t.Fatalf("%v after %d calls", err, registry.calls.Load())
	}

	registry.calls.Store(0)
	uncached := startFake(t, registry, WithSpecificationTTL(0))
	for range 2 {
		if err := uncached.Validate(ctx, template); err != nil {
			t.Fatal(err)
		}
	}
	if registry.calls.Load() != 2 {
		t.Fatalf("%d registry calls without a cache, want 2", registry.calls.Load())
	}

	registry.calls.Store(0)
	short := startFake(t, registry, WithSpecificationTTL(50*time.Millisecond))
	_ = short.Validate(ctx, template)
	time.Sleep(100 * time.Millisecond)
	_ = short.Validate(ctx, template)
	if registry.calls.Load() != 2 {
		t.Fatalf("%d registry calls across an expiry, want 2", registry.calls.Load())
	}
}

// WithValidation stops a bad custom before the TaskService is called; without it nothing changes.
func TestSubmitWithValidation(t *testing.T) {
	registry := &fakeRegistry{instances: []*pb.PluginInstance{instance("a", false, batchSpec(), &pb.SupportedTaskType{Type: "job", Version: 1})}}
	var creates atomic.Int32
	mux := http.NewServeMux()
	mux.Handle(pluginbridgev1connect.NewPluginRegistryServiceHandler(registry))
	mux.Handle(pluginbridgev1connect.NewTaskServiceHandler(&countingTasks{creates: &creates}))
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	client := New(server.URL, WithProtocol(ProtocolConnect), WithHTTPClient(server.Client()))
	ctx := context.Background()
	bad := &pb.TaskTemplate{Type: "job", TypeVersion: 1, Custom: mustStruct(t, map[string]any{"command": "x", "env": map[string]any{"A": 1}})}

	if _, err := client.Submit(ctx, bad, WithValidation()); connect.CodeOf(err) != connect.CodeInvalidArgument ||
		!strings.HasPrefix(err.(*connect.Error).Message(), "template.custom.env: ") {
		t.Fatalf("submit: %v", err)
	}
	if _, err := client.Run(ctx, bad, WithValidation()); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("run: %v", err)
	}
	if creates.Load() != 0 {
		t.Fatalf("%d task calls reached the host", creates.Load())
	}
	if _, err := client.Submit(ctx, bad); err != nil || creates.Load() != 1 {
		t.Fatalf("without validation the template is sent as before: %v, %d calls", err, creates.Load())
	}
}

type countingTasks struct {
	pluginbridgev1connect.UnimplementedTaskServiceHandler
	creates *atomic.Int32
}

func (c *countingTasks) CreateTask(context.Context, *connect.Request[pb.CreateTaskRequest]) (*connect.Response[pb.CreateTaskResponse], error) {
	c.creates.Add(1)
	return connect.NewResponse(&pb.CreateTaskResponse{Execution: &pb.TaskExecution{Id: "e"}}), nil
}

func (c *countingTasks) ExecuteTask(context.Context, *connect.Request[pb.ExecuteTaskRequest], *connect.ServerStream[pb.ExecuteTaskResponse]) error {
	c.creates.Add(1)
	return nil
}
