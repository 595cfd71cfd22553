// Command run-task submits one task of an example plugin's type to a plugin-bridge host, follows it to
// its end and prints the final TaskEvent as proto3 JSON on stdout.
//
//	run-task --base-url http://127.0.0.1:8080 --type batch --spec '{"command":"echo","args":["hi"]}'
//
// --type is one of http, sensor, sql, batch; --spec is the proto3 JSON of that type's specification
// message, parsed into the typed message first (unknown fields refused). A task type without a specification
// here, such as a Flyte connector's, takes --custom instead: a JSON object sent as the template's custom as it
// is, with --type-version (default 1):
//
//	run-task --type bridge_echo --type-version 0 --custom '{"prefix":"hi"}' --inputs '{"name":"bridge"}'
//
// --inputs is the task's inputs as a JSON object. Exit status: 0 when the final phase is SUCCESS, 1 for any
// other final phase, 2 for usage errors and SDK errors (the connect code and message go to stderr).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	httpv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/http/v1"
	sensorv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/sensor/v1"
	sqlv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/sql/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/sdk"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// specTypes maps --type to a new, empty specification message of that task type (type version 1).
var specTypes = map[string]func() proto.Message{
	"http":   func() proto.Message { return &httpv1.HttpRequest{} },
	"sensor": func() proto.Message { return &sensorv1.FileSensor{} },
	"sql":    func() proto.Message { return &sqlv1.SqlQuery{} },
	"batch":  func() proto.Message { return &batchv1.BatchJob{} },
}

const (
	exitSuccess = 0
	exitFailed  = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	types := make([]string, 0, len(specTypes))
	for name := range specTypes {
		types = append(types, name)
	}
	sort.Strings(types)

	flags := flag.NewFlagSet("run-task", flag.ContinueOnError)
	flags.SetOutput(stderr)
	baseURL := flags.String("base-url", "http://127.0.0.1:8080", "the host's public address")
	taskType := flags.String("type", "", "task type: "+strings.Join(types, ", "))
	typeVersion := flags.Int("type-version", 1, "the task type's version")
	specJSON := flags.String("spec", "", "the specification as proto3 JSON")
	customJSON := flags.String("custom", "", "the template's custom as a JSON object, sent as it is (instead of --spec)")
	inputsJSON := flags.String("inputs", "", "the task's inputs as a JSON object")
	protocol := flags.String("protocol", "grpc", "wire protocol: grpc, connect or grpc-web")
	namespace := flags.String("namespace", "", "the execution's namespace (default: the host's \"default\")")
	idempotencyKey := flags.String("idempotency-key", "", "makes the submission safe to repeat")
	taskTimeout := flags.Duration("task-timeout", 0, "the task's own timeout per attempt (0: none)")
	retries := flags.Uint("retries", 0, "new attempts after a retryable failure")
	wait := flags.Duration("wait", 0, "give up following after this long (0: wait for the end)")
	quiet := flags.Bool("quiet", false, "do not print intermediate events on stderr")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "run-task: unexpected arguments %q\n", flags.Args())
		return exitUsage
	}
	var options []sdk.TemplateOption
	if *taskTimeout > 0 {
		options = append(options, sdk.WithTimeout(*taskTimeout))
	}
	if *retries > 0 {
		options = append(options, sdk.WithRetries(uint32(*retries)))
	}
	var template *pb.TaskTemplate
	if *customJSON != "" {
		if *specJSON != "" {
			fmt.Fprintf(stderr, "run-task: give --spec or --custom, not both\n")
			return exitUsage
		}
		custom, err := jsonObject("--custom", *customJSON)
		if err != nil {
			fmt.Fprintf(stderr, "run-task: %v\n", err)
			return exitUsage
		}
		template = &pb.TaskTemplate{Type: *taskType, TypeVersion: int32(*typeVersion), Custom: custom}
		for _, option := range options {
			option(template)
		}
	} else {
		newSpec, ok := specTypes[*taskType]
		if !ok {
			fmt.Fprintf(stderr, "run-task: --type must be one of %s (or give --custom)\n", strings.Join(types, ", "))
			return exitUsage
		}
		spec := newSpec()
		if err := protojson.Unmarshal([]byte(*specJSON), spec); err != nil {
			fmt.Fprintf(stderr, "run-task: --spec is not a valid %s: %v\n", spec.ProtoReflect().Descriptor().FullName(), err)
			return exitUsage
		}
		var err error
		if template, err = sdk.Template(spec, *taskType, int32(*typeVersion), options...); err != nil {
			fmt.Fprintf(stderr, "run-task: %v\n", err)
			return exitUsage
		}
	}
	var wire sdk.Protocol
	switch *protocol {
	case "grpc":
		wire = sdk.ProtocolGRPC
	case "connect":
		wire = sdk.ProtocolConnect
	case "grpc-web":
		wire = sdk.ProtocolGRPCWeb
	default:
		fmt.Fprintf(stderr, "run-task: --protocol must be grpc, connect or grpc-web\n")
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *wait)
		defer cancel()
	}
	submit := []sdk.SubmitOption{sdk.OnEvent(func(event *pb.TaskEvent) {
		if !*quiet {
			fmt.Fprintf(stderr, "run-task: %s #%d %s %s\n", event.GetExecutionId(), event.GetSequence(),
				event.GetPhaseInfo().GetPhase(), event.GetPhaseInfo().GetReason())
		}
	})}
	if *namespace != "" {
		submit = append(submit, sdk.WithNamespace(*namespace))
	}
	if *idempotencyKey != "" {
		submit = append(submit, sdk.WithIdempotencyKey(*idempotencyKey))
	}
	if *inputsJSON != "" {
		inputs, err := jsonObject("--inputs", *inputsJSON)
		if err != nil {
			fmt.Fprintf(stderr, "run-task: %v\n", err)
			return exitUsage
		}
		submit = append(submit, sdk.WithInputs(inputs.AsMap()))
	}
	started := time.Now()
	final, err := sdk.New(*baseURL, sdk.WithProtocol(wire)).Run(ctx, template, submit...)
	if err != nil {
		var connectErr *connect.Error
		if errors.As(err, &connectErr) {
			fmt.Fprintf(stderr, "run-task: %s: %s\n", connectErr.Code(), connectErr.Message())
		} else {
			fmt.Fprintf(stderr, "run-task: %v\n", err)
		}
		return exitUsage
	}
	out, err := protojson.MarshalOptions{Multiline: true}.Marshal(final)
	if err != nil {
		fmt.Fprintf(stderr, "run-task: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, string(out))
	if !*quiet {
		fmt.Fprintf(stderr, "run-task: %s after %s\n", final.GetPhaseInfo().GetPhase(), time.Since(started).Round(time.Millisecond))
	}
	if final.GetPhaseInfo().GetPhase() == pb.Phase_PHASE_SUCCESS {
		return exitSuccess
	}
	return exitFailed
}

// jsonObject parses a flag's value, which must be a JSON object.
func jsonObject(flag, text string) (*structpb.Struct, error) {
	var value map[string]any
	if err := json.Unmarshal([]byte(text), &value); err != nil || value == nil {
		return nil, fmt.Errorf("%s must be a JSON object (%v)", flag, text)
	}
	object, err := structpb.NewStruct(value)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flag, err)
	}
	return object, nil
}
