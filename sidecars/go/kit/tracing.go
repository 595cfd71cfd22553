package kit

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerScope is the instrumentation scope of the kit's spans, the same in every kit.
const tracerScope = "plugin-bridge-kit"

// tracingShutdownTimeout bounds the flush and shutdown of the provider the kit installed, so a collector that is
// down delays a drain by at most this much.
const tracingShutdownTimeout = 5 * time.Second

// w3cPropagator is W3C Trace Context plus W3C Baggage, what the host sends in each call's metadata.
var w3cPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// tracing is how a sidecar traces its plugin calls: the tracer of its server spans, the propagator that reads
// the host's trace context from a call's metadata, and the provider it installed itself, if any.
type tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	// installed is the provider the kit set up from OTEL_* variables; the kit flushes and shuts it down when it
	// stops. nil when the application brought its own provider or tracing is off.
	installed *sdktrace.TracerProvider
	// replaced is the global provider before the kit installed its own, put back when it stops.
	replaced trace.TracerProvider
	// plugin, version and instance are on every span, as pluginbridge.plugin, .plugin_version, .instance_id.
	plugin, version, instance string
}

// newTracing decides where the kit's spans go:
//   - the provider given with WithTracerProvider, or else one the application installed globally: the kit uses
//     it and installs none;
//   - else, when the environment asks for OTLP export (exportRequested), a provider the kit installs globally,
//     exporting over OTLP/gRPC in batches;
//   - else nowhere: the global no-op API, which a provider the application installs later still reaches.
//
// When spans go somewhere and the application set no propagator, the kit sets the W3C one globally: the host's
// context has to be read from the metadata, and the author's instrumented clients should pass it on. A provider
// that cannot be set up is logged and leaves tracing off: telemetry never stops a plugin serving.
func newTracing(decl declaration, cfg settings) *tracing {
	t := &tracing{plugin: decl.name, version: decl.version, instance: cfg.instanceID}
	provider := cfg.tracerProvider
	if provider == nil && setByApplication(otel.GetTracerProvider()) {
		provider = otel.GetTracerProvider()
	}
	switch {
	case provider != nil:
		cfg.logger.Debug("tracing with the application's tracer provider")
	case exportRequested(os.Getenv):
		installed, err := installProvider(decl, cfg.instanceID, cfg.logger)
		if err != nil {
			cfg.logger.Error("cannot set up the OTLP trace exporter; traces are off", "error", err)
			break
		}
		t.installed, t.replaced, provider = installed, otel.GetTracerProvider(), installed
		otel.SetTracerProvider(installed)
		cfg.logger.Info("exporting traces over OTLP/gRPC", "endpoint",
			firstNonEmpty(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))
	}
	if provider == nil {
		// No-op until the application installs a provider and a propagator.
		t.tracer, t.propagator = otel.Tracer(tracerScope), otel.GetTextMapPropagator()
		return t
	}
	if !setByApplication(otel.GetTextMapPropagator()) {
		otel.SetTextMapPropagator(w3cPropagator)
	}
	t.tracer, t.propagator = provider.Tracer(tracerScope), otel.GetTextMapPropagator()
	return t
}

// exportRequested applies the tracing contract: the kit exports when an OTLP endpoint is set, the SDK is not
// disabled and no exporter other than otlp is chosen. getenv is os.Getenv, or a table in tests.
func exportRequested(getenv func(string) string) bool {
	value := func(key string) string { return strings.ToLower(strings.TrimSpace(getenv(key))) }
	if value("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false
	}
	if value("OTEL_SDK_DISABLED") == "true" {
		return false
	}
	exporter := value("OTEL_TRACES_EXPORTER")
	return exporter == "" || exporter == "otlp"
}

// globalDefaultsPackage holds the delegating defaults that otel.GetTracerProvider and otel.GetTextMapPropagator
// return until something is set. The API has no "is one installed?", and an application's provider may be a
// no-op one on purpose, so the kit recognizes the defaults by their type: only that internal package can make
// one, and otel.SetTracerProvider refuses to install the default as its own delegate.
const globalDefaultsPackage = "go.opentelemetry.io/otel/internal/global"

// setByApplication reports whether global, a value of otel.GetTracerProvider or otel.GetTextMapPropagator, was
// installed by someone rather than being the API's default.
func setByApplication(global any) bool {
	t := reflect.TypeOf(global)
	if t == nil {
		return false
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() != globalDefaultsPackage
}

// installProvider builds the kit's own provider: OTLP over gRPC, configured by the standard OTEL_EXPORTER_OTLP_*
// variables (the exporter reads them itself), a batch span processor, and a resource naming the plugin.
func installProvider(decl declaration, instanceID string, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	ctx := context.Background()
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	// Later options win: OTEL_RESOURCE_ATTRIBUTES adds to the plugin's own values but does not replace them, and
	// only OTEL_SERVICE_NAME renames the service, as in every kit.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
		resource.WithAttributes(
			semconv.ServiceName(firstNonEmpty(strings.TrimSpace(os.Getenv("OTEL_SERVICE_NAME")), decl.name)),
			semconv.ServiceVersion(decl.version),
			semconv.ServiceInstanceID(instanceID),
		),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		log.Warn("OTEL_RESOURCE_ATTRIBUTES is partly malformed; using what could be read", "error", err)
	} else if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, err
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)), nil
}

// shutdown flushes the spans of the provider the kit installed and shuts it down, within
// tracingShutdownTimeout; a provider the application brought stays the application's to shut down.
func (t *tracing) shutdown(log *slog.Logger) {
	if t.installed == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := t.installed.ForceFlush(ctx); err != nil {
		log.Warn("could not export the last spans", "error", err)
	}
	if err := t.installed.Shutdown(ctx); err != nil {
		log.Warn("trace exporter shutdown failed", "error", err)
	}
	// A provider that is shut down swallows every span: a later Start in the same process would take it for
	// the application's and trace nothing.
	if otel.GetTracerProvider() == trace.TracerProvider(t.installed) {
		otel.SetTracerProvider(t.replaced)
	}
}
