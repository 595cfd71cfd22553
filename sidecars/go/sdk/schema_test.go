package sdk

import (
	"testing"

	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestSchemaStringOfBatchJob(t *testing.T) {
	schema := &Schema{TaskType: "batch", TypeVersion: 1, Plugin: "batch", PluginVersion: "1.0.0",
		Message: (&batchv1.BatchJob{}).ProtoReflect().Descriptor()}
	want := `task type "batch" v1, plugin batch 1.0.0: custom is pluginbridge.plugins.batch.v1.BatchJob
  command: string
  args: repeated string
  env: map<string, string>
  workingDirectory: string
  timeout: google.protobuf.Duration (a string such as "1.5s")
`
	if got := schema.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSchemaStringWithoutSpecification(t *testing.T) {
	schema := &Schema{TaskType: "free", TypeVersion: 2, Plugin: "free", PluginVersion: "0.1.0"}
	if got := schema.String(); got != "task type \"free\" v2, plugin free 0.1.0: no specification, custom is not checked\n" {
		t.Fatalf("got %q", got)
	}
}

// A hand-made file with what the example specifications lack: source info, nesting, recursion, an enum,
// a map of messages, a oneof, an optional field and bytes.
func TestSchemaStringOfNestedMessagesWithComments(t *testing.T) {
	field := func(name, json string, number int32, kind descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(json), Number: proto.Int32(number),
			Type: kind.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	repeated := func(f *descriptorpb.FieldDescriptorProto) *descriptorpb.FieldDescriptorProto {
		f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		return f
	}
	inOneof := func(f *descriptorpb.FieldDescriptorProto, index int32) *descriptorpb.FieldDescriptorProto {
		f.OneofIndex = proto.Int32(index)
		return f
	}
	optional := inOneof(field("flag", "flag", 7, descriptorpb.FieldDescriptorProto_TYPE_BOOL, ""), 1)
	optional.Proto3Optional = proto.Bool(true)
	node := &descriptorpb.DescriptorProto{
		Name: proto.String("Node"),
		Field: []*descriptorpb.FieldDescriptorProto{
			field("display_name", "displayName", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
			field("child", "child", 2, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".demo.v1.Node"),
			field("color", "color", 3, descriptorpb.FieldDescriptorProto_TYPE_ENUM, ".demo.v1.Color"),
			repeated(field("by_name", "byName", 4, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".demo.v1.Node.ByNameEntry")),
			inOneof(field("text", "text", 5, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""), 0),
			inOneof(field("wait", "wait", 6, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".google.protobuf.Duration"), 0),
			optional,
			repeated(field("blobs", "blobs", 8, descriptorpb.FieldDescriptorProto_TYPE_BYTES, "")),
		},
		NestedType: []*descriptorpb.DescriptorProto{{
			Name:    proto.String("ByNameEntry"),
			Field:   []*descriptorpb.FieldDescriptorProto{field("key", "key", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""), field("value", "value", 2, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".demo.v1.Leaf")},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}},
		OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("payload")}, {Name: proto.String("_flag")}},
	}
	leaf := &descriptorpb.DescriptorProto{Name: proto.String("Leaf"), Field: []*descriptorpb.FieldDescriptorProto{
		field("weight", "weight", 1, descriptorpb.FieldDescriptorProto_TYPE_INT64, ""),
	}}
	comment := func(text string, path ...int32) *descriptorpb.SourceCodeInfo_Location {
		return &descriptorpb.SourceCodeInfo_Location{Path: path, Span: []int32{0, 0, 1}, LeadingComments: proto.String(text)}
	}
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("demo/v1/demo.proto"), Package: proto.String("demo.v1"), Syntax: proto.String("proto3"),
		Dependency:  []string{"google/protobuf/duration.proto"},
		MessageType: []*descriptorpb.DescriptorProto{node, leaf},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Color"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("COLOR_UNSPECIFIED"), Number: proto.Int32(0)}, {Name: proto.String("COLOR_RED"), Number: proto.Int32(1)},
		}}},
		SourceCodeInfo: &descriptorpb.SourceCodeInfo{Location: []*descriptorpb.SourceCodeInfo_Location{
			comment(" A node of a tree.\n", 4, 0),
			comment(" What people see.\n Never empty.\n", 4, 0, 2, 0),
			comment(" How heavy.\n", 4, 1, 2, 0),
		}},
	}
	files, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(durationpb.File_google_protobuf_duration_proto), file,
	}})
	if err != nil {
		t.Fatal(err)
	}
	found, err := files.FindDescriptorByName("demo.v1.Node")
	if err != nil {
		t.Fatal(err)
	}
	schema := &Schema{TaskType: "tree", TypeVersion: 3, Plugin: "trees", PluginVersion: "2.0.0", Message: found.(protoreflect.MessageDescriptor)}
	want := `task type "tree" v3, plugin trees 2.0.0: custom is demo.v1.Node
// A node of a tree.
  // What people see.
  // Never empty.
  displayName: string
  child: demo.v1.Node (recursive, described above)
  color: demo.v1.Color (one of COLOR_UNSPECIFIED, COLOR_RED)
  byName: map<string, demo.v1.Leaf>
    // How heavy.
    weight: int64
  text: string, in oneof payload
  wait: google.protobuf.Duration (a string such as "1.5s"), in oneof payload
  flag: optional bool
  blobs: repeated bytes (base64)
`
	if got := schema.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
