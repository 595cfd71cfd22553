package sdk

import (
	"strings"
	"testing"

	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TaskTemplate stands in for a deep specification: messages in messages, in lists and in map values.
func TestCustomProblemNamesTheDeepestPath(t *testing.T) {
	spec := (&pb.TaskTemplate{}).ProtoReflect().Descriptor()
	cases := []struct {
		custom map[string]any
		want   string // how the problem starts; after a bare "path: ", protojson's wording must follow
	}{
		{map[string]any{"type": "x", "metadata": map[string]any{"retries": 2, "timeout": "soon"}}, "template.custom.metadata.timeout: "},
		{map[string]any{"metadata": map[string]any{"bogus": 1}}, `template.custom.metadata.bogus: pluginbridge.v1.TaskMetadata has no field "bogus"`},
		{map[string]any{"secrets": []any{map[string]any{"group": "g"}, map[string]any{"key": 5}}}, "template.custom.secrets[1].key: "},
		{map[string]any{"interface": map[string]any{"inputs": map[string]any{"a<b": map[string]any{"type": "NOPE"}}}}, `template.custom.interface.inputs["a<b"].type: `},
		{map[string]any{"type_version": "one"}, "template.custom.type_version: "}, // the proto name is accepted, and kept in the path
		{map[string]any{"config": map[string]any{"k": 1}}, "template.custom.config: "},
		{map[string]any{"secrets": "not a list"}, "template.custom.secrets: "},
		{map[string]any{"custom": map[string]any{"anything": []any{1, "two"}}, "metadata": 7}, "template.custom.metadata: "},
	}
	for _, c := range cases {
		got := customProblem(spec, mustStruct(t, c.custom))
		if !strings.HasPrefix(got, c.want) || strings.HasSuffix(c.want, ": ") && got == c.want {
			t.Errorf("custom %v: problem %q, want it to start %q and say what is wrong", c.custom, got, c.want)
		}
		if strings.Contains(got, "proto:") || strings.Contains(got, "(line ") {
			t.Errorf("problem %q keeps protojson's prefix", got)
		}
	}
}

func TestCustomProblemAcceptsWhatParses(t *testing.T) {
	spec := (&batchv1.BatchJob{}).ProtoReflect().Descriptor()
	for _, custom := range []*structpb.Struct{
		nil,
		mustStruct(t, map[string]any{}),
		mustStruct(t, map[string]any{"command": "sh", "args": []any{"-c", "true"}, "env": map[string]any{"A": "1"}, "timeout": "2s"}),
		mustStruct(t, map[string]any{"working_directory": "/tmp", "timeout": nil}),
	} {
		if problem := customProblem(spec, custom); problem != "" {
			t.Errorf("custom %v: unexpected problem %q", custom, problem)
		}
	}
}

// A problem no single field shows (the same field under its JSON and its proto name) is reported at the top.
func TestCustomProblemWithoutAFieldToBlame(t *testing.T) {
	spec := (&batchv1.BatchJob{}).ProtoReflect().Descriptor()
	got := customProblem(spec, mustStruct(t, map[string]any{"workingDirectory": "/a", "working_directory": "/b"}))
	if !strings.HasPrefix(got, "template.custom: ") || len(got) == len("template.custom: ") {
		t.Fatalf("problem %q", got)
	}
}

func TestJSONStringQuotesAsJavaScriptDoes(t *testing.T) {
	for in, want := range map[string]string{`a<b>&c`: `"a<b>&c"`, `q"uote`: `"q\"uote"`, "tab\t": `"tab\t"`, "é": `"é"`} {
		if got := jsonString(in); got != want {
			t.Errorf("jsonString(%q) = %s, want %s", in, got, want)
		}
	}
}
