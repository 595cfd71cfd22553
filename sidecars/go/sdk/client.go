// Package sdk submits tasks to a plugin-bridge host and follows them: a thin layer over the generated
// connect-go TaskService client. It speaks gRPC over HTTP/2 by default, as the host's public port serves it
// (cleartext h2c for http:// base URLs, TLS for https:// ones), or the Connect protocol.
package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"iter"
	"net"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1/pluginbridgev1connect"
	"google.golang.org/protobuf/types/known/structpb"
)

// Protocol is the wire protocol the client speaks to the host.
type Protocol int

const (
	// ProtocolGRPC is gRPC over HTTP/2 (h2c for http:// URLs). The default.
	ProtocolGRPC Protocol = iota
	// ProtocolConnect is the Connect protocol (binary protobuf).
	ProtocolConnect
	// ProtocolGRPCWeb is gRPC-Web.
	ProtocolGRPCWeb
)

// Option configures a Client.
type Option func(*clientSettings)

type clientSettings struct {
	protocol   Protocol
	httpClient connect.HTTPClient
	headers    http.Header
	extra      []connect.ClientOption
	specTTL    time.Duration
	token      string
	tls        *tls.Config
}

// APITokenEnv is where a client finds its token when WithToken is not given. It is not PLUGIN_BRIDGE_TOKEN:
// that variable is a sidecar's identity towards the hosts, and a program that runs beside a sidecar must
// not present it as a caller's.
const APITokenEnv = "PLUGIN_BRIDGE_API_TOKEN"

// DefaultSpecificationTTL is how long a client trusts a fetched specification. Short, because plugins come
// and go: an instance that stops announcing leaves the host's table within about 15 s.
const DefaultSpecificationTTL = 10 * time.Second

// WithProtocol picks the wire protocol.
func WithProtocol(p Protocol) Option { return func(s *clientSettings) { s.protocol = p } }

// WithToken sends "authorization: Bearer <token>" on every call, for a host that requires its callers to
// authenticate. Without it (or with ""), the client sends $PLUGIN_BRIDGE_API_TOKEN when that is set, and no
// authorization otherwise.
func WithToken(token string) Option { return func(s *clientSettings) { s.token = token } }

// WithTLS sets the TLS configuration of the default HTTP client, used for https:// base URLs: the
// certificate authorities to trust (RootCAs; nil trusts the system's) and a client certificate for mutual TLS
// (Certificates). [TLSConfig] and [TLSConfigFromFiles] build one from PEM. It does not apply to a client
// given with WithHTTPClient, which brings its own transport.
func WithTLS(config *tls.Config) Option { return func(s *clientSettings) { s.tls = config } }

// WithHTTPClient replaces the default HTTP client (h2c and TLS HTTP/2).
func WithHTTPClient(c connect.HTTPClient) Option { return func(s *clientSettings) { s.httpClient = c } }

// WithHeader adds a header to every request, such as an authorization token.
func WithHeader(name, value string) Option {
	return func(s *clientSettings) { s.headers.Add(name, value) }
}

// WithClientOptions passes connect-go options through (interceptors, compression, read limits ...).
func WithClientOptions(options ...connect.ClientOption) Option {
	return func(s *clientSettings) { s.extra = append(s.extra, options...) }
}

// WithSpecificationTTL sets how long Validate, Schema and WithValidation reuse a specification fetched for
// a (task type, version); 0 fetches it on every use. The default is DefaultSpecificationTTL.
func WithSpecificationTTL(d time.Duration) Option {
	return func(s *clientSettings) { s.specTTL = d }
}

// Client calls a plugin-bridge host's TaskService, and its PluginRegistryService to learn what custom a
// task type expects. Errors are *connect.Error and keep the host's code and message, such as
// INVALID_ARGUMENT "template.custom.timeout: …" for a bad specification.
type Client struct {
	raw   pluginbridgev1connect.TaskServiceClient
	specs *specifications
}

// NewHTTPClient is the default HTTP client: HTTP/2 only, cleartext (h2c) for http:// and TLS for https://,
// so gRPC works against the host's one port.
func NewHTTPClient() *http.Client { return newHTTPClient(nil) }

// newHTTPClient is NewHTTPClient with the TLS configuration of WithTLS, or the system's trust when nil.
func newHTTPClient(tlsConfig *tls.Config) *http.Client {
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsConfig = tlsConfig.Clone() // the transport adds "h2" to NextProtos; the caller's config stays as given
	}
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:           &protocols,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		ForceAttemptHTTP2:   true,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// New returns a client for the host at baseURL, such as "http://127.0.0.1:8080".
func New(baseURL string, options ...Option) *Client {
	s := clientSettings{headers: http.Header{}, specTTL: DefaultSpecificationTTL}
	for _, option := range options {
		option(&s)
	}
	if s.httpClient == nil {
		s.httpClient = newHTTPClient(s.tls)
	}
	if s.token == "" {
		s.token = os.Getenv(APITokenEnv)
	}
	if s.token != "" {
		s.headers.Set("Authorization", "Bearer "+s.token)
	}
	var connectOptions []connect.ClientOption
	switch s.protocol {
	case ProtocolGRPC:
		connectOptions = append(connectOptions, connect.WithGRPC())
	case ProtocolGRPCWeb:
		connectOptions = append(connectOptions, connect.WithGRPCWeb())
	}
	connectOptions = append(connectOptions, connect.WithInterceptors(traceInjector{}))
	if len(s.headers) > 0 {
		connectOptions = append(connectOptions, connect.WithInterceptors(headerInterceptor(s.headers)))
	}
	connectOptions = append(connectOptions, s.extra...)
	return &Client{
		raw: pluginbridgev1connect.NewTaskServiceClient(s.httpClient, baseURL, connectOptions...),
		specs: newSpecifications(
			pluginbridgev1connect.NewPluginRegistryServiceClient(s.httpClient, baseURL, connectOptions...), s.specTTL),
	}
}

// Raw is the generated client, for anything not wrapped here.
func (c *Client) Raw() pluginbridgev1connect.TaskServiceClient { return c.raw }

// SubmitOption adds inputs, metadata, an idempotency key or a check of custom to a submission.
type SubmitOption func(*submission)

type submission struct {
	inputs         *structpb.Struct
	metadata       *pb.TaskExecutionMetadata
	idempotencyKey string
	onEvent        func(*pb.TaskEvent)
	validate       bool
	err            error
}

// WithInputs sets the task's inputs; values must fit structpb.NewStruct.
func WithInputs(inputs map[string]any) SubmitOption {
	return func(s *submission) {
		var err error
		if s.inputs, err = structpb.NewStruct(inputs); err != nil {
			s.err = err
		}
	}
}

// WithMetadata sets namespace, labels, owner and the like.
func WithMetadata(m *pb.TaskExecutionMetadata) SubmitOption {
	return func(s *submission) { s.metadata = m }
}

// WithNamespace sets the execution's namespace (default "default").
func WithNamespace(namespace string) SubmitOption {
	return func(s *submission) {
		if s.metadata == nil {
			s.metadata = &pb.TaskExecutionMetadata{}
		}
		s.metadata.Namespace = namespace
	}
}

// WithIdempotencyKey makes a submission safe to repeat: the same key returns the same execution.
func WithIdempotencyKey(key string) SubmitOption {
	return func(s *submission) { s.idempotencyKey = key }
}

// OnEvent is called by Run for every event, the last one included.
func OnEvent(f func(*pb.TaskEvent)) SubmitOption { return func(s *submission) { s.onEvent = f } }

// WithValidation checks template.custom against the plugin's specification (Validate) before submitting:
// a bad custom fails with INVALID_ARGUMENT naming the field, and no execution is created. Off by default,
// since the host checks custom anyway and this costs a registry call whenever the cached specification
// has expired.
func WithValidation() SubmitOption { return func(s *submission) { s.validate = true } }

// prepare applies the options and, when asked, validates the template before anything is sent.
func (c *Client) prepare(ctx context.Context, template *pb.TaskTemplate, options []SubmitOption) (submission, error) {
	var s submission
	for _, option := range options {
		option(&s)
	}
	if s.err != nil {
		return s, s.err
	}
	if s.validate {
		return s, c.Validate(ctx, template)
	}
	return s, nil
}

// Submit stores a new execution and returns it; the host answers once it is durable.
func (c *Client) Submit(ctx context.Context, template *pb.TaskTemplate, options ...SubmitOption) (*pb.TaskExecution, error) {
	s, err := c.prepare(ctx, template, options)
	if err != nil {
		return nil, err
	}
	response, err := c.raw.CreateTask(ctx, connect.NewRequest(&pb.CreateTaskRequest{
		Template: template, Inputs: s.inputs, Metadata: s.metadata, IdempotencyKey: s.idempotencyKey,
	}))
	if err != nil {
		return nil, err
	}
	return required(response.Msg.GetExecution(), "an execution")
}

// Watch yields the execution's events from fromSequence (0 or 1: all), recorded ones first, then new ones,
// and ends after the terminal event. An error ends the sequence.
func (c *Client) Watch(ctx context.Context, id string, fromSequence uint64) iter.Seq2[*pb.TaskEvent, error] {
	return func(yield func(*pb.TaskEvent, error) bool) {
		stream, err := c.raw.WatchTask(ctx, connect.NewRequest(&pb.WatchTaskRequest{Id: id, FromSequence: fromSequence}))
		if err != nil {
			yield(nil, err)
			return
		}
		defer stream.Close()
		for stream.Receive() {
			if event := stream.Msg().GetEvent(); event != nil && !yield(event, nil) {
				return
			}
		}
		if err := stream.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// Run submits the task and follows it to the end (ExecuteTask); it returns the terminal event.
func (c *Client) Run(ctx context.Context, template *pb.TaskTemplate, options ...SubmitOption) (*pb.TaskEvent, error) {
	s, err := c.prepare(ctx, template, options)
	if err != nil {
		return nil, err
	}
	stream, err := c.raw.ExecuteTask(ctx, connect.NewRequest(&pb.ExecuteTaskRequest{
		Template: template, Inputs: s.inputs, Metadata: s.metadata, IdempotencyKey: s.idempotencyKey,
	}))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var last *pb.TaskEvent
	for stream.Receive() {
		if event := stream.Msg().GetEvent(); event != nil {
			last = event
			if s.onEvent != nil {
				s.onEvent(event)
			}
		}
	}
	if err := stream.Err(); err != nil {
		return last, err
	}
	return required(last, "any event")
}

// Get returns the execution's current state.
func (c *Client) Get(ctx context.Context, id string) (*pb.TaskExecution, error) {
	response, err := c.raw.GetTask(ctx, connect.NewRequest(&pb.GetTaskRequest{Id: id}))
	if err != nil {
		return nil, err
	}
	return required(response.Msg.GetExecution(), "an execution")
}

// Abort asks the host to stop the execution (the plugin's Delete runs) and returns its state.
func (c *Client) Abort(ctx context.Context, id, reason string) (*pb.TaskExecution, error) {
	response, err := c.raw.AbortTask(ctx, connect.NewRequest(&pb.AbortTaskRequest{Id: id, Reason: reason}))
	if err != nil {
		return nil, err
	}
	return required(response.Msg.GetExecution(), "an execution")
}

// ListOptions filter and page List.
type ListOptions struct {
	Namespace string
	Phases    []pb.Phase
	PageSize  uint32
	PageToken string
}

// List returns one page of executions.
func (c *Client) List(ctx context.Context, options ListOptions) (*pb.ListTasksResponse, error) {
	response, err := c.raw.ListTasks(ctx, connect.NewRequest(&pb.ListTasksRequest{
		Namespace: options.Namespace, Phases: options.Phases, PageSize: options.PageSize, PageToken: options.PageToken,
	}))
	if err != nil {
		return nil, err
	}
	return response.Msg, nil
}

// ListAll yields every execution matching the filter, page after page.
func (c *Client) ListAll(ctx context.Context, options ListOptions) iter.Seq2[*pb.TaskExecution, error] {
	return func(yield func(*pb.TaskExecution, error) bool) {
		token := ""
		for {
			options.PageToken = token
			page, err := c.List(ctx, options)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, execution := range page.GetExecutions() {
				if !yield(execution, nil) {
					return
				}
			}
			// A host that repeats a token would loop forever; stop rather than trust it.
			if page.GetNextPageToken() == "" || page.GetNextPageToken() == token {
				return
			}
			token = page.GetNextPageToken()
		}
	}
}

func required[T any](value *T, what string) (*T, error) {
	if value == nil {
		return nil, connect.NewError(connect.CodeInternal, errors.New("the host answered without "+what))
	}
	return value, nil
}

func headerInterceptor(headers http.Header) connect.Interceptor {
	return headerAdder{headers}
}

type headerAdder struct{ headers http.Header }

func (h headerAdder) set(target http.Header) {
	for name, values := range h.headers {
		for _, v := range values {
			target.Add(name, v)
		}
	}
}

func (h headerAdder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		h.set(req.Header())
		return next(ctx, req)
	}
}

func (h headerAdder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		h.set(conn.RequestHeader())
		return conn
	}
}

func (h headerAdder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
