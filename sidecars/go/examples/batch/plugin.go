package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"time"

	batchv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/batch/v1"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"google.golang.org/grpc/codes"
)

// unsafeChars are replaced in job ids, which become directory names.
var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// newPlugin is the `batch` plugin, after AWS Batch: Create starts the command as a job, Get reports its
// state, exit code and log tail, Delete kills its process group. The resource meta is the job id.
func newPlugin(js *jobs) *kit.Async[*batchv1.BatchJob, string] {
	return &kit.Async[*batchv1.BatchJob, string]{
		Name:       "batch",
		Version:    "1.0.0",
		TaskTypes:  []kit.TaskType{{Type: "batch", Version: 1}},
		Properties: kit.Properties{ResyncInterval: 500 * time.Millisecond},

		Create: func(ctx context.Context, task *kit.Task[*batchv1.BatchJob]) (string, error) {
			spec := task.Spec
			if spec.GetCommand() == "" {
				return "", kit.Errorf(codes.InvalidArgument, "template.custom.command must not be empty")
			}
			if _, err := exec.LookPath(spec.GetCommand()); err != nil {
				return "", kit.Errorf(codes.InvalidArgument, "template.custom.command: %v", err)
			}
			if err := spec.GetTimeout().CheckValid(); spec.GetTimeout() != nil && err != nil {
				return "", kit.Errorf(codes.InvalidArgument, "template.custom.timeout: %v", err)
			}
			suffix := make([]byte, 4)
			_, _ = rand.Read(suffix)
			id := fmt.Sprintf("%s-%d-%s", unsafeChars.ReplaceAllString(task.ExecutionID, "_"), task.Attempt, hex.EncodeToString(suffix))
			j, err := js.start(jobSpec{
				id:         id,
				command:    spec.GetCommand(),
				args:       spec.GetArgs(),
				env:        environment(task),
				workingDir: spec.GetWorkingDirectory(),
				timeout:    spec.GetTimeout().AsDuration(),
			})
			if err != nil {
				var pathErr *exec.Error
				if errors.As(err, &pathErr) || spec.GetWorkingDirectory() != "" {
					return "", kit.Errorf(codes.InvalidArgument, "cannot start the job: %v", err)
				}
				return "", err
			}
			task.Log.Info("job started", "job", id, "pid", j.pid, "log", j.logPath)
			return id, nil
		},

		Get: func(ctx context.Context, task *kit.Task[*batchv1.BatchJob], id string) (kit.Result, error) {
			j := js.get(id)
			if j == nil {
				// The job ran in a sidecar process that is gone (or in another instance): nothing can
				// report its end. A new attempt starts it again.
				return kit.RetryableFailure("JobLost",
					fmt.Sprintf("job %s is unknown to this batch sidecar (it restarted, or another instance started the job)", id),
					pb.ErrorKind_ERROR_KIND_SYSTEM), nil
			}
			logs := kit.WithLog("file://"+j.logPath, "job log")
			info := kit.WithCustomInfo(map[string]any{"jobId": j.id, "pid": j.pid})
			if !j.finished() {
				return kit.Running(fmt.Sprintf("job %s running (pid %d)", j.id, j.pid), logs, info), nil
			}
			j.mu.Lock()
			timedOut, killed := j.timedOut, j.killed
			j.mu.Unlock()
			tail := j.tail()
			switch {
			case timedOut:
				return kit.PermanentFailure("JobTimeout",
					fmt.Sprintf("job ran longer than its timeout %s and was killed", task.Spec.GetTimeout().AsDuration()),
					pb.ErrorKind_ERROR_KIND_USER, logs, kit.WithCustomInfo(map[string]any{"jobId": j.id, "logTail": tail})), nil
			case j.exitCode == 0:
				return kit.Success(map[string]any{"exitCode": 0, "logTail": tail}, logs, info), nil
			case j.exitCode < 0 || killed:
				return kit.PermanentFailure("JobKilled", fmt.Sprintf("job was killed: %v", j.waitErr),
					pb.ErrorKind_ERROR_KIND_USER, logs, kit.WithCustomInfo(map[string]any{"jobId": j.id, "logTail": tail})), nil
			default:
				return kit.PermanentFailure("NonZeroExit", fmt.Sprintf("job exited with code %d", j.exitCode),
					pb.ErrorKind_ERROR_KIND_USER, logs,
					kit.WithCustomInfo(map[string]any{"jobId": j.id, "exitCode": j.exitCode, "logTail": tail})), nil
			}
		},

		Delete: func(ctx context.Context, task *kit.Task[*batchv1.BatchJob], id string) error {
			j := js.get(id)
			if j == nil {
				return nil // never started here, or already deleted: nothing to stop
			}
			if !j.finished() || groupAlive(j.pid) {
				task.Log.Info("killing job", "job", id, "pid", j.pid)
				j.kill(killGrace)
			}
			js.forget(id)
			return nil
		},
	}
}

// environment is what the job gets on top of the sidecar's own environment: the execution's environment
// (TaskExecutionMetadata.environment), then the job's env, which wins.
func environment(task *kit.Task[*batchv1.BatchJob]) []string {
	var env []string
	for _, source := range []map[string]string{task.Metadata.GetEnvironment(), task.Spec.GetEnv()} {
		keys := make([]string, 0, len(source))
		for k := range source {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+source[k])
		}
	}
	return env
}
