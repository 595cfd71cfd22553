package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func randomHex(t *testing.T, bytes int) string {
	t.Helper()
	b := make([]byte, bytes)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// stopAndWait sends SIGTERM and waits for the sidecar to drain and exit 0: by then it has flushed its spans.
func stopAndWait(t *testing.T, p *testenv.Process) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, exited := p.Wait(30 * time.Second); !exited || code != 0 {
		t.Fatalf("sidecar exit: code %d, exited %v", code, exited)
	}
}

// The conformance sidecar, pointed at an OTLP receiver, exports a SERVER span per plugin call (none for Describe
// and health), each the child of the span the call's traceparent names, and flushes them when it drains.
func TestSidecarExportsServerSpans(t *testing.T) {
	n := testenv.StartNATS(t)
	receiver := testenv.StartOTLPReceiver(t)
	p, c := startConformance(t, n.URL, "conf-traced", filepath.Join(t.TempDir(), "audit"),
		"OTEL_EXPORTER_OTLP_ENDPOINT="+receiver.Endpoint, "OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_SERVICE_NAME=", "OTEL_SDK_DISABLED=", "OTEL_TRACES_EXPORTER=")
	traceID := randomHex(t, 16)
	parents := map[string]string{"create": randomHex(t, 8), "get": randomHex(t, 8), "fail": randomHex(t, 8)}
	// Each call has its own parent, as the host's client span of it.
	fromHost := func(ctx context.Context, which string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-"+parents[which]+"-01")
	}
	ctx := callCtx(t)
	if _, err := c.meta.Describe(ctx, &pb.DescribeRequest{}); err != nil {
		t.Fatal(err)
	}
	script := map[string]any{"polls": 1}
	if _, err := c.async.Create(fromHost(ctx, "create"),
		&pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-traced", 2, script)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.async.Get(fromHost(ctx, "get"),
		&pb.GetRequest{Context: taskContext(t, "conformance-go", "exec-traced", 2, script), ResourceMeta: []byte(`{}`)})
	if err != nil || got.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING {
		t.Fatalf("get: %v %v", got, err)
	}
	_, err = c.async.Create(fromHost(ctx, "fail"),
		&pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-failing", 1, map[string]any{"create": "BEHAVIOR_USER_ERROR", "message": "no such bucket"})})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("failing create: %v", err)
	}
	stopAndWait(t, p)

	spans := receiver.Spans()
	byParent := map[string]testenv.ReceivedSpan{}
	for _, span := range spans {
		byParent[span.ParentSpanID()] = span
	}
	if len(spans) != 3 || len(byParent) != 3 {
		t.Fatalf("%d spans exported, want one per plugin call (Create, Get, Create) and none for Describe or health", len(spans))
	}
	want := map[string]struct {
		name, method, execution string
		attempt                 int64
		code                    int64
	}{
		"create": {"pluginbridge.v1.AsyncPluginService/Create", "Create", "exec-traced", 2, 0},
		"get":    {"pluginbridge.v1.AsyncPluginService/Get", "Get", "exec-traced", 2, 0},
		"fail":   {"pluginbridge.v1.AsyncPluginService/Create", "Create", "exec-failing", 1, 3},
	}
	for which, w := range want {
		span, ok := byParent[parents[which]]
		if !ok {
			t.Errorf("%s: no span with the parent %s", which, parents[which])
			continue
		}
		if span.GetName() != w.name || span.GetKind() != tracepb.Span_SPAN_KIND_SERVER || span.TraceID() != traceID ||
			span.Service != "conformance-go" || span.Scope != "plugin-bridge-kit" {
			t.Errorf("%s: %s kind %v trace %s service %q scope %q", which, span.GetName(), span.GetKind(), span.TraceID(), span.Service, span.Scope)
		}
		attributes := map[string]any{
			"rpc.system": "grpc", "rpc.service": "pluginbridge.v1.AsyncPluginService", "rpc.method": w.method,
			"rpc.grpc.status_code": w.code, "pluginbridge.plugin": "conformance-go", "pluginbridge.instance_id": "conf-traced",
			"pluginbridge.execution_id": w.execution, "pluginbridge.attempt": w.attempt,
		}
		for key, value := range attributes {
			if got := span.Attribute(key); got != value {
				t.Errorf("%s: %s = %v (%T), want %v", which, key, got, got, value)
			}
		}
		if version, ok := span.Attribute("pluginbridge.plugin_version").(string); !ok || version == "" {
			t.Errorf("%s: pluginbridge.plugin_version %v", which, span.Attribute("pluginbridge.plugin_version"))
		}
	}
	if phase := byParent[parents["get"]].Attribute("pluginbridge.phase"); phase != "PHASE_RUNNING" {
		t.Errorf("get: pluginbridge.phase %v", phase)
	}
	if phase := byParent[parents["create"]].Attribute("pluginbridge.phase"); phase != nil {
		t.Errorf("create: pluginbridge.phase %v", phase)
	}
	fail := byParent[parents["fail"]]
	if fail.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || fail.GetStatus().GetMessage() != "no such bucket" {
		t.Errorf("failing create: status %v", fail.GetStatus())
	}
	if create := byParent[parents["create"]]; create.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("create: status %v", create.GetStatus())
	}
}

// With an endpoint but tracing turned off by OTEL_SDK_DISABLED or another exporter, nothing is exported.
func TestSidecarExportsNothingWhenTracingIsOff(t *testing.T) {
	n := testenv.StartNATS(t)
	receiver := testenv.StartOTLPReceiver(t)
	for i, off := range []string{"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none"} {
		p, c := startConformance(t, n.URL, "conf-untraced-"+itoa(i), filepath.Join(t.TempDir(), "audit"),
			"OTEL_EXPORTER_OTLP_ENDPOINT="+receiver.Endpoint, "OTEL_EXPORTER_OTLP_INSECURE=true", off)
		ctx := metadata.AppendToOutgoingContext(callCtx(t), "traceparent", "00-"+randomHex(t, 16)+"-"+randomHex(t, 8)+"-01")
		if _, err := c.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "conformance-go", "exec-untraced-"+itoa(i), 1, nil)}); err != nil {
			t.Fatal(err)
		}
		stopAndWait(t, p)
		if receiver.Exports() != 0 {
			t.Fatalf("%s: %d exports received", off, receiver.Exports())
		}
	}
}
