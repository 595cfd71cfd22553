// Package tests holds the kit's process-level tests: the conformance plugin, the batch example and
// run-task built as real binaries, a real nats-server, and (when node is installed) a real host.
package tests

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// Binaries built once for every test.
var bin struct{ conformance, batch, runTask string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugin-bridge-go-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for pkg, target := range map[string]*string{"./conformance": &bin.conformance, "./examples/batch": &bin.batch, "./cmd/run-task": &bin.runTask} {
		if *target, err = testenv.Build(dir, pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// client is a gRPC connection to a sidecar, as the host makes one.
type client struct {
	conn   *grpc.ClientConn
	meta   pb.PluginMetadataServiceClient
	async  pb.AsyncPluginServiceClient
	sync   pb.SyncPluginServiceClient
	core   pb.CorePluginServiceClient
	health healthpb.HealthClient
}

func dial(t *testing.T, endpoint string) *client {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{
		conn: conn, meta: pb.NewPluginMetadataServiceClient(conn), async: pb.NewAsyncPluginServiceClient(conn),
		sync: pb.NewSyncPluginServiceClient(conn), core: pb.NewCorePluginServiceClient(conn), health: healthpb.NewHealthClient(conn),
	}
	testenv.Eventually(t, 30*time.Second, "the sidecar at "+endpoint+" is SERVING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return c
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func taskContext(t *testing.T, taskType, execution string, attempt uint32, custom map[string]any) *pb.TaskContext {
	t.Helper()
	s, err := structpb.NewStruct(custom)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.TaskContext{
		ExecutionId: &pb.TaskExecutionId{Id: execution, Attempt: attempt},
		Template:    &pb.TaskTemplate{Type: taskType, TypeVersion: 1, Custom: s},
	}
}
