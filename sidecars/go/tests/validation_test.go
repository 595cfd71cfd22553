package tests

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/sdk"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// startNested serves task type "nested" v1 with pb.TaskTemplate as its specification, for its depth:
// messages in messages (metadata.timeout), in lists (secrets[i]) and in map values (interface.inputs["k"]),
// none of which the example specifications have. The kit runs in the test process, but it is the kit a
// plugin binary runs: a gRPC server that announces itself over NATS to the real host.
func startNested(t *testing.T, natsURL string) {
	t.Helper()
	plugin := &kit.Sync[*pb.TaskTemplate]{
		Name: "nested", Version: "1.0.0", TaskTypes: []kit.TaskType{{Type: "nested", Version: 1}},
		Do: func(context.Context, *kit.Task[*pb.TaskTemplate]) (kit.Result, error) { return kit.Success(nil), nil },
	}
	server, err := kit.Start(context.Background(), plugin, kit.WithNATSURL(natsURL),
		kit.WithEndpoint("unix:"+filepath.Join(t.TempDir(), "n.sock")), kit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
}

// schemaWhenRouted waits until the host's registry lists a plugin for the type: the sidecars announce
// themselves a moment after they start.
func schemaWhenRouted(t *testing.T, client *sdk.Client, taskType string) *sdk.Schema {
	t.Helper()
	var schema *sdk.Schema
	testenv.Eventually(t, 30*time.Second, "the registry lists "+taskType, func() bool {
		var err error
		schema, err = client.Schema(callCtx(t), taskType, 1)
		if connect.CodeOf(err) == connect.CodeNotFound {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	})
	return schema
}

// pathOf is a problem's field path: what comes before the first ": ".
func pathOf(t *testing.T, err error) string {
	t.Helper()
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) || connectErr.Code() != connect.CodeInvalidArgument {
		t.Fatalf("%v, want INVALID_ARGUMENT", err)
	}
	path, _, found := strings.Cut(connectErr.Message(), ": ")
	if !found || !strings.HasPrefix(path, "template.custom") {
		t.Fatalf("%q names no template.custom path", connectErr.Message())
	}
	return path
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSDKValidatesCustom(t *testing.T) {
	n := testenv.StartNATS(t)
	baseURL := startHost(t, n.URL)
	startBatch(t, n.URL)
	startNested(t, n.URL)
	client := sdk.New(baseURL)
	ctx := callCtx(t)
	const namespace = "validation"
	executions := func() int {
		page, err := client.List(ctx, sdk.ListOptions{Namespace: namespace})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.GetExecutions())
	}

	t.Run("schema", func(t *testing.T) {
		schema := schemaWhenRouted(t, client, "batch")
		text := schema.String()
		for _, line := range []string{
			`task type "batch" v1, plugin batch 1.0.0: custom is pluginbridge.plugins.batch.v1.BatchJob`,
			"\n  command: string\n", "\n  args: repeated string\n", "\n  env: map<string, string>\n",
			"\n  workingDirectory: string\n", "\n  timeout: google.protobuf.Duration (a string such as \"1.5s\")\n",
		} {
			if !strings.Contains(text, line) {
				t.Errorf("schema lacks %q:\n%s", line, text)
			}
		}
		// Programs get the descriptor: enough to build and parse a specification without generated code.
		job := dynamicpb.NewMessage(schema.Message)
		if err := protojson.Unmarshal([]byte(`{"command":"true","timeout":"2s"}`), job); err != nil {
			t.Fatal(err)
		}
		if job.Get(schema.Message.Fields().ByName("command")).String() != "true" {
			t.Fatalf("decoded %v", job)
		}

		nested := schemaWhenRouted(t, client, "nested").String()
		for _, line := range []string{
			"\n  metadata: pluginbridge.v1.TaskMetadata\n    timeout: google.protobuf.Duration",
			"\n  secrets: repeated pluginbridge.v1.SecretRequest\n    group: string\n",
			"\n  interface: pluginbridge.v1.TypedInterface\n    inputs: map<string, pluginbridge.v1.Variable>\n      type: pluginbridge.v1.VariableType (one of VARIABLE_TYPE_UNSPECIFIED, ",
			"\n  custom: google.protobuf.Struct (any JSON object)\n",
		} {
			if !strings.Contains(nested, line) {
				t.Errorf("nested schema lacks %q:\n%s", line, nested)
			}
		}
	})

	t.Run("a good custom passes and runs", func(t *testing.T) {
		template, err := sdk.Template(&batchv1.BatchJob{Command: "sh", Args: []string{"-c", "echo validated"}}, "batch", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Validate(ctx, template); err != nil {
			t.Fatal(err)
		}
		final, err := client.Run(ctx, template, sdk.WithValidation())
		if err != nil || final.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || final.GetOutputs().AsMap()["logTail"] != "validated\n" {
			t.Fatalf("run: %v %v", final, err)
		}
	})

	t.Run("a bad field is refused before anything is sent", func(t *testing.T) {
		bad := &pb.TaskTemplate{Type: "batch", TypeVersion: 1, Custom: mustStruct(t, map[string]any{"command": "echo", "timeout": "soon"})}
		_, err := client.Submit(ctx, bad, sdk.WithValidation(), sdk.WithNamespace(namespace))
		if pathOf(t, err) != "template.custom.timeout" || !strings.Contains(err.Error(), `"soon"`) ||
			!strings.Contains(err.Error(), "must parse as pluginbridge.plugins.batch.v1.BatchJob") {
			t.Fatalf("submit: %v", err)
		}
		if _, err := client.Run(ctx, bad, sdk.WithValidation(), sdk.WithNamespace(namespace)); pathOf(t, err) != "template.custom.timeout" {
			t.Fatalf("run: %v", err)
		}
		if count := executions(); count != 0 {
			t.Fatalf("%d executions in %q, want none", count, namespace)
		}
	})

	// The SDK names the same path the host does, checked by sending each custom both ways.
	t.Run("paths as the host names them", func(t *testing.T) {
		for _, custom := range []map[string]any{
			{"command": "echo", "env": map[string]any{"A": 1}},
			{"command": "echo", "bogus": true},
		} {
			template := &pb.TaskTemplate{Type: "batch", TypeVersion: 1, Custom: mustStruct(t, custom)}
			ours := pathOf(t, client.Validate(ctx, template))
			_, err := client.Submit(ctx, template, sdk.WithNamespace(namespace))
			if hosts := pathOf(t, err); ours != hosts {
				t.Errorf("custom %v: the SDK says %s, the host %s", custom, ours, hosts)
			}
		}
		schemaWhenRouted(t, client, "nested")
		for custom, want := range map[string]string{
			`{"metadata":{"retries":1,"timeout":"soon"}}`:                    "template.custom.metadata.timeout",
			`{"metadata":{"bogus":1}}`:                                       "template.custom.metadata.bogus",
			`{"secrets":[{"group":"g"},{"key":5}]}`:                          "template.custom.secrets[1].key",
			`{"interface":{"inputs":{"x y":{"type":"VARIABLE_TYPE_NOPE"}}}}`: `template.custom.interface.inputs["x y"].type`,
		} {
			value := &structpb.Struct{}
			if err := protojson.Unmarshal([]byte(custom), value); err != nil {
				t.Fatal(err)
			}
			template := &pb.TaskTemplate{Type: "nested", TypeVersion: 1, Custom: value}
			ours := pathOf(t, client.Validate(ctx, template))
			_, err := client.Submit(ctx, template, sdk.WithNamespace(namespace))
			if hosts := pathOf(t, err); ours != want || hosts != want {
				t.Errorf("custom %s: the SDK says %s, the host %s, want %s", custom, ours, hosts, want)
			}
		}
		if count := executions(); count != 0 {
			t.Fatalf("%d executions in %q, want none", count, namespace)
		}
	})

	t.Run("unknown type and version", func(t *testing.T) {
		_, err := client.Schema(ctx, "no-such-type", 1)
		if connect.CodeOf(err) != connect.CodeNotFound || !strings.Contains(err.Error(), `no live plugin serves task type "no-such-type"`) {
			t.Fatalf("unknown type: %v", err)
		}
		unknownVersion := &pb.TaskTemplate{Type: "batch", TypeVersion: 7, Custom: mustStruct(t, map[string]any{"command": "true"})}
		err = client.Validate(ctx, unknownVersion)
		if connect.CodeOf(err) != connect.CodeNotFound ||
			!strings.Contains(err.Error(), `task type "batch" has no live plugin for type_version 7 (live type_versions: 1)`) {
			t.Fatalf("unknown version: %v", err)
		}
		if _, err := client.Submit(ctx, unknownVersion, sdk.WithValidation(), sdk.WithNamespace(namespace)); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("submit of an unknown version: %v", err)
		}
	})
}
