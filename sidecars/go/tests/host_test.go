package tests

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/sdk"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// startHost runs `node bin/plugin-bridge.js serve` against natsURL and returns its base URL.
func startHost(t *testing.T, natsURL string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the SDK tests need a real plugin-bridge host (node bin/plugin-bridge.js serve)")
	}
	port := testenv.FreePort(t)
	testenv.StartProcess(t, nil, node, filepath.Join(testenv.RepoRoot(), "bin", "plugin-bridge.js"), "serve",
		"--nats-url", natsURL, "--listen-port", strconv.Itoa(port), "--data-dir", t.TempDir())
	baseURL := "http://127.0.0.1:" + strconv.Itoa(port)
	client := sdk.New(baseURL)
	testenv.Eventually(t, 60*time.Second, "the host answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := client.List(ctx, sdk.ListOptions{PageSize: 1})
		return err == nil
	})
	return baseURL
}

// runWhenRouted retries while the host has not yet seen the sidecar's announcement (NOT_FOUND).
func runWhenRouted(t *testing.T, client *sdk.Client, template *pb.TaskTemplate) *pb.TaskEvent {
	t.Helper()
	var final *pb.TaskEvent
	testenv.Eventually(t, 30*time.Second, "the host routes the batch task", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		final, err = client.Run(ctx, template)
		if connect.CodeOf(err) == connect.CodeNotFound {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	})
	return final
}

func TestSDKAgainstHost(t *testing.T) {
	n := testenv.StartNATS(t)
	baseURL := startHost(t, n.URL)
	startBatch(t, n.URL)

	for _, protocol := range []sdk.Protocol{sdk.ProtocolGRPC, sdk.ProtocolConnect} {
		client := sdk.New(baseURL, sdk.WithProtocol(protocol))
		template, err := sdk.Template(&batchv1.BatchJob{Command: "sh", Args: []string{"-c", "echo from-go-sdk"}}, "batch", 1)
		if err != nil {
			t.Fatal(err)
		}
		final := runWhenRouted(t, client, template)
		if final.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || final.GetOutputs().AsMap()["logTail"] != "from-go-sdk\n" {
			t.Fatalf("protocol %d: final event %v", protocol, final)
		}
		ctx := callCtx(t)
		execution, err := client.Get(ctx, final.GetExecutionId())
		if err != nil || execution.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS {
			t.Fatalf("get: %v %v", execution, err)
		}
		var phases []pb.Phase
		for event, err := range client.Watch(ctx, final.GetExecutionId(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			phases = append(phases, event.GetPhaseInfo().GetPhase())
		}
		if len(phases) < 2 || phases[0] != pb.Phase_PHASE_QUEUED || phases[len(phases)-1] != pb.Phase_PHASE_SUCCESS {
			t.Fatalf("watched phases %v", phases)
		}
		found := false
		for e, err := range client.ListAll(ctx, sdk.ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			found = found || e.GetId() == final.GetExecutionId()
		}
		if !found {
			t.Fatal("List does not show the execution")
		}

		// A bad spec reaches the SDK user as INVALID_ARGUMENT naming the field.
		custom, _ := structpb.NewStruct(map[string]any{"command": "echo", "timeout": "soon"})
		_, err = client.Submit(ctx, &pb.TaskTemplate{Type: "batch", TypeVersion: 1, Custom: custom})
		var connectErr *connect.Error
		if !errors.As(err, &connectErr) || connectErr.Code() != connect.CodeInvalidArgument || !strings.Contains(connectErr.Message(), "template.custom.timeout") {
			t.Fatalf("bad spec: %v", err)
		}
	}

	// Submit, then abort a long job: the plugin's Delete runs.
	client := sdk.New(baseURL)
	ctx := callCtx(t)
	template, _ := sdk.Template(&batchv1.BatchJob{Command: "sleep", Args: []string{"60"}}, "batch", 1)
	execution, err := client.Submit(ctx, template, sdk.WithInputs(map[string]any{"k": "v"}), sdk.WithIdempotencyKey("abort-me"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the job runs", func() bool {
		e, err := client.Get(ctx, execution.GetId())
		return err == nil && e.GetPhaseInfo().GetPhase() == pb.Phase_PHASE_RUNNING
	})
	if _, err := client.Abort(ctx, execution.GetId(), "test abort"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the execution is aborted", func() bool {
		e, err := client.Get(ctx, execution.GetId())
		return err == nil && e.GetPhaseInfo().GetPhase() == pb.Phase_PHASE_ABORTED
	})

	// run-task, as the cross-language matrix uses it.
	cmd := exec.Command(bin.runTask, "--base-url", baseURL, "--type", "batch", "--spec", `{"command":"sh","args":["-c","echo via-run-task"]}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run-task: %v\n%s", err, out)
	}
	event := &pb.TaskEvent{}
	if err := protojson.Unmarshal(out, event); err != nil || event.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS {
		t.Fatalf("run-task printed %s (%v)", out, err)
	}
	cmd = exec.Command(bin.runTask, "--base-url", baseURL, "--type", "batch", "--spec", `{"command":"sh","args":["-c","exit 4"]}`)
	if err := cmd.Run(); exitCode(err) != 1 {
		t.Fatalf("run-task on a failing job: %v, want exit 1", err)
	}
	cmd = exec.Command(bin.runTask, "--base-url", baseURL, "--type", "batch", "--spec", `{"bogus":1}`)
	if err := cmd.Run(); exitCode(err) != 2 {
		t.Fatalf("run-task with a bad spec: %v, want exit 2", err)
	}
	cmd = exec.Command(bin.runTask, "--base-url", baseURL, "--type", "sensor", "--spec", `{}`, "--quiet")
	stderr, _ := cmd.CombinedOutput()
	if exitCode(cmd.ProcessState) != 2 || !strings.Contains(string(stderr), "not_found") {
		t.Fatalf("run-task for an unserved type: exit %d, %s", exitCode(cmd.ProcessState), stderr)
	}
}

func exitCode(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case *exec.ExitError:
		return x.ExitCode()
	case interface{ ExitCode() int }:
		return x.ExitCode()
	}
	return -1
}
