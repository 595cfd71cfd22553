package sdk

import (
	"fmt"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// TemplateOption fills the parts of a TaskTemplate other than its type and specification.
type TemplateOption func(*pb.TaskTemplate)

// WithTimeout bounds one attempt; when it passes the host deletes the remote work and fails the attempt.
func WithTimeout(d time.Duration) TemplateOption {
	return func(t *pb.TaskTemplate) { metadata(t).Timeout = durationpb.New(d) }
}

// WithRetries sets how many times a retryable failure starts a new attempt.
func WithRetries(n uint32) TemplateOption {
	return func(t *pb.TaskTemplate) { metadata(t).Retries = n }
}

// WithInterruptible marks the task as tolerant of interruptible capacity.
func WithInterruptible() TemplateOption {
	return func(t *pb.TaskTemplate) { metadata(t).Interruptible = true }
}

// WithSecret asks for one secret, handed to the plugin resolved as "group/key".
func WithSecret(group, key string) TemplateOption {
	return func(t *pb.TaskTemplate) { t.Secrets = append(t.Secrets, &pb.SecretRequest{Group: group, Key: key}) }
}

// WithConfig sets one entry of the template's free-form configuration.
func WithConfig(key, value string) TemplateOption {
	return func(t *pb.TaskTemplate) {
		if t.Config == nil {
			t.Config = map[string]string{}
		}
		t.Config[key] = value
	}
}

// WithID names the task definition (informational).
func WithID(id *pb.TaskIdentifier) TemplateOption { return func(t *pb.TaskTemplate) { t.Id = id } }

// WithInterface declares the task's named inputs and outputs.
func WithInterface(i *pb.TypedInterface) TemplateOption {
	return func(t *pb.TaskTemplate) { t.Interface = i }
}

func metadata(t *pb.TaskTemplate) *pb.TaskMetadata {
	if t.Metadata == nil {
		t.Metadata = &pb.TaskMetadata{}
	}
	return t.Metadata
}

// Template builds a TaskTemplate for task type taskType at version, with custom set to the proto3 JSON of
// the typed specification spec, after flytekit's get_custom: callers fill a generated message with type
// checking, and the host validates custom against the specification the plugin declares.
//
//	tmpl, err := sdk.Template(&batchv1.BatchJob{Command: "echo", Args: []string{"hi"}}, "batch", 1)
func Template(spec proto.Message, taskType string, version int32, options ...TemplateOption) (*pb.TaskTemplate, error) {
	custom, err := SpecStruct(spec)
	if err != nil {
		return nil, err
	}
	t := &pb.TaskTemplate{Type: taskType, TypeVersion: version, Custom: custom}
	for _, option := range options {
		option(t)
	}
	return t, nil
}

// SpecStruct is spec's proto3 JSON as a Struct, as TaskTemplate.custom carries it.
func SpecStruct(spec proto.Message) (*structpb.Struct, error) {
	data, err := protojson.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", spec.ProtoReflect().Descriptor().FullName(), err)
	}
	custom := &structpb.Struct{}
	if err := protojson.Unmarshal(data, custom); err != nil {
		// Well-known types such as Duration have a non-object JSON form; a Struct cannot hold them.
		return nil, fmt.Errorf("%s does not encode to a JSON object and cannot be a Plugin Specification",
			spec.ProtoReflect().Descriptor().FullName())
	}
	return custom, nil
}
