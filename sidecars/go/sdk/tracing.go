package sdk

import (
	"context"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// traceInjector puts the trace context of each call's ctx (the application's active span, its baggage) into
// the request headers with the global propagator, so the host's span of the call is its child. The SDK is a
// library inside the application and never installs a provider or propagator: until the application
// configures OpenTelemetry, the global propagator is a no-op and nothing is added.
type traceInjector struct{}

func inject(ctx context.Context, header propagation.HeaderCarrier) {
	otel.GetTextMapPropagator().Inject(ctx, header)
}

func (traceInjector) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		inject(ctx, propagation.HeaderCarrier(req.Header()))
		return next(ctx, req)
	}
}

func (traceInjector) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		// The headers go out with the first message, so they can still be added here.
		inject(ctx, propagation.HeaderCarrier(conn.RequestHeader()))
		return conn
	}
}

func (traceInjector) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
