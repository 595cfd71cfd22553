// Command run-task submits one task of an example plugin's type to a plugin-bridge host, follows it to
// its end and prints the final TaskEvent as proto3 JSON on stdout.
//
//	run-task --base-url http://127.0.0.1:8080 --type batch --spec '{"command":"echo","args":["hi"]}'
//
// --type is one of http, sensor, sql, batch; --spec is the proto3 JSON of that type's specification
// message, parsed into the typed message first (unknown fields refused). Exit status: 0 when the final
// phase is SUCCESS, 1 for any other final phase, 2 for usage errors and SDK errors (the connect code and
// message go to stderr).
package main

import (
	"context"
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
	specJSON := flags.String("spec", "", "the specification as proto3 JSON")
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
	newSpec, ok := specTypes[*taskType]
	if !ok {
		fmt.Fprintf(stderr, "run-task: --type must be one of %s\n", strings.Join(types, ", "))
		return exitUsage
	}
	spec := newSpec()
	if err := protojson.Unmarshal([]byte(*specJSON), spec); err != nil {
		fmt.Fprintf(stderr, "run-task: --spec is not a valid %s: %v\n", spec.ProtoReflect().Descriptor().FullName(), err)
		return exitUsage
	}
	var options []sdk.TemplateOption
	if *taskTimeout > 0 {
		options = append(options, sdk.WithTimeout(*taskTimeout))
	}
	if *retries > 0 {
		options = append(options, sdk.WithRetries(uint32(*retries)))
	}
	template, err := sdk.Template(spec, *taskType, 1, options...)
	if err != nil {
		fmt.Fprintf(stderr, "run-task: %v\n", err)
		return exitUsage
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
