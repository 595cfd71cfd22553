package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"connectrpc.com/connect"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Validate checks template.custom against the specification of the plugin serving the template's type and
// version, with proto3 JSON rules (protojson, unknown fields rejected), as the host's CreateTask does. It
// sends no task. A misfit is INVALID_ARGUMENT "template.custom.<path>: <problem> (template.custom must parse
// as <message>)", the path in the host's form; a type or version nobody serves is NOT_FOUND; a plugin
// without a specification accepts any custom.
func (c *Client) Validate(ctx context.Context, template *pb.TaskTemplate) error {
	if template == nil {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("template: is required"))
	}
	if template.GetType() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("template.type: is required"))
	}
	schema, err := c.specs.lookup(ctx, template.GetType(), template.GetTypeVersion())
	if err != nil {
		return err
	}
	if schema.Message == nil {
		return nil // the plugin takes custom as it comes
	}
	if problem := customProblem(schema.Message, template.GetCustom()); problem != "" {
		return connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("%s (template.custom must parse as %s)", problem, schema.Message.FullName()))
	}
	return nil
}

// customProblem says why custom does not parse as spec, as "<field path>: <problem>", or "" when it parses.
// protojson names what failed but never with its path from the top, and not at all inside well-known types
// (a bad Duration deep down names only the Duration), so the path is found as the host finds it: decoding
// one field at a time and descending into the one that fails.
func customProblem(spec protoreflect.MessageDescriptor, custom *structpb.Struct) string {
	if custom == nil {
		custom = &structpb.Struct{}
	}
	value := structpb.NewStructValue(custom)
	err := decode(spec, value)
	if err == nil {
		return ""
	}
	if found := locate(spec, value, "template.custom"); found != "" {
		return found
	}
	return "template.custom: " + cleanProtoError(err)
}

// decode parses value's proto3 JSON as a message of desc, rejecting unknown fields (protojson's default).
func decode(desc protoreflect.MessageDescriptor, value *structpb.Value) error {
	data, err := protojson.Marshal(value)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(data, dynamicpb.NewMessage(desc))
}

// locate returns the first field of value that does not decode as part of spec, with the deepest path that
// can be named, or "". Keys go in sorted order because a Struct's are unordered, and a caller who fixes one
// field and tries again should see the next problem in a stable order.
func locate(spec protoreflect.MessageDescriptor, value *structpb.Value, path string) string {
	object := value.GetStructValue()
	// Well-known types have their own JSON forms (a Duration is a string, a Struct any object): their
	// fields are no path a user wrote.
	if object == nil || strings.HasPrefix(string(spec.FullName()), "google.protobuf.") {
		return ""
	}
	keys := make([]string, 0, len(object.GetFields()))
	for key := range object.GetFields() {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		item := object.GetFields()[key]
		fieldPath := path + "." + key
		field := spec.Fields().ByJSONName(key)
		if field == nil {
			field = spec.Fields().ByName(protoreflect.Name(key))
		}
		if field == nil {
			return fmt.Sprintf("%s: %s has no field %q", fieldPath, spec.FullName(), key)
		}
		single := structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{key: item}})
		if err := decode(spec, single); err != nil {
			if found := descend(field, item, fieldPath); found != "" {
				return found
			}
			return fieldPath + ": " + cleanProtoError(err)
		}
	}
	return ""
}

// descend looks inside a failing field whose value holds messages: the message itself, each message of a
// list ("path[2]") or each message value of a map ("path[\"key\"]").
func descend(field protoreflect.FieldDescriptor, value *structpb.Value, path string) string {
	switch {
	case field.IsMap():
		entries := value.GetStructValue()
		if field.MapValue().Message() == nil || entries == nil {
			return ""
		}
		keys := make([]string, 0, len(entries.GetFields()))
		for key := range entries.GetFields() {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			if found := locate(field.MapValue().Message(), entries.GetFields()[key], path+"["+jsonString(key)+"]"); found != "" {
				return found
			}
		}
	case field.IsList():
		items := value.GetListValue()
		if field.Message() == nil || items == nil {
			return ""
		}
		for index, item := range items.GetValues() {
			if found := locate(field.Message(), item, fmt.Sprintf("%s[%d]", path, index)); found != "" {
				return found
			}
		}
	case field.Message() != nil:
		return locate(field.Message(), value, path)
	}
	return ""
}

// jsonString quotes a map key as JavaScript's JSON.stringify does, so the path reads as the host's;
// json.Marshal alone would also escape <, > and &.
func jsonString(s string) string {
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(s) // a string always encodes
	return strings.TrimSuffix(buffer.String(), "\n")
}

// protojson prefixes errors with "proto:" and a space or, at random, a no-break space (to stop callers
// matching them), and puts positions in a JSON text the user never wrote at the start or after "syntax
// error"; neither helps the reader.
var (
	protoErrorPrefix   = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)
	protoErrorPosition = regexp.MustCompile(`[\s\x{00a0}]*\(line \d+:\d+\)`)
)

func cleanProtoError(err error) string {
	return protoErrorPosition.ReplaceAllString(protoErrorPrefix.ReplaceAllString(err.Error(), ""), "")
}
