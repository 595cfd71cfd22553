package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1/pluginbridgev1connect"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// specifications learns from the host's PluginRegistryService which message custom must parse as for a
// (task type, version), and keeps each answer for a short while: Validate may run before every submission,
// and a registry call each time would double the traffic of a busy submitter.
type specifications struct {
	registry pluginbridgev1connect.PluginRegistryServiceClient
	ttl      time.Duration

	mu     sync.Mutex
	cached map[taskTypeVersion]cachedSchema
}

type taskTypeVersion struct {
	taskType string
	version  int32
}

type cachedSchema struct {
	schema  Schema
	expires time.Time
}

func newSpecifications(registry pluginbridgev1connect.PluginRegistryServiceClient, ttl time.Duration) *specifications {
	return &specifications{registry: registry, ttl: ttl, cached: map[taskTypeVersion]cachedSchema{}}
}

// lookup returns the schema of (taskType, version), from the cache while it is fresh. Only successes are
// cached: a type that is unknown now may be served a moment later, when its plugin announces itself.
func (s *specifications) lookup(ctx context.Context, taskType string, version int32) (Schema, error) {
	key := taskTypeVersion{taskType, version}
	s.mu.Lock()
	entry, ok := s.cached[key]
	s.mu.Unlock()
	if ok && time.Now().Before(entry.expires) {
		return entry.schema, nil
	}
	schema, err := s.fetch(ctx, taskType, version)
	if err != nil {
		return Schema{}, err
	}
	if s.ttl > 0 {
		s.mu.Lock()
		s.cached[key] = cachedSchema{schema: schema, expires: time.Now().Add(s.ttl)}
		s.mu.Unlock()
	}
	return schema, nil
}

// fetch picks a live, non-draining instance serving exactly (taskType, version), as the host's routing
// table does for CreateTask, and builds its specification. When several plugins or plugin versions serve
// the pair, the first in the registry's order (plugin name, then version, then instance id) is taken.
func (s *specifications) fetch(ctx context.Context, taskType string, version int32) (Schema, error) {
	response, err := s.registry.ListPlugins(ctx, connect.NewRequest(&pb.ListPluginsRequest{TaskType: taskType}))
	if err != nil {
		return Schema{}, err
	}
	var chosen *pb.PluginInstance
	servesType := false
	var versions []int32 // offered by instances that take new work, to say what the caller could ask for
	for _, plugin := range response.Msg.GetPlugins() {
		for _, instance := range plugin.GetInstances() {
			for _, supported := range instance.GetDescriptor_().GetTaskTypes() {
				if supported.GetType() != taskType {
					continue
				}
				servesType = true
				if instance.GetDraining() {
					continue
				}
				if !slices.Contains(versions, supported.GetVersion()) {
					versions = append(versions, supported.GetVersion())
				}
				if supported.GetVersion() == version && chosen == nil {
					chosen = instance
				}
			}
		}
	}
	if chosen == nil {
		return Schema{}, notServed(taskType, version, servesType, versions)
	}
	return schemaOf(taskType, version, chosen.GetDescriptor_())
}

// notServed words the NOT_FOUND as the host does for CreateTask, telling an unknown type from an unknown
// version, and adds the versions that would work.
func notServed(taskType string, version int32, servesType bool, versions []int32) error {
	if !servesType {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("no live plugin serves task type %q", taskType))
	}
	available := "every instance serving it is draining"
	if len(versions) > 0 {
		slices.Sort(versions)
		names := make([]string, len(versions))
		for i, v := range versions {
			names[i] = strconv.Itoa(int(v))
		}
		available = "live type_versions: " + strings.Join(names, ", ")
	}
	return connect.NewError(connect.CodeNotFound,
		fmt.Errorf("task type %q has no live plugin for type_version %d (%s)", taskType, version, available))
}

// schemaOf resolves the descriptor's specification with nothing but its own FileDescriptorSet, as the host
// does: the SDK need not have the plugin's generated code. A plugin that declares no specification gives a
// Schema without a message; one whose set does not resolve is FAILED_PRECONDITION, the host's code for it.
func schemaOf(taskType string, version int32, descriptor *pb.PluginDescriptor) (Schema, error) {
	schema := Schema{TaskType: taskType, TypeVersion: version, Plugin: descriptor.GetName(), PluginVersion: descriptor.GetVersion()}
	spec := descriptor.GetSpecification()
	if spec.GetFileDescriptorSet() == nil || spec.GetMessageName() == "" {
		return schema, nil
	}
	unusable := func(err error) error {
		return connect.NewError(connect.CodeFailedPrecondition,
			fmt.Errorf("the plugin for %q declares an unusable specification: %w", taskType, err))
	}
	files, err := protodesc.NewFiles(spec.GetFileDescriptorSet())
	if err != nil {
		return Schema{}, unusable(err)
	}
	found, err := files.FindDescriptorByName(protoreflect.FullName(spec.GetMessageName()))
	if err != nil {
		return Schema{}, unusable(fmt.Errorf("message %s is not in its file set", spec.GetMessageName()))
	}
	message, ok := found.(protoreflect.MessageDescriptor)
	if !ok {
		return Schema{}, unusable(errors.New(spec.GetMessageName() + " is not a message"))
	}
	schema.Message = message
	return schema, nil
}
