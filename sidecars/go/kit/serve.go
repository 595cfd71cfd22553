package kit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxMessageBytes matches the host's 16 MiB limit on calls to sidecars.
const maxMessageBytes = 16 << 20

// Server is a running sidecar, as [Start] returns it. Most plugins call [Serve] instead, which also drains
// on SIGTERM/SIGINT; their methods reach [Server.Push] through [Task.Push].
type Server struct {
	endpoint   string
	instanceID string
	log        *slog.Logger
	grpc       *grpc.Server
	health     *health.Server
	link       *natsLink
	tracing    *tracing
	announcer  *announcer
	gate       gate
	settings   settings
	served     chan error // the result of grpc.Server.Serve

	stopOnce sync.Once
	stopped  chan struct{}
	force    chan struct{} // closed to cut a drain's wait short
	forced   sync.Once
}

// Serve runs plugin as a sidecar until ctx ends or, unless WithSignals(false), SIGTERM or SIGINT arrives;
// then it drains (refuses new calls, NOT_SERVING, announces draining, waits for calls in flight up to 30 s,
// withdraws the announcement, stops gRPC, closes NATS) and returns nil. A second signal cuts the wait short.
// It returns an error when the plugin or the settings are invalid or the endpoint cannot be bound.
func Serve(ctx context.Context, plugin Plugin, options ...Option) error {
	s, err := Start(ctx, plugin, options...)
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 2)
	if s.settings.handleSignals {
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(signals)
	}
	select {
	case sig := <-signals:
		s.log.Info("signal received; draining", "signal", sig.String())
	case <-ctx.Done():
		s.log.Info("context ended; draining")
	case err := <-s.served:
		s.Stop()
		return fmt.Errorf("gRPC server stopped: %w", err)
	}
	go func() {
		select {
		case sig := <-signals:
			s.log.Warn("signal again: stopping without waiting", "signal", sig.String())
			s.forced.Do(func() { close(s.force) })
		case <-s.stopped:
		}
	}()
	s.Drain()
	return nil
}

// Start binds the gRPC server, turns health SERVING, starts announcing (once NATS is reachable) and
// returns. The caller ends it with Drain or Stop.
func Start(_ context.Context, plugin Plugin, options ...Option) (*Server, error) {
	decl := plugin.declaration()
	if err := decl.check(); err != nil {
		return nil, err
	}
	cfg, err := resolveSettings(decl.name, options)
	if err != nil {
		return nil, err
	}
	log := cfg.logger
	descriptor := descriptorOf(decl)
	startedAt := timestamppb.Now()

	ep := defaultEndpoint(cfg.instanceID)
	if cfg.endpoint != "" {
		if ep, err = parseEndpoint(cfg.endpoint); err != nil {
			return nil, err
		}
	}

	s := &Server{
		instanceID: cfg.instanceID,
		log:        log,
		settings:   cfg,
		served:     make(chan error, 1),
		stopped:    make(chan struct{}),
		force:      make(chan struct{}),
		gate:       gate{idle: make(chan struct{})},
	}

	var store idempotencyStore = &memoryIdempotencyStore{entries: map[string][]byte{}}
	if cfg.noNATS {
		log.Warn("running without NATS: no announcement, Create and Finalize idempotent within this process only")
	} else {
		if s.link, err = connectNATS(cfg.natsURL, cfg.instanceID, cfg.natsOptions, log); err != nil {
			return nil, fmt.Errorf("NATS %s: %w", cfg.natsURL, err)
		}
		store = kvIdempotencyStore{link: s.link}
	}

	pluginService := serviceOf(decl.kind)
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.MaxSendMsgSize(maxMessageBytes),
		grpc.ChainUnaryInterceptor(s.intercept(pluginService)),
	)
	pb.RegisterPluginMetadataServiceServer(s.grpc, metadataServer{descriptor: descriptor})
	r := &registrar{server: s.grpc, store: store, log: log, sidecar: s}
	plugin.register(r)
	if r.err != nil {
		s.closeLink()
		return nil, r.err
	}
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	servedNames := []string{"", pb.PluginMetadataService_ServiceDesc.ServiceName, pluginService, healthpb.Health_ServiceDesc.ServiceName}
	for _, name := range servedNames {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}

	listener, err := ep.listen()
	if err != nil {
		s.closeLink()
		return nil, fmt.Errorf("cannot listen: %w", err)
	}
	s.endpoint = ep.dialAddress(listener)
	// Set up only now that Start cannot fail any more, so a failed Start leaves no provider installed.
	s.tracing = newTracing(decl, cfg)
	go func() { s.served <- s.grpc.Serve(listener) }()
	for _, name := range servedNames {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	taskTypes := make([]string, len(decl.taskTypes))
	for i, t := range decl.taskTypes {
		taskTypes[i] = fmt.Sprintf("%s@%d", t.Type, t.Version)
	}
	log.Info("serving", "endpoint", s.endpoint, "kind", decl.kind.String(), "version", decl.version,
		"instance", cfg.instanceID, "taskTypes", taskTypes)

	// Announced only now: bound and SERVING, so a host that sees the key can call at once.
	if s.link != nil {
		s.announcer = &announcer{
			link:       s.link,
			key:        KVKey(decl.name, cfg.instanceID),
			instanceID: cfg.instanceID,
			endpoint:   s.endpoint,
			descriptor: descriptor,
			startedAt:  startedAt,
			interval:   cfg.heartbeatInterval,
			token:      cfg.signer,
			log:        log,
		}
		s.announcer.start()
	}
	return s, nil
}

// serviceOf names the gRPC service a plugin of kind serves: the interceptor gates its calls and health
// reports it.
func serviceOf(kind pb.PluginKind) string {
	switch kind {
	case pb.PluginKind_PLUGIN_KIND_SYNC:
		return pb.SyncPluginService_ServiceDesc.ServiceName
	case pb.PluginKind_PLUGIN_KIND_CORE:
		return pb.CorePluginService_ServiceDesc.ServiceName
	}
	return pb.AsyncPluginService_ServiceDesc.ServiceName
}

// Endpoint is the address as announced and as a host dials it: "unix:/abs/path" or "127.0.0.1:port".
func (s *Server) Endpoint() string { return s.endpoint }

// InstanceID is the instance's id, the second token of its announcement key.
func (s *Server) InstanceID() string { return s.instanceID }

// Announced is closed once the first announcement is stored in NATS (never, when run without NATS).
func (s *Server) Announced() <-chan struct{} {
	if s.announcer == nil {
		return make(chan struct{})
	}
	return s.announcer.announced
}

// Drain stops gracefully: refuses new calls, turns NOT_SERVING, announces draining, waits for calls in
// flight (bounded by the drain timeout), withdraws the announcement, stops gRPC and closes NATS.
func (s *Server) Drain() { s.shutdown(true) }

// Stop stops at once: withdraws and shuts down without waiting for calls in flight.
func (s *Server) Stop() { s.shutdown(false) }

func (s *Server) shutdown(graceful bool) {
	s.stopOnce.Do(func() {
		defer close(s.stopped)
		inFlight := s.gate.close()
		s.health.Shutdown() // every service NOT_SERVING, for good
		if graceful {
			s.log.Info("draining", "inFlight", inFlight)
		} else {
			s.log.Info("stopping", "inFlight", inFlight)
		}
		if s.announcer != nil {
			s.announcer.setDraining()
		}
		if graceful && inFlight > 0 {
			select {
			case <-s.gate.idle:
			case <-time.After(s.settings.drainTimeout):
				s.log.Warn("drain timeout passed with calls still in flight", "inFlight", s.gate.count())
			case <-s.force:
			}
		}
		if s.announcer != nil {
			s.announcer.withdraw()
		}
		// Health Watch streams never end by themselves: give GracefulStop a bound, then cut.
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		grace := 5 * time.Second
		if !graceful {
			grace = 0
		}
		select {
		case <-stopped:
		case <-time.After(grace):
			s.grpc.Stop()
			<-stopped
		}
		s.closeLink()
		// Last, once gRPC has stopped: every call's span has ended and is flushed with the rest.
		s.tracing.shutdown(s.log)
		s.log.Info("stopped")
	})
}

func (s *Server) closeLink() {
	if s.link != nil {
		s.link.close()
	}
}

// intercept wraps every call of the plugin's own service: traced as a SERVER span, refused while draining,
// counted while in flight, a panic recovered as INTERNAL (the sidecar keeps serving), errors mapped to their
// gRPC codes. Describe and health pass untraced.
func (s *Server) intercept(pluginService string) grpc.UnaryServerInterceptor {
	prefix := "/" + pluginService + "/"
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if len(info.FullMethod) < len(prefix) || info.FullMethod[:len(prefix)] != prefix {
			return handler(ctx, req)
		}
		// The span covers refused calls too, and ends last, with the answer as the host receives it.
		ctx, span := s.tracing.startCall(ctx, info.FullMethod, req)
		defer func() { endCall(span, resp, err) }()
		if !s.gate.enter() {
			return nil, status.Error(codes.Unavailable, "draining")
		}
		defer s.gate.leave()
		defer func() {
			if r := recover(); r != nil {
				recordPanic(ctx, r)
				s.log.Error("plugin call panicked", "method", info.FullMethod, "panic", r)
				resp, err = nil, panicError(r)
			}
		}()
		resp, err = handler(ctx, req)
		if err != nil {
			err = toStatus(err)
			if status.Code(err) == codes.Internal {
				s.log.Warn("plugin call failed", "method", info.FullMethod, "error", err)
			}
		}
		return resp, err
	}
}

// gate counts plugin calls in flight and refuses new ones once closed.
type gate struct {
	mu       sync.Mutex
	closed   bool
	inFlight int
	idle     chan struct{} // closed when closed and no call is in flight
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.inFlight++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	if g.closed && g.inFlight == 0 {
		close(g.idle)
	}
}

// close refuses new calls and returns how many are in flight.
func (g *gate) close() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.inFlight == 0 {
		close(g.idle)
	}
	return g.inFlight
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight
}
