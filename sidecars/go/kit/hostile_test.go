package kit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Requests no host sends: an execution id too long or odd for a NATS name, bytes that do not decode, text
// that a status message would repeat whole.

var long = strings.Repeat("x", 64<<10)

func TestExecutionIDsAHostCannotGiveAreRefusedBeforeNATS(t *testing.T) {
	n := testenv.StartNATS(t)
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithNATSURL(n.URL), kit.WithInstanceID("kit-hostile-ids"))
	waitAnnounced(t, s.server)
	ctx := callCtx(t)

	_, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, long, 1, nil)})
	want := `context.execution_id.id "` + strings.Repeat("x", 80) + `"… (65536 characters) is not an execution id: 1 to 64 letters, digits, '-' and '_'`
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != want {
		t.Errorf("a 64 KiB execution id: %v", err)
	}
	for _, id := range []string{"a.b", "a b", "a*", ">", "exé", strings.Repeat("x", 65)} {
		_, err := s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, id, 1, nil)})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "is not an execution id") {
			t.Errorf("execution id %q: %v", id, err)
		}
	}
	_, err = s.async.Create(ctx, &pb.CreateRequest{Context: taskContext(t, "e-0", 0, nil)})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "context.execution_id.attempt must be at least 1" {
		t.Errorf("attempt 0: %v", err)
	}

	// The longest id a host gives goes through: the store is reachable at once, the connection was never lost.
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.async.Create(quick, &pb.CreateRequest{Context: taskContext(t, strings.Repeat("y", 64), 1, nil)}); err != nil {
		t.Fatalf("a 64-character execution id: %v", err)
	}
}

// rawCodec sends a []byte as the request exactly as it is, and receives the answer's bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*[]byte) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

// grpc-go's own answer, as gRPC's status code table has it ("Error parsing request proto": INTERNAL); the host
// counts it as a system failure, which a request it built and the kit could not read is.
func TestUndecodableRequestsAreInternalOnEveryService(t *testing.T) {
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS())
	ctx := callCtx(t)
	// Field 1 (the context, or health's service name) declared longer than anything that follows.
	garbage := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}

	const prefix = "grpc: failed to unmarshal the received message"
	for _, method := range []string{
		"/pluginbridge.v1.AsyncPluginService/Create",
		"/pluginbridge.v1.PluginMetadataService/Describe",
		"/grpc.health.v1.Health/Check",
	} {
		var reply []byte
		err := s.conn.Invoke(ctx, method, garbage, &reply, grpc.ForceCodec(rawCodec{}))
		if status.Code(err) != codes.Internal || !strings.HasPrefix(status.Convert(err).Message(), prefix) {
			t.Errorf("%s: %v, want INTERNAL %q...", method, err, prefix)
		}
	}

	stream, err := s.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/grpc.health.v1.Health/Watch", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(garbage); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var reply []byte
	if err := stream.RecvMsg(&reply); status.Code(err) != codes.Internal {
		t.Errorf("Watch: %v, want INTERNAL", err)
	}

	// A request that decodes is served as before.
	if _, err := s.meta.Describe(ctx, &pb.DescribeRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestStatusMessagesRepeatABoundedPartOfTheRequest(t *testing.T) {
	s := startSidecar(t, newTestPlugin().plugin(), kit.WithoutNATS())
	ctx := callCtx(t)

	_, err := s.async.Get(ctx, &pb.GetRequest{Context: taskContext(t, "e-key", 1, map[string]any{long: 1})})
	want := `template.custom."` + strings.Repeat("x", 80) + `"… (65536 characters): unknown field (expected pluginbridge.conformance.v1.Script)`
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != want {
		t.Errorf("a 64 KiB unknown key: %v", err)
	}

	// The plugin's own message, repeating a 64 KiB input, is cut: the answer still fits its trailer.
	_, err = s.async.Get(ctx, &pb.GetRequest{
		Context:      taskContext(t, "e-long", 1, map[string]any{"message": "repeat", "echo": long}),
		ResourceMeta: []byte("{}"),
	})
	prefix := "cannot run "
	want = prefix + strings.Repeat("x", 2000-len(prefix)) + "… (cut from 65547 characters)"
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != want {
		t.Errorf("a plugin's 64 KiB message: %v", err)
	}
}
