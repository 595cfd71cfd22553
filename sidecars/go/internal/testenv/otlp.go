package testenv

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// OTLPReceiver is an OTLP/gRPC trace collector on a loopback port that keeps every span it receives, so a test
// can point a sidecar's exporter at it and read what arrived.
type OTLPReceiver struct {
	// Endpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:<port>".
	Endpoint string

	collectortrace.UnimplementedTraceServiceServer
	mu      sync.Mutex
	spans   []ReceivedSpan
	exports int
}

// ReceivedSpan is one span as exported, with the service.name of its resource and its instrumentation scope.
type ReceivedSpan struct {
	Service string
	Scope   string
	*tracepb.Span
}

// StartOTLPReceiver serves the OTLP trace service on 127.0.0.1 until the end of the test.
func StartOTLPReceiver(t testing.TB) *OTLPReceiver {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &OTLPReceiver{Endpoint: "http://" + listener.Addr().String()}
	server := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(server, r)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return r
}

// Export keeps the request's spans before it answers, so an exporter that has flushed has been recorded.
func (r *OTLPReceiver) Export(_ context.Context, request *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports++
	for _, resourceSpans := range request.GetResourceSpans() {
		service := ""
		if value := attributeOf(resourceSpans.GetResource().GetAttributes(), "service.name"); value != nil {
			service = value.GetStringValue()
		}
		for _, scopeSpans := range resourceSpans.GetScopeSpans() {
			for _, span := range scopeSpans.GetSpans() {
				r.spans = append(r.spans, ReceivedSpan{Service: service, Scope: scopeSpans.GetScope().GetName(), Span: span})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Spans returns the spans received so far.
func (r *OTLPReceiver) Spans() []ReceivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReceivedSpan(nil), r.spans...)
}

// Exports counts the export requests received so far, empty ones included.
func (r *OTLPReceiver) Exports() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exports
}

// Attribute returns the value of the span's attribute key as a string, int64, bool or float64; nil if absent.
func (s ReceivedSpan) Attribute(key string) any {
	value := attributeOf(s.GetAttributes(), key)
	switch v := value.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return v.StringValue
	case *commonpb.AnyValue_IntValue:
		return v.IntValue
	case *commonpb.AnyValue_BoolValue:
		return v.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return v.DoubleValue
	}
	return nil
}

// TraceID and SpanID and ParentSpanID are the span's ids in hex, as a traceparent writes them ("" for no parent).
func (s ReceivedSpan) TraceID() string      { return hex.EncodeToString(s.GetTraceId()) }
func (s ReceivedSpan) SpanID() string       { return hex.EncodeToString(s.GetSpanId()) }
func (s ReceivedSpan) ParentSpanID() string { return hex.EncodeToString(s.GetParentSpanId()) }

func attributeOf(attributes []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, attribute := range attributes {
		if attribute.GetKey() == key {
			return attribute.GetValue()
		}
	}
	return nil
}
