package sdk

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1/pluginbridgev1connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// headerRecorder is a TaskService that keeps the headers of the GetTask and WatchTask calls it receives.
type headerRecorder struct {
	pluginbridgev1connect.UnimplementedTaskServiceHandler
	mu      sync.Mutex
	headers map[string]http.Header
}

func (h *headerRecorder) keep(procedure string, header http.Header) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.headers[procedure] = header.Clone()
}

func (h *headerRecorder) last(procedure string) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.headers[procedure]
}

func (h *headerRecorder) GetTask(_ context.Context, req *connect.Request[pb.GetTaskRequest]) (*connect.Response[pb.GetTaskResponse], error) {
	h.keep("get", req.Header())
	return connect.NewResponse(&pb.GetTaskResponse{Execution: &pb.TaskExecution{Id: req.Msg.GetId()}}), nil
}

func (h *headerRecorder) WatchTask(_ context.Context, req *connect.Request[pb.WatchTaskRequest], _ *connect.ServerStream[pb.WatchTaskResponse]) error {
	h.keep("watch", req.Header())
	return nil
}

// startRecorder serves the recorder over gRPC on h2c, as the host's public port does, and returns a client of
// it made with options.
func startRecorder(t *testing.T, options ...Option) (*Client, *headerRecorder) {
	recorder := &headerRecorder{headers: map[string]http.Header{}}
	mux := http.NewServeMux()
	mux.Handle(pluginbridgev1connect.NewTaskServiceHandler(recorder))
	server := httptest.NewUnstartedServer(mux)
	server.Config.Protocols = new(http.Protocols)
	server.Config.Protocols.SetUnencryptedHTTP2(true)
	server.Start()
	t.Cleanup(server.Close)
	return New(server.URL, options...), recorder
}

// calls makes a unary call and a streaming one with ctx.
func calls(t *testing.T, client *Client, ctx context.Context) {
	t.Helper()
	if _, err := client.Get(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	for _, err := range client.Watch(ctx, "e", 0) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Without OpenTelemetry configured by the application the SDK adds no trace headers; once it is, every call
// carries the active span's context and the baggage.
func TestCallsCarryTheApplicationsTraceContext(t *testing.T) {
	client, recorder := startRecorder(t)
	calls(t, client, context.Background())
	for _, procedure := range []string{"get", "watch"} {
		if header := recorder.last(procedure); header.Get("traceparent") != "" || header.Get("baggage") != "" {
			t.Fatalf("%s without OpenTelemetry: traceparent %q, baggage %q", procedure, header.Get("traceparent"), header.Get("baggage"))
		}
	}

	// Set up as an application would, and put back as no-ops afterwards (the API's defaults would keep
	// delegating to these).
	provider := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() {
		_ = provider.Shutdown(context.Background())
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := otel.Tracer("app").Start(baggage.ContextWithBaggage(context.Background(), bag), "submit")
	defer span.End()
	calls(t, client, ctx)
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	for _, procedure := range []string{"get", "watch"} {
		if header := recorder.last(procedure); header.Get("traceparent") != want || header.Get("baggage") != "tenant=acme" {
			t.Errorf("%s: traceparent %q (want %q), baggage %q", procedure, header.Get("traceparent"), want, header.Get("baggage"))
		}
	}
}
