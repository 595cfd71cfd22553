package kit

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TaskType is one (type, type_version) pair a plugin serves, as in TaskTemplate.type and type_version.
type TaskType struct {
	Type    string
	Version int32
	// MinVersion, when set, is the oldest type version also accepted: the host sends tasks of a version from
	// here up to Version to this plugin when no live plugin serves their exact version (the newest such plugin
	// wins). nil: Version only. [AcceptingFrom] sets it.
	MinVersion *int32
}

// AcceptingFrom returns the task type also accepting type versions from min up to its Version.
func (t TaskType) AcceptingFrom(min int32) TaskType {
	t.MinVersion = &min
	return t
}

// Properties tell the host how to drive the plugin. Zero values take the host's defaults (resync 5 s,
// Create 30 s, Get 10 s, Delete 30 s, Do 60 s, Handle 10 s, Abort 30 s, Finalize 30 s, 5 system failures).
// The timeouts are the deadlines of one call each; only those of the plugin's own kind matter.
type Properties struct {
	ResyncInterval    time.Duration
	CreateTimeout     time.Duration
	GetTimeout        time.Duration
	DeleteTimeout     time.Duration
	DoTimeout         time.Duration
	HandleTimeout     time.Duration
	AbortTimeout      time.Duration
	FinalizeTimeout   time.Duration
	MaxSystemFailures uint32
	// ReadLimit bounds how often each host calls Get; nil: no limit.
	ReadLimit *RateLimit
	// WriteLimit bounds how often each host calls Create, Delete, Do, Handle, Abort and Finalize; nil: no limit.
	WriteLimit *RateLimit
	// Quota bounds how many executions hold the plugin at once, across all hosts; nil: no quota.
	Quota *ResourceQuota
}

// ResourceQuota is Flyte's ResourceManager bound: at most Total executions at once, at most PerNamespace in any
// one namespace; 0 leaves that bound out.
type ResourceQuota struct {
	Total        uint32
	PerNamespace uint32
}

// RateLimit is a token bucket on one kind of call, held by each host: QPS calls a second on average, up to
// Burst at once (0: max(1, ceil(QPS))).
type RateLimit struct {
	QPS   float64
	Burst uint32
}

// Async is a plugin after Flyte's webapi.AsyncPlugin: Create starts remote work and returns what is needed
// to find it again (its resource meta, of type M), Get reports its phase, Delete stops it.
//
// S is the Plugin Specification, a generated message pointer such as *batchv1.BatchJob. M is JSON-encoded
// into the resource meta the host stores (or passed through untouched when M is []byte); Get and Delete
// receive it decoded. The plugin itself may keep no state: the host holds the meta.
type Async[S proto.Message, M any] struct {
	// Name is unique among plugins, such as "batch": letters, digits, '-' and '_'.
	Name string
	// Version is the implementation's version, such as "1.4.0".
	Version string
	// TaskTypes are the (type, type_version) pairs served.
	TaskTypes  []TaskType
	Properties Properties
	// DefaultForUnclaimedTypes also serves every task type no live plugin claims (Flyte's default plugin).
	DefaultForUnclaimedTypes bool
	// Create starts the remote work. The kit runs it at most once per execution attempt, even when the
	// host retries it, across restarts and across instances.
	Create func(ctx context.Context, task *Task[S]) (M, error)
	// Get reports the remote work's phase; return Success(outputs) once it is done.
	Get func(ctx context.Context, task *Task[S], meta M) (Result, error)
	// Delete stops the remote work and releases what it holds; it must tolerate work already finished.
	Delete func(ctx context.Context, task *Task[S], meta M) error
}

// Sync is a plugin after Flyte's webapi.SyncPlugin: one call runs the whole task.
type Sync[S proto.Message] struct {
	Name                     string
	Version                  string
	TaskTypes                []TaskType
	Properties               Properties
	DefaultForUnclaimedTypes bool
	// Do runs the task to its end and must return a terminal phase: Success, RetryableFailure or
	// PermanentFailure.
	Do func(ctx context.Context, task *Task[S]) (Result, error)
}

// Core is a plugin after Flyte's core plugin interface: the host calls Handle every resync interval until
// it reports a terminal phase, then Finalize; Abort stops the work on AbortTask or when the template's
// timeout passes, and Finalize follows it too.
//
// S is the Plugin Specification, as for [Async]. The plugin's own state for the attempt ([State]) travels
// with the calls: the host keeps what Handle returned and passes it to the next Handle, to Abort and to
// Finalize, so the plugin itself may keep nothing between calls.
type Core[S proto.Message] struct {
	Name                     string
	Version                  string
	TaskTypes                []TaskType
	Properties               Properties
	DefaultForUnclaimedTypes bool
	// Handle advances the attempt. state is what the previous Handle returned, nil on the attempt's first
	// Handle. It returns the phase (and with Success the outputs) and the new state, nil to keep state as it
	// is. After a host crash the same Handle, with the same state, may come again: it must be safe to repeat.
	Handle func(ctx context.Context, task *Task[S], state *State) (Result, *State, error)
	// Abort stops the attempt's work; reason says why (the AbortTask reason, or that the timeout passed). It
	// must tolerate an attempt with no work yet (a nil state) and work that has already ended.
	Abort func(ctx context.Context, task *Task[S], state *State, reason string) error
	// Finalize releases what the attempt holds, after its terminal phase or its Abort; state may be nil. The
	// kit runs it once per execution attempt, however often the host calls it, across restarts and
	// instances; a Finalize that fails runs again when the host retries it.
	Finalize func(ctx context.Context, task *Task[S], state *State) error
}

// Plugin is an *Async, *Sync or *Core plugin, ready for [Serve].
type Plugin interface {
	declaration() declaration
	register(r *registrar)
}

// declaration is what every plugin declares, whatever its kind and type parameters.
type declaration struct {
	name                     string
	version                  string
	taskTypes                []TaskType
	properties               Properties
	defaultForUnclaimedTypes bool
	kind                     pb.PluginKind
	spec                     protoreflect.MessageDescriptor
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// check fails at start-up, not at the first call, when a declaration cannot work.
func (d declaration) check() error {
	if !namePattern.MatchString(d.name) {
		return fmt.Errorf("plugin name %q must be letters, digits, '-' and '_'", d.name)
	}
	if d.version == "" {
		return fmt.Errorf("plugin %s: Version must not be empty", d.name)
	}
	if len(d.taskTypes) == 0 {
		return fmt.Errorf("plugin %s: TaskTypes must name at least one task type", d.name)
	}
	for _, t := range d.taskTypes {
		if t.Type == "" {
			return fmt.Errorf("plugin %s: a task type must not be empty", d.name)
		}
		if t.Version < 0 {
			return fmt.Errorf("plugin %s: task type %s has a negative version", d.name, t.Type)
		}
		if t.MinVersion != nil && (*t.MinVersion < 0 || *t.MinVersion > t.Version) {
			return fmt.Errorf("plugin %s: task type %s has MinVersion %d, not 0…%d", d.name, t.Type, *t.MinVersion, t.Version)
		}
	}
	p := d.properties
	for _, v := range []time.Duration{p.ResyncInterval, p.CreateTimeout, p.GetTimeout, p.DeleteTimeout, p.DoTimeout,
		p.HandleTimeout, p.AbortTimeout, p.FinalizeTimeout} {
		if v < 0 {
			return fmt.Errorf("plugin %s: Properties durations must not be negative", d.name)
		}
	}
	for _, limit := range []*RateLimit{p.ReadLimit, p.WriteLimit} {
		if limit != nil && !(limit.QPS > 0 && !math.IsInf(limit.QPS, 1)) {
			return fmt.Errorf("plugin %s: a RateLimit needs a finite QPS > 0", d.name)
		}
	}
	return nil
}

// specDescriptor is the descriptor of S, from its zero value: generated messages answer ProtoReflect on a
// nil pointer.
func specDescriptor[S proto.Message]() protoreflect.MessageDescriptor {
	var zero S
	return zero.ProtoReflect().Descriptor()
}

func (p *Async[S, M]) declaration() declaration {
	return declaration{p.Name, p.Version, p.TaskTypes, p.Properties, p.DefaultForUnclaimedTypes, pb.PluginKind_PLUGIN_KIND_ASYNC, specDescriptor[S]()}
}

func (p *Sync[S]) declaration() declaration {
	return declaration{p.Name, p.Version, p.TaskTypes, p.Properties, p.DefaultForUnclaimedTypes, pb.PluginKind_PLUGIN_KIND_SYNC, specDescriptor[S]()}
}

func (p *Core[S]) declaration() declaration {
	return declaration{p.Name, p.Version, p.TaskTypes, p.Properties, p.DefaultForUnclaimedTypes, pb.PluginKind_PLUGIN_KIND_CORE, specDescriptor[S]()}
}
