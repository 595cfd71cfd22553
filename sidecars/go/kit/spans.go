package kit

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The attributes of a plugin call's span, as the tracing contract names them for every kit and the host: the
// RPC ones are those of the gRPC semantic conventions before rpc.system.name, which the host's spans use too.
const (
	attrRPCSystem     = attribute.Key("rpc.system")
	attrRPCService    = attribute.Key("rpc.service")
	attrRPCMethod     = attribute.Key("rpc.method")
	attrRPCStatusCode = attribute.Key("rpc.grpc.status_code")
	attrPlugin        = attribute.Key("pluginbridge.plugin")
	attrPluginVersion = attribute.Key("pluginbridge.plugin_version")
	attrInstanceID    = attribute.Key("pluginbridge.instance_id")
	attrExecutionID   = attribute.Key("pluginbridge.execution_id")
	attrAttempt       = attribute.Key("pluginbridge.attempt")
	attrPhase         = attribute.Key("pluginbridge.phase")
)

// startCall starts the SERVER span of one plugin call, named after its full method
// ("pluginbridge.v1.AsyncPluginService/Create"), as a child of the trace context in the call's metadata, and
// returns the context that carries it to the plugin's method. Attributes are only computed for a span that
// records, so without tracing a call costs the no-op API only.
func (t *tracing) startCall(ctx context.Context, fullMethod string, req any) (context.Context, trace.Span) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = t.propagator.Extract(ctx, metadataCarrier(md))
	}
	name := strings.TrimPrefix(fullMethod, "/")
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return ctx, span
	}
	service, method, _ := strings.Cut(name, "/")
	var task *pb.TaskContext
	if r, ok := req.(interface{ GetContext() *pb.TaskContext }); ok {
		task = r.GetContext()
	}
	span.SetAttributes(
		attrRPCSystem.String("grpc"),
		attrRPCService.String(service),
		attrRPCMethod.String(method),
		attrPlugin.String(t.plugin),
		attrPluginVersion.String(t.version),
		attrInstanceID.String(t.instance),
	)
	// A request without an execution id is refused, traced without one.
	if execution := task.GetExecutionId(); execution != nil {
		span.SetAttributes(attrExecutionID.String(execution.GetId()), attrAttempt.Int(int(execution.GetAttempt())))
	}
	return ctx, span
}

// endCall ends a call's span with what the kit answers: the gRPC code, the phase of an answer that carries one
// (Get, Do, Handle), and for an error the status ERROR with the answer's message.
func endCall(span trace.Span, resp any, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	answer := status.Convert(err)
	span.SetAttributes(attrRPCStatusCode.Int(int(answer.Code())))
	if err != nil {
		span.SetStatus(otelcodes.Error, answer.Message())
		return
	}
	if phased, ok := resp.(interface{ GetPhaseInfo() *pb.PhaseInfo }); ok && phased.GetPhaseInfo() != nil {
		span.SetAttributes(attrPhase.String(phased.GetPhaseInfo().GetPhase().String()))
	}
}

// recordPanic adds the exception event of a plugin method's panic to the span of the call it ran for. It is
// called from the deferred recover, where the stack still shows where the panic happened.
func recordPanic(ctx context.Context, value any) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
		semconv.ExceptionType(fmt.Sprintf("%T", value)),
		semconv.ExceptionMessage(fmt.Sprint(value)),
		semconv.ExceptionStacktrace(string(debug.Stack())),
	))
}

// metadataCarrier lets a propagator read a call's incoming gRPC metadata, whose keys are lowercase, as the
// tracing contract sends traceparent, tracestate and baggage.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	values := metadata.MD(c).Get(key)
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for key := range c {
		keys = append(keys, key)
	}
	return keys
}
