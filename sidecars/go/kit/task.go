package kit

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"sort"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Task is everything one plugin call gets about the execution it works on, with template.custom decoded
// into the plugin's specification. The call's context.Context (deadline, cancellation) is the method's
// first argument.
type Task[S proto.Message] struct {
	// Spec is template.custom, decoded into the plugin's specification message.
	Spec S
	// ExecutionID and Attempt (from 1) are the idempotency key of the call.
	ExecutionID string
	Attempt     uint32
	// Template is the task template as submitted.
	Template *pb.TaskTemplate
	// Inputs are the task's inputs, as JSON (never nil).
	Inputs *structpb.Struct
	// Metadata holds namespace, labels, owner and the like (never nil).
	Metadata *pb.TaskExecutionMetadata
	// Secrets are the secrets the template requested, resolved by the host, keyed "group/key".
	Secrets map[string]string
	// TaskContext is the raw message, for anything not lifted above.
	TaskContext *pb.TaskContext
	// Log writes to stderr, tagged with the plugin, execution and attempt.
	Log *slog.Logger

	// server is the sidecar that made the call, for Push; nil for a Task made outside the kit.
	server *Server
}

// newTask checks the TaskContext of a call and decodes its specification. A TaskContext without an
// execution id and attempt a host could have given (executionid.go; attempts start at 1) or without a template
// is the caller's fault: INVALID_ARGUMENT.
func newTask[S proto.Message](tc *pb.TaskContext, log *slog.Logger, server *Server) (*Task[S], error) {
	if tc == nil {
		return nil, Errorf(codes.InvalidArgument, "context is required")
	}
	executionID := tc.GetExecutionId().GetId()
	if executionID == "" {
		return nil, Errorf(codes.InvalidArgument, "context.execution_id.id is required")
	}
	if !isExecutionID(executionID) {
		return nil, Errorf(codes.InvalidArgument, "context.execution_id.id %s is not an execution id: %s",
			quoteInput(executionID), executionIDRule)
	}
	attempt := tc.GetExecutionId().GetAttempt()
	if attempt < 1 {
		return nil, Errorf(codes.InvalidArgument, "context.execution_id.attempt must be at least 1")
	}
	if tc.GetTemplate() == nil {
		return nil, Errorf(codes.InvalidArgument, "context.template is required")
	}
	spec, err := DecodeSpec[S](tc.GetTemplate().GetCustom())
	if err != nil {
		return nil, err
	}
	inputs := tc.GetInputs()
	if inputs == nil {
		inputs = &structpb.Struct{}
	}
	metadata := tc.GetMetadata()
	if metadata == nil {
		metadata = &pb.TaskExecutionMetadata{}
	}
	secrets := make(map[string]string, len(tc.GetSecrets()))
	for k, v := range tc.GetSecrets() {
		secrets[k] = v
	}
	return &Task[S]{
		Spec:        spec,
		ExecutionID: executionID,
		Attempt:     attempt,
		Template:    tc.GetTemplate(),
		Inputs:      inputs,
		Metadata:    metadata,
		Secrets:     secrets,
		TaskContext: tc,
		Log:         log.With("execution", executionID, "attempt", attempt),
		server:      server,
	}, nil
}

// DecodeSpec decodes template.custom into a new S with protojson, unknown fields rejected. A custom that
// does not fit is the submitter's fault: INVALID_ARGUMENT "template.custom.<field path>: <what> (expected
// <message name>)", the same message the TypeScript kit gives.
func DecodeSpec[S proto.Message](custom *structpb.Struct) (S, error) {
	var zero S
	desc := zero.ProtoReflect().Descriptor()
	spec := zero.ProtoReflect().Type().New().Interface().(S)
	if custom == nil {
		return spec, nil
	}
	data, err := protojson.Marshal(custom)
	if err != nil {
		return zero, Errorf(codes.InvalidArgument, "template.custom: %v", cleanProtoError(err))
	}
	if err := protojson.Unmarshal(data, spec); err != nil {
		where, what := "template.custom", cleanProtoError(err)
		if path, message, found := locateJSONError(desc, custom, "template.custom"); found {
			where, what = path, message
		}
		return zero, Errorf(codes.InvalidArgument, "%s: %s (expected %s)", where, what, desc.FullName())
	}
	return spec, nil
}

// locateJSONError finds the deepest field path whose value fails to decode, by decoding one key at a time:
// protojson names the field in most errors but never with its path from the top, and not at all inside
// well-known types such as Duration.
func locateJSONError(desc protoreflect.MessageDescriptor, object *structpb.Struct, path string) (string, string, bool) {
	keys := make([]string, 0, len(object.GetFields()))
	for key := range object.GetFields() {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		value := object.GetFields()[key]
		field := desc.Fields().ByJSONName(key)
		if field == nil {
			field = desc.Fields().ByName(protoreflect.Name(key))
		}
		if field == nil {
			return path + "." + unknownKeyStep(key), "unknown field", true
		}
		fieldPath := path + "." + string(field.Name())
		single, _ := json.Marshal(map[string]any{key: value.AsInterface()})
		probe := dynamicNew(desc)
		err := protojson.Unmarshal(single, probe)
		if err == nil {
			continue
		}
		if field.Kind() == protoreflect.MessageKind && !field.IsList() && !field.IsMap() && value.GetStructValue() != nil &&
			field.Message().FullName().Parent() != "google.protobuf" {
			if inner, message, found := locateJSONError(field.Message(), value.GetStructValue(), fieldPath); found {
				return inner, message, true
			}
		}
		return fieldPath, cleanProtoError(err), true
	}
	return "", "", false
}

// unknownKeyStep is an unknown key as a step of a field path: as it is, or quoted and cut when it is too long
// to repeat whole.
func unknownKeyStep(key string) string {
	if _, rest := cutRunes(key, quotedInputLength); rest {
		return quoteInput(key)
	}
	return key
}

// dynamicNew makes an empty message of any descriptor, also nested ones that have no Go type at hand.
func dynamicNew(desc protoreflect.MessageDescriptor) proto.Message {
	return dynamicpb.NewMessage(desc)
}

// protojson prefixes errors with "proto:" followed by a space or, at random, a no-break space (to stop
// callers matching them), and a position in a JSON text the user never wrote.
var protoErrorPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

func cleanProtoError(err error) string {
	return protoErrorPrefix.ReplaceAllString(err.Error(), "")
}
