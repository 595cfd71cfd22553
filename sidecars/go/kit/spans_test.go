package kit_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The host's client span of a call, as its traceparent names it.
const (
	hostTraceID     = "0af7651916cd43dd8448eb211c80319c"
	hostSpanID      = "b7ad6b7169203331"
	hostTraceparent = "00-" + hostTraceID + "-" + hostSpanID + "-01"
)

func fromHost(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "traceparent", hostTraceparent)
}

// keepGlobals puts the global tracer provider and propagator back at the end of a test that changes them.
func keepGlobals(t *testing.T) {
	provider, propagator := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	// Only what changed: setting the API's default to itself logs an error. Propagators are compared by type,
	// since composite ones are slices, which == cannot compare.
	t.Cleanup(func() {
		if otel.GetTracerProvider() != provider {
			otel.SetTracerProvider(provider)
		}
		if reflect.TypeOf(otel.GetTextMapPropagator()) != reflect.TypeOf(propagator) {
			otel.SetTextMapPropagator(propagator)
		}
	})
}

// inMemoryProvider records every span synchronously as it ends: a call's span has ended before its answer
// leaves the sidecar, so it is there when the client has the answer.
func inMemoryProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exporter := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	return provider, exporter
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q among %d", len(found), name, len(spans))
	}
	return found[0]
}

func attributeOf(span tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range span.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// An application that installed its own provider keeps it (the kit installs nothing, even with an OTLP
// endpoint set), the kit's span of a call is the child of the host's, and the author's own span, made from the
// method's ctx, is the child of the kit's.
func TestServerSpansAndTheAuthorsSpans(t *testing.T) {
	keepGlobals(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
	provider, exporter := inMemoryProvider(t)
	otel.SetTracerProvider(provider)

	plugin := &kit.Async[script, string]{
		Name: "traced", Version: "2.0.0", TaskTypes: []kit.TaskType{{Type: "kit-test", Version: 1}},
		Create: func(ctx context.Context, task *kit.Task[script]) (string, error) {
			_, span := otel.Tracer("author").Start(ctx, "author work")
			span.End()
			return "m", nil
		},
		Get: func(ctx context.Context, task *kit.Task[script], m string) (kit.Result, error) {
			return kit.Running("working"), nil
		},
		Delete: func(context.Context, *kit.Task[script], string) error { return nil },
	}
	s := startSidecar(t, plugin, kit.WithoutNATS(), kit.WithInstanceID("traced-1"))
	if otel.GetTracerProvider() != trace.TracerProvider(provider) {
		t.Fatalf("the kit replaced the application's tracer provider with %T", otel.GetTracerProvider())
	}
	ctx := fromHost(callCtx(t))
	if _, err := s.meta.Describe(ctx, &pb.DescribeRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "exec-t", 2, nil)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "exec-t", 2, nil), ResourceMeta: []byte(`"m"`)}); err != nil {
		t.Fatal(err)
	}

	spans := exporter.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("spans %v, want Create, the author's and Get (no Describe, no health)", names(spans))
	}
	create := spanNamed(t, spans, "pluginbridge.v1.AsyncPluginService/Create")
	author := spanNamed(t, spans, "author work")
	get := spanNamed(t, spans, "pluginbridge.v1.AsyncPluginService/Get")
	for _, server := range []tracetest.SpanStub{create, get} {
		if server.SpanKind != trace.SpanKindServer || server.InstrumentationScope.Name != "plugin-bridge-kit" ||
			server.Parent.TraceID().String() != hostTraceID || server.Parent.SpanID().String() != hostSpanID || !server.Parent.IsRemote() {
			t.Errorf("%s: kind %v, scope %q, parent %v", server.Name, server.SpanKind, server.InstrumentationScope.Name, server.Parent)
		}
		want := map[string]attribute.Value{
			"rpc.system": attribute.StringValue("grpc"), "rpc.service": attribute.StringValue("pluginbridge.v1.AsyncPluginService"),
			"rpc.grpc.status_code": attribute.IntValue(0), "pluginbridge.plugin": attribute.StringValue("traced"),
			"pluginbridge.plugin_version": attribute.StringValue("2.0.0"), "pluginbridge.instance_id": attribute.StringValue("traced-1"),
			"pluginbridge.execution_id": attribute.StringValue("exec-t"), "pluginbridge.attempt": attribute.IntValue(2),
		}
		for key, value := range want {
			if got := attributeOf(server, key); got != value {
				t.Errorf("%s: %s = %v, want %v", server.Name, key, got.Emit(), value.Emit())
			}
		}
		if server.Status.Code != otelcodes.Unset {
			t.Errorf("%s: status %v", server.Name, server.Status)
		}
	}
	if attributeOf(create, "rpc.method").AsString() != "Create" || attributeOf(get, "rpc.method").AsString() != "Get" {
		t.Errorf("rpc.method: %q, %q", attributeOf(create, "rpc.method").AsString(), attributeOf(get, "rpc.method").AsString())
	}
	if got := attributeOf(get, "pluginbridge.phase").AsString(); got != "PHASE_RUNNING" {
		t.Errorf("Get's phase %q", got)
	}
	if attributeOf(create, "pluginbridge.phase").Type() != attribute.INVALID {
		t.Errorf("Create has a phase: %v", attributeOf(create, "pluginbridge.phase").Emit())
	}
	if author.Parent.SpanID() != create.SpanContext.SpanID() || author.SpanContext.TraceID().String() != hostTraceID {
		t.Errorf("the author's span has the parent %v, want the kit's Create span %v", author.Parent, create.SpanContext)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// Errors, panics and refusals end their span with status ERROR, the code and the message the kit answers; a
// call without a traceparent starts a new trace; a sync Do carries its phase.
func TestCallSpansOfFailuresAndRefusals(t *testing.T) {
	keepGlobals(t) // the kit sets the W3C propagator globally when the application has none
	provider, exporter := inMemoryProvider(t)
	p := newTestPlugin()
	s := startSidecar(t, p.plugin(), kit.WithoutNATS(), kit.WithTracerProvider(provider))
	ctx := callCtx(t)
	lastSpan := func() tracetest.SpanStub {
		spans := exporter.GetSpans()
		if len(spans) == 0 {
			t.Fatal("no span")
		}
		return spans[len(spans)-1]
	}
	expectError := func(what string, err error, code codes.Code, message string) tracetest.SpanStub {
		t.Helper()
		span := lastSpan()
		if status.Code(err) != code || span.Status.Code != otelcodes.Error || span.Status.Description != message ||
			attributeOf(span, "rpc.grpc.status_code") != attribute.IntValue(int(code)) {
			t.Errorf("%s: answered %v; span status %v, code %v", what, err, span.Status, attributeOf(span, "rpc.grpc.status_code").Emit())
		}
		return span
	}

	_, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e-user", 1, map[string]any{"message": "user"})})
	user := expectError("user error", err, codes.InvalidArgument, "bad input 7")
	if user.Parent.IsValid() || len(user.Events) != 0 {
		t.Errorf("user error: parent %v (want a new root), events %v", user.Parent, user.Events)
	}

	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e-panic", 1, map[string]any{"message": "panic"})})
	crash := expectError("panic", err, codes.Internal, "panic: get exploded")
	if len(crash.Events) != 1 || crash.Events[0].Name != "exception" ||
		!slices.Contains(crash.Events[0].Attributes, attribute.String("exception.message", "get exploded")) {
		t.Errorf("panic: events %v, want one exception", crash.Events)
	}

	_, err = s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e-spec", 3, map[string]any{"nope": true})})
	spec := expectError("bad specification", err, codes.InvalidArgument,
		"template.custom.nope: unknown field (expected pluginbridge.conformance.v1.Script)")
	if attributeOf(spec, "pluginbridge.execution_id").AsString() != "e-spec" || attributeOf(spec, "pluginbridge.attempt").AsInt64() != 3 {
		t.Errorf("bad specification: attributes %v", spec.Attributes)
	}

	// A call refused while draining: hold the drain with a Create in flight.
	created, drained := drainWithCreateInFlight(t, ctx, s, p, "e-block")
	_, err = s.async.Delete(fromHost(ctx), &pb.DeleteRequest{Context: taskContext(t, "e-late", 1, nil)})
	refused := expectError("draining", err, codes.Unavailable, "draining")
	if refused.Name != "pluginbridge.v1.AsyncPluginService/Delete" || refused.Parent.SpanID().String() != hostSpanID {
		t.Errorf("draining: span %s with parent %v", refused.Name, refused.Parent)
	}
	close(p.release)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatal("drain did not finish")
	}
	create := lastSpan()
	if create.Name != "pluginbridge.v1.AsyncPluginService/Create" || create.Status.Code != otelcodes.Unset {
		t.Errorf("the Create in flight: %s %v", create.Name, create.Status)
	}
}

func TestSyncDoSpanCarriesThePhase(t *testing.T) {
	keepGlobals(t)
	provider, exporter := inMemoryProvider(t)
	plugin := &kit.Sync[script]{
		Name: "sync-traced", Version: "1", TaskTypes: []kit.TaskType{{Type: "kit-test", Version: 1}},
		Do: func(ctx context.Context, task *kit.Task[script]) (kit.Result, error) {
			return kit.Success(nil), nil
		},
	}
	s := startSidecar(t, plugin, kit.WithoutNATS(), kit.WithTracerProvider(provider))
	if _, err := pb.NewSyncPluginServiceClient(s.conn).Do(callCtx(t), &pb.DoRequest{Context: taskContext(t, "d", 1, nil)}); err != nil {
		t.Fatal(err)
	}
	do := spanNamed(t, exporter.GetSpans(), "pluginbridge.v1.SyncPluginService/Do")
	if attributeOf(do, "pluginbridge.phase").AsString() != "PHASE_SUCCESS" || attributeOf(do, "rpc.service").AsString() != "pluginbridge.v1.SyncPluginService" {
		t.Fatalf("Do span attributes %v", do.Attributes)
	}
}

// With an OTLP endpoint and no provider of the application's, the kit installs one for the process, exports
// the calls' spans with the plugin's resource, flushes them when it stops and then uninstalls it.
func TestKitInstallsAnExportingProvider(t *testing.T) {
	keepGlobals(t)
	receiver := testenv.StartOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.Endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS(), kit.WithInstanceID("kit-test-otlp"))
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Fatalf("global tracer provider %T, want the kit's", otel.GetTracerProvider())
	}
	if fields := otel.GetTextMapPropagator().Fields(); !slices.Contains(fields, "traceparent") || !slices.Contains(fields, "baggage") {
		t.Fatalf("global propagator fields %v, want W3C trace context and baggage", fields)
	}
	if _, err := s.async.Create(fromHost(callCtx(t)), &pb.CreateRequest{Context: taskContext(t, "e-otlp", 1, nil)}); err != nil {
		t.Fatal(err)
	}
	s.server.Drain()

	spans := receiver.Spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want the Create's", len(spans))
	}
	create := spans[0]
	if create.GetName() != "pluginbridge.v1.AsyncPluginService/Create" || create.Service != "kit-test" || create.Scope != "plugin-bridge-kit" ||
		create.TraceID() != hostTraceID || create.ParentSpanID() != hostSpanID {
		t.Fatalf("exported %s (service %q, scope %q, trace %s, parent %s)", create.GetName(), create.Service, create.Scope, create.TraceID(), create.ParentSpanID())
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Fatal("the kit's provider, shut down, is still installed")
	}
}
