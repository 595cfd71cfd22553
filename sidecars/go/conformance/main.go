// Command conformance is the Go kit's conformance reference plugin: it acts out the task's
// pluginbridge.conformance.v1.Script exactly as the comment of
// proto/pluginbridge/conformance/v1/conformance.proto specifies, so one suite can hold every kit to the same
// behaviour. It runs as the async plugin `conformance-go`, with CONFORMANCE_KIND=sync as the sync plugin
// `conformance-sync-go`, or with CONFORMANCE_KIND=core as the core plugin `conformance-core-go`.
//
//	CONFORMANCE_AUDIT_FILE=/tmp/audit go run ./conformance
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	conformancev1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/conformance/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"google.golang.org/grpc/codes"
)

const language = "go"

type script = *conformancev1.Script

// reference holds what the plugin remembers: the instance id it reports and the Gets of each attempt.
type reference struct {
	instanceID string
	auditFile  string
	auditTimes bool // CONFORMANCE_AUDIT_TIMES=1: each line ends with the call's time in epoch milliseconds
	auditMu    sync.Mutex
	getsMu     sync.Mutex
	gets       map[string]int
}

// record appends "<call> <execution id> <attempt> <instance id>" once a call has done its work.
func (r *reference) record(call string, task *kit.Task[script]) {
	if r.auditFile == "" {
		return
	}
	r.auditMu.Lock()
	defer r.auditMu.Unlock()
	f, err := os.OpenFile(r.auditFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(fmt.Sprintf("audit file: %v", err)) // answered INTERNAL: the test setup is broken
	}
	defer f.Close()
	if r.auditTimes {
		fmt.Fprintf(f, "%s %s %d %s %d\n", call, task.ExecutionID, task.Attempt, r.instanceID, time.Now().UnixMilli())
		return
	}
	fmt.Fprintf(f, "%s %s %d %s\n", call, task.ExecutionID, task.Attempt, r.instanceID)
}

func (r *reference) outputs(task *kit.Task[script], extra map[string]any) map[string]any {
	out := map[string]any{"language": language, "instance": r.instanceID, "echo": task.Spec.GetEcho()}
	for k, v := range extra {
		out[k] = v
	}
	if n := task.Spec.GetOutputBytes(); n > 0 {
		out["payload"] = strings.Repeat("x", int(n))
	}
	// Which secrets arrived, and how long each is: proof of delivery without the values.
	if len(task.Secrets) > 0 {
		lengths := make(map[string]any, len(task.Secrets))
		for name, value := range task.Secrets {
			lengths[name] = len(value)
		}
		out["secrets"] = lengths
	}
	return out
}

// act acts out a behavior: it returns a failure to report, or nil to go on and succeed.
func act(ctx context.Context, behavior conformancev1.Behavior, task *kit.Task[script]) (*kit.Result, error) {
	message := task.Spec.GetMessage()
	if message == "" {
		message = "scripted failure"
	}
	switch behavior {
	case conformancev1.Behavior_BEHAVIOR_HANG:
		// Never answers in time: even after the call is cancelled it waits 2 s more, so the host sees its
		// own deadline pass, never a CANCELLED that raced it.
		<-ctx.Done()
		time.Sleep(2 * time.Second)
		return nil, kit.Errorf(codes.Canceled, "cancelled")
	case conformancev1.Behavior_BEHAVIOR_CRASH:
		panic(message)
	case conformancev1.Behavior_BEHAVIOR_USER_ERROR:
		return nil, kit.Errorf(codes.InvalidArgument, "%s", message)
	case conformancev1.Behavior_BEHAVIOR_RETRYABLE:
		r := kit.RetryableFailure("Scripted", message, pb.ErrorKind_ERROR_KIND_SYSTEM)
		return &r, nil
	case conformancev1.Behavior_BEHAVIOR_PERMANENT:
		r := kit.PermanentFailure("Scripted", message, pb.ErrorKind_ERROR_KIND_USER)
		return &r, nil
	}
	return nil, nil
}

type createMeta struct {
	Execution string `json:"execution"`
	Attempt   uint32 `json:"attempt"`
}

// schedulePush acts out push_after_ms: a push of PHASE_SUCCESS that much later, with the usual outputs, extra
// and "pushed": true, as a plugin that learns of the end between polls would send it. A push that fails is
// only logged: polling stays the fallback.
func (r *reference) schedulePush(task *kit.Task[script], extra map[string]any) {
	after := task.Spec.GetPushAfterMs()
	if after == 0 {
		return
	}
	outputs := map[string]any{"pushed": true}
	for k, v := range extra {
		outputs[k] = v
	}
	time.AfterFunc(time.Duration(after)*time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := task.Push(ctx, kit.Success(r.outputs(task, outputs))); err != nil {
			task.Log.Warn("scheduled push failed", "error", err)
		}
	})
}

func (r *reference) create(ctx context.Context, task *kit.Task[script]) (createMeta, error) {
	failed, err := act(ctx, task.Spec.GetCreate(), task)
	if err != nil {
		return createMeta{}, err
	}
	if failed != nil {
		return createMeta{}, kit.Errorf(codes.InvalidArgument, "Create cannot report a phase")
	}
	if delay := task.Spec.GetCreateDelayMs(); delay > 0 {
		select {
		case <-time.After(time.Duration(delay) * time.Millisecond):
		case <-ctx.Done():
			return createMeta{}, kit.Errorf(codes.Canceled, "cancelled during create_delay_ms")
		}
	}
	r.record("create", task)
	r.schedulePush(task, nil)
	return createMeta{Execution: task.ExecutionID, Attempt: task.Attempt}, nil
}

func (r *reference) get(ctx context.Context, task *kit.Task[script], _ createMeta) (kit.Result, error) {
	key := fmt.Sprintf("%s/%d", task.ExecutionID, task.Attempt)
	r.getsMu.Lock()
	r.gets[key]++
	gets := r.gets[key]
	r.getsMu.Unlock()
	if file := task.Spec.GetWaitForFile(); file != "" {
		if _, err := os.Stat(file); err != nil {
			r.record("get", task)
			return kit.Running("waiting"), nil
		}
	}
	if gets <= int(task.Spec.GetPolls()) {
		r.record("get", task)
		return kit.Running("polling"), nil
	}
	failed, err := act(ctx, task.Spec.GetGet(), task)
	if err != nil {
		return kit.Result{}, err
	}
	r.record("get", task)
	if failed != nil {
		return *failed, nil
	}
	return kit.Success(r.outputs(task, map[string]any{"gets": gets})), nil
}

func (r *reference) delete(ctx context.Context, task *kit.Task[script], _ createMeta) error {
	failed, err := act(ctx, task.Spec.GetDelete(), task)
	if err != nil {
		return err
	}
	if failed != nil {
		return kit.Errorf(codes.InvalidArgument, "Delete cannot report a phase")
	}
	r.record("delete", task)
	return nil
}

func (r *reference) do(ctx context.Context, task *kit.Task[script]) (kit.Result, error) {
	failed, err := act(ctx, task.Spec.GetDo(), task)
	if err != nil {
		return kit.Result{}, err
	}
	r.record("do", task)
	if failed != nil {
		return *failed, nil
	}
	return kit.Success(r.outputs(task, nil)), nil
}

// handlesVersion is the layout of the core plugin's state: the attempt's Handle count as decimal ASCII.
const handlesVersion = 1

// handles reads the Handle count from the state a Handle gets: 0 without one; a state of another layout is
// refused, as a new plugin version would refuse a state it cannot read.
func handles(state *kit.State) (int, error) {
	if state == nil {
		return 0, nil
	}
	if state.Version != handlesVersion {
		return 0, kit.Errorf(codes.FailedPrecondition, "unknown state version %d", state.Version)
	}
	text := string(state.Data)
	n, err := strconv.Atoi(text)
	if err != nil || text == "" || strings.Trim(text, "0123456789") != "" { // Atoi alone takes "+1" and "-0"
		return 0, kit.Errorf(codes.FailedPrecondition, "state version %d holds %q, not a Handle count", state.Version, state.Data)
	}
	return n, nil
}

func (r *reference) handle(ctx context.Context, task *kit.Task[script], state *kit.State) (kit.Result, *kit.State, error) {
	count, err := handles(state)
	if err != nil {
		return kit.Result{}, nil, err
	}
	count++
	next := &kit.State{Version: handlesVersion, Data: []byte(strconv.Itoa(count))}
	if count == 1 {
		r.schedulePush(task, map[string]any{"handles": count})
	}
	if count <= int(task.Spec.GetPolls()) {
		r.record("handle", task)
		return kit.Running("polling"), next, nil
	}
	if file := task.Spec.GetWaitForFile(); file != "" {
		if _, err := os.Stat(file); err != nil {
			r.record("handle", task)
			return kit.Running("waiting"), next, nil
		}
	}
	failed, err := act(ctx, task.Spec.GetHandle(), task)
	if err != nil {
		return kit.Result{}, nil, err
	}
	r.record("handle", task)
	if failed != nil {
		return *failed, next, nil
	}
	return kit.Success(r.outputs(task, map[string]any{"handles": count})), next, nil
}

func (r *reference) abort(ctx context.Context, task *kit.Task[script], _ *kit.State, _ string) error {
	failed, err := act(ctx, task.Spec.GetAbort(), task)
	if err != nil {
		return err
	}
	if failed != nil {
		return kit.Errorf(codes.InvalidArgument, "Abort cannot report a phase")
	}
	r.record("abort", task)
	return nil
}

// finalize records its line once per execution and attempt: the kit runs it once however often it is called.
func (r *reference) finalize(ctx context.Context, task *kit.Task[script], _ *kit.State) error {
	failed, err := act(ctx, task.Spec.GetFinalize(), task)
	if err != nil {
		return err
	}
	if failed != nil {
		return kit.Errorf(codes.InvalidArgument, "Finalize cannot report a phase")
	}
	r.record("finalize", task)
	return nil
}

// pair reads "<a>/<b>" from the environment; ok is false when the variable is unset.
func pair(variable string) (a, b float64, ok bool) {
	value := os.Getenv(variable)
	if value == "" {
		return 0, 0, false
	}
	first, second, found := strings.Cut(value, "/")
	a, errA := strconv.ParseFloat(first, 64)
	b, errB := strconv.ParseFloat(second, 64)
	if !found || errA != nil || errB != nil {
		panic(fmt.Sprintf("%s must be \"<number>/<number>\", not %q", variable, value))
	}
	return a, b, true
}

func main() {
	resync := 200 * time.Millisecond
	if ms, err := strconv.Atoi(os.Getenv("CONFORMANCE_RESYNC_MS")); err == nil && ms >= 0 {
		resync = time.Duration(ms) * time.Millisecond
	}
	properties := kit.Properties{
		ResyncInterval:    resync,
		CreateTimeout:     2 * time.Second,
		GetTimeout:        2 * time.Second,
		DeleteTimeout:     2 * time.Second,
		DoTimeout:         2 * time.Second,
		HandleTimeout:     2 * time.Second,
		AbortTimeout:      2 * time.Second,
		FinalizeTimeout:   2 * time.Second,
		MaxSystemFailures: 2,
	}
	if total, perNamespace, ok := pair("CONFORMANCE_QUOTA"); ok {
		properties.Quota = &kit.ResourceQuota{Total: uint32(total), PerNamespace: uint32(perNamespace)}
	}
	if qps, burst, ok := pair("CONFORMANCE_READ_LIMIT"); ok {
		properties.ReadLimit = &kit.RateLimit{QPS: qps, Burst: uint32(burst)}
	}
	if qps, burst, ok := pair("CONFORMANCE_WRITE_LIMIT"); ok {
		properties.WriteLimit = &kit.RateLimit{QPS: qps, Burst: uint32(burst)}
	}
	kind := os.Getenv("CONFORMANCE_KIND")
	name := "conformance-" + language
	if kind == "sync" || kind == "core" {
		name = "conformance-" + kind + "-" + language
	}
	// The outputs and the audit name the instance, so the id is settled here rather than left to the kit.
	instanceID := os.Getenv("PLUGIN_BRIDGE_INSTANCE_ID")
	if instanceID == "" {
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		instanceID = name + "-" + hex.EncodeToString(suffix)
	}
	r := &reference{
		instanceID: instanceID,
		auditFile:  os.Getenv("CONFORMANCE_AUDIT_FILE"),
		auditTimes: os.Getenv("CONFORMANCE_AUDIT_TIMES") == "1",
		gets:       map[string]int{},
	}
	taskTypes := []kit.TaskType{{Type: name, Version: 1}}

	var plugin kit.Plugin
	switch kind {
	case "sync":
		plugin = &kit.Sync[script]{Name: name, Version: "1.0.0", TaskTypes: taskTypes, Properties: properties, Do: r.do}
	case "core":
		plugin = &kit.Core[script]{
			Name: name, Version: "1.0.0", TaskTypes: taskTypes, Properties: properties,
			Handle: r.handle, Abort: r.abort, Finalize: r.finalize,
		}
	default:
		plugin = &kit.Async[script, createMeta]{
			Name: name, Version: "1.0.0", TaskTypes: taskTypes, Properties: properties,
			Create: r.create, Get: r.get, Delete: r.delete,
		}
	}
	if err := kit.Serve(context.Background(), plugin, kit.WithInstanceID(instanceID)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
