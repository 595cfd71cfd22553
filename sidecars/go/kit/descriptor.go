package kit

import (
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FileDescriptorSetFor returns the file that defines desc and all of its transitive imports (well-known
// types too), each once, every file after the files it imports: a host or SDK can build a registry from it
// (protodesc.NewFiles, createFileRegistry) and validate custom without the plugin's code.
func FileDescriptorSetFor(desc protoreflect.MessageDescriptor) *descriptorpb.FileDescriptorSet {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var visit func(file protoreflect.FileDescriptor)
	visit = func(file protoreflect.FileDescriptor) {
		if seen[file.Path()] {
			return
		}
		seen[file.Path()] = true
		imports := file.Imports()
		for i := 0; i < imports.Len(); i++ {
			visit(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(file))
	}
	visit(desc.ParentFile())
	return set
}

func durationOrNil(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// descriptorOf builds the PluginDescriptor that Describe returns and every announcement carries.
func descriptorOf(d declaration) *pb.PluginDescriptor {
	taskTypes := make([]*pb.SupportedTaskType, len(d.taskTypes))
	for i, t := range d.taskTypes {
		taskTypes[i] = &pb.SupportedTaskType{Type: t.Type, Version: t.Version, MinVersion: t.MinVersion}
	}
	p := d.properties
	return &pb.PluginDescriptor{
		Name:                     d.name,
		Version:                  d.version,
		TaskTypes:                taskTypes,
		Kind:                     d.kind,
		DefaultForUnclaimedTypes: d.defaultForUnclaimedTypes,
		Properties: &pb.PluginProperties{
			ResyncInterval:    durationOrNil(p.ResyncInterval),
			CreateTimeout:     durationOrNil(p.CreateTimeout),
			GetTimeout:        durationOrNil(p.GetTimeout),
			DeleteTimeout:     durationOrNil(p.DeleteTimeout),
			DoTimeout:         durationOrNil(p.DoTimeout),
			HandleTimeout:     durationOrNil(p.HandleTimeout),
			AbortTimeout:      durationOrNil(p.AbortTimeout),
			FinalizeTimeout:   durationOrNil(p.FinalizeTimeout),
			MaxSystemFailures: p.MaxSystemFailures,
			ReadLimit:         rateLimitOrNil(p.ReadLimit),
			WriteLimit:        rateLimitOrNil(p.WriteLimit),
			Quota:             quotaOrNil(p.Quota),
		},
		Specification: &pb.PluginSpecification{
			FileDescriptorSet: FileDescriptorSetFor(d.spec),
			MessageName:       string(d.spec.FullName()),
		},
	}
}

func rateLimitOrNil(limit *RateLimit) *pb.RateLimit {
	if limit == nil {
		return nil
	}
	return &pb.RateLimit{Qps: limit.QPS, Burst: limit.Burst}
}

func quotaOrNil(quota *ResourceQuota) *pb.ResourceQuota {
	if quota == nil {
		return nil
	}
	return &pb.ResourceQuota{Total: quota.Total, PerNamespace: quota.PerNamespace}
}
