package kit

import (
	"strings"
	"testing"

	conformancev1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/conformance/v1"
	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

func TestDecodeSpec(t *testing.T) {
	spec, err := DecodeSpec[*batchv1.BatchJob](mustStruct(t, map[string]any{
		"command": "echo", "args": []any{"a", "b"}, "env": map[string]any{"K": "V"}, "timeout": "1.5s", "workingDirectory": "/tmp",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if spec.GetCommand() != "echo" || len(spec.GetArgs()) != 2 || spec.GetEnv()["K"] != "V" ||
		spec.GetTimeout().AsDuration().Milliseconds() != 1500 || spec.GetWorkingDirectory() != "/tmp" {
		t.Fatalf("decoded %v", spec)
	}
	empty, err := DecodeSpec[*batchv1.BatchJob](nil)
	if err != nil || empty == nil || empty.GetCommand() != "" {
		t.Fatalf("nil custom: %v, %v", empty, err)
	}
}

func TestDecodeSpecNamesTheField(t *testing.T) {
	cases := []struct {
		custom map[string]any
		prefix string
	}{
		{map[string]any{"command": "echo", "bogus": 1}, "template.custom.bogus: unknown field"},
		{map[string]any{"timeout": "abc"}, "template.custom.timeout: "},
		{map[string]any{"args": "not a list"}, "template.custom.args: "},
		{map[string]any{"command": 5}, "template.custom.command: "},
	}
	for _, c := range cases {
		_, err := DecodeSpec[*batchv1.BatchJob](mustStruct(t, c.custom))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: code %v (%v), want INVALID_ARGUMENT", c.custom, status.Code(err), err)
			continue
		}
		message := status.Convert(err).Message()
		if !strings.HasPrefix(message, c.prefix) || !strings.HasSuffix(message, "(expected pluginbridge.plugins.batch.v1.BatchJob)") {
			t.Errorf("%v: message %q, want prefix %q", c.custom, message, c.prefix)
		}
	}
	_, err := DecodeSpec[*conformancev1.Script](mustStruct(t, map[string]any{"polls": "many"}))
	if !strings.HasPrefix(status.Convert(err).Message(), "template.custom.polls: ") {
		t.Errorf("polls: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	if got := status.Code(toStatus(Errorf(codes.FailedPrecondition, "x"))); got != codes.FailedPrecondition {
		t.Errorf("kit error: %v", got)
	}
	if got := status.Code(toStatus(status.Error(codes.NotFound, "x"))); got != codes.NotFound {
		t.Errorf("status error: %v", got)
	}
	wrapped := toStatus(errorsJoin(Errorf(codes.PermissionDenied, "inner")))
	if status.Code(wrapped) != codes.PermissionDenied {
		t.Errorf("wrapped kit error: %v", wrapped)
	}
	plain := toStatus(errString("boom"))
	if status.Code(plain) != codes.Internal || status.Convert(plain).Message() != "boom" {
		t.Errorf("plain error: %v", plain)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

type wrapper struct{ inner error }

func (w wrapper) Error() string { return "outer: " + w.inner.Error() }
func (w wrapper) Unwrap() error { return w.inner }

func errorsJoin(err error) error { return wrapper{err} }
