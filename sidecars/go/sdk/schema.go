package sdk

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Schema is what a task type and version expect in template.custom: the Plugin Specification of the live
// plugin serving them. String describes it for people; Message is the descriptor for programs (build
// values with dynamicpb, walk the fields with protoreflect).
type Schema struct {
	TaskType      string
	TypeVersion   int32
	Plugin        string // the serving plugin's name
	PluginVersion string // and its implementation version
	// Message is the specification, resolved from the plugin's own FileDescriptorSet; nil when the plugin
	// declares none and takes any custom.
	Message protoreflect.MessageDescriptor
}

// Schema returns the specification of the live plugin serving taskType at version. Errors are NOT_FOUND
// for a type or version nobody serves (naming the versions that are), FAILED_PRECONDITION for a
// specification that does not resolve, or the registry call's own.
func (c *Client) Schema(ctx context.Context, taskType string, version int32) (*Schema, error) {
	schema, err := c.specs.lookup(ctx, taskType, version)
	if err != nil {
		return nil, err
	}
	return &schema, nil
}

// String describes the schema as custom's proto3 JSON sees it: one line per field with its JSON name and
// type, nested messages indented below their field, enum values and the JSON forms of well-known types
// spelled out. Leading comments appear when the plugin's descriptor set carries source info; the kits'
// sets usually do not, since generated code drops it.
//
//	task type "batch" v1, plugin batch 1.0.0: custom is pluginbridge.plugins.batch.v1.BatchJob
//	  command: string
//	  args: repeated string
//	  env: map<string, string>
//	  workingDirectory: string
//	  timeout: google.protobuf.Duration (a string such as "1.5s")
func (s *Schema) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "task type %q v%d, plugin %s %s: ", s.TaskType, s.TypeVersion, s.Plugin, s.PluginVersion)
	if s.Message == nil {
		b.WriteString("no specification, custom is not checked\n")
		return b.String()
	}
	fmt.Fprintf(&b, "custom is %s\n", s.Message.FullName())
	writeComment(&b, s.Message, "")
	writeFields(&b, s.Message, "  ", map[protoreflect.FullName]bool{s.Message.FullName(): true})
	return b.String()
}

// writeFields writes message's fields at indent, each nested message once under its field. open holds
// the messages being described on the way down, so a recursive message is named instead of expanded forever.
func writeFields(b *strings.Builder, message protoreflect.MessageDescriptor, indent string, open map[protoreflect.FullName]bool) {
	fields := message.Fields()
	for i := range fields.Len() {
		field := fields.Get(i)
		writeComment(b, field, indent)
		fmt.Fprintf(b, "%s%s: %s", indent, field.JSONName(), fieldType(field))
		if oneof := field.ContainingOneof(); oneof != nil && !oneof.IsSynthetic() {
			fmt.Fprintf(b, ", in oneof %s", oneof.Name())
		}
		inner := field.Message()
		if field.IsMap() {
			inner = field.MapValue().Message()
		}
		switch {
		case inner == nil || isWellKnown(inner):
			b.WriteString("\n")
		case open[inner.FullName()]:
			b.WriteString(" (recursive, described above)\n")
		default:
			b.WriteString("\n")
			open[inner.FullName()] = true
			writeFields(b, inner, indent+"  ", open)
			delete(open, inner.FullName())
		}
	}
}

func fieldType(field protoreflect.FieldDescriptor) string {
	switch {
	case field.IsMap():
		return fmt.Sprintf("map<%s, %s>", field.MapKey().Kind(), valueType(field.MapValue()))
	case field.IsList():
		return "repeated " + valueType(field)
	case field.HasOptionalKeyword():
		return "optional " + valueType(field)
	}
	return valueType(field)
}

// valueType names one value of field: a scalar's kind, a message's full name, an enum with its values;
// where proto3 JSON writes the value in a way the name does not tell, the form is added in parentheses.
func valueType(field protoreflect.FieldDescriptor) string {
	switch {
	case field.Enum() != nil:
		values := field.Enum().Values()
		names := make([]string, values.Len())
		for i := range values.Len() {
			names[i] = string(values.Get(i).Name())
		}
		return fmt.Sprintf("%s (one of %s)", field.Enum().FullName(), strings.Join(names, ", "))
	case field.Message() != nil:
		if form, ok := wellKnownForms[field.Message().FullName()]; ok {
			return fmt.Sprintf("%s (%s)", field.Message().FullName(), form)
		}
		return string(field.Message().FullName())
	case field.Kind() == protoreflect.BytesKind:
		return "bytes (base64)"
	}
	return field.Kind().String()
}

func isWellKnown(message protoreflect.MessageDescriptor) bool {
	return message.ParentFile().Package() == "google.protobuf"
}

// wellKnownForms are the proto3 JSON forms of the well-known types a specification is likely to use.
var wellKnownForms = map[protoreflect.FullName]string{
	"google.protobuf.Duration":    `a string such as "1.5s"`,
	"google.protobuf.Timestamp":   `an RFC 3339 string such as "2025-01-02T15:04:05Z"`,
	"google.protobuf.Struct":      "any JSON object",
	"google.protobuf.Value":       "any JSON value",
	"google.protobuf.ListValue":   "any JSON array",
	"google.protobuf.FieldMask":   `a string of comma-separated paths such as "a.b,c"`,
	"google.protobuf.Any":         `a JSON object with "@type"`,
	"google.protobuf.Empty":       "{}",
	"google.protobuf.StringValue": "a string or null",
	"google.protobuf.BytesValue":  "a base64 string or null",
	"google.protobuf.BoolValue":   "a boolean or null",
	"google.protobuf.DoubleValue": "a number or null",
	"google.protobuf.FloatValue":  "a number or null",
	"google.protobuf.Int32Value":  "a number or null",
	"google.protobuf.UInt32Value": "a number or null",
	"google.protobuf.Int64Value":  "a number or decimal string, or null",
	"google.protobuf.UInt64Value": "a number or decimal string, or null",
}

// writeComment writes the descriptor's leading comment as "//" lines, when the set carried source info.
func writeComment(b *strings.Builder, descriptor protoreflect.Descriptor, indent string) {
	comment := strings.TrimRight(descriptor.ParentFile().SourceLocations().ByDescriptor(descriptor).LeadingComments, "\n")
	if comment == "" {
		return
	}
	for line := range strings.SplitSeq(comment, "\n") {
		fmt.Fprintf(b, "%s//%s\n", indent, strings.TrimRight(line, " "))
	}
}
