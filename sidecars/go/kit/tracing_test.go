package kit

import (
	"context"
	"testing"

	conformancev1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/conformance/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestExportRequested(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "console"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "false"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, false},
	} {
		if got := exportRequested(func(key string) string { return c.env[key] }); got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
}

// The kit tells the API's defaults from what an application installed, a no-op provider included.
func TestSetByApplication(t *testing.T) {
	if setByApplication(otel.GetTracerProvider()) || setByApplication(otel.GetTextMapPropagator()) {
		t.Fatalf("the API's defaults (%T, %T) taken for the application's", otel.GetTracerProvider(), otel.GetTextMapPropagator())
	}
	for _, installed := range []any{sdktrace.NewTracerProvider(), noop.NewTracerProvider(), propagation.TraceContext{},
		propagation.NewCompositeTextMapPropagator()} {
		if !setByApplication(installed) {
			t.Errorf("%T not taken for the application's", installed)
		}
	}
}

// Without an endpoint the kit installs nothing and its spans are the API's no-ops.
func TestNoTracingWithoutConfiguration(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	plugin := &Sync[*conformancev1.Script]{Name: "quiet", Version: "1", TaskTypes: []TaskType{{Type: "quiet"}},
		Do: func(context.Context, *Task[*conformancev1.Script]) (Result, error) { return Success(nil), nil }}
	s, err := Start(context.Background(), plugin, WithoutNATS(), WithSignals(false), WithEndpoint("unix:"+t.TempDir()+"/q.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.tracing.installed != nil || setByApplication(otel.GetTracerProvider()) || setByApplication(otel.GetTextMapPropagator()) {
		t.Fatalf("installed %v; global provider %T, propagator %T", s.tracing.installed, otel.GetTracerProvider(), otel.GetTextMapPropagator())
	}
	if _, span := s.tracing.startCall(context.Background(), "/pluginbridge.v1.SyncPluginService/Do", nil); span.IsRecording() {
		t.Fatal("a call's span records without tracing")
	}
}
