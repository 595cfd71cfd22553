package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
)

func startBatch(t *testing.T, natsURL string, env ...string) (*testenv.Process, *client, string) {
	t.Helper()
	jobsDir := t.TempDir()
	socket := filepath.Join(t.TempDir(), "b.sock")
	p := testenv.StartProcess(t, append([]string{
		"PLUGIN_BRIDGE_NATS_URL=" + natsURL, "PLUGIN_BRIDGE_ENDPOINT=unix:" + socket, "BATCH_JOBS_DIR=" + jobsDir,
	}, env...), bin.batch)
	return p, dial(t, "unix:"+socket), jobsDir
}

// pollUntilTerminal calls Get until the phase is terminal, checking every answer carries the job log.
func pollUntilTerminal(t *testing.T, c *client, tc *pb.TaskContext, meta []byte) (*pb.GetResponse, []pb.Phase) {
	t.Helper()
	var seen []pb.Phase
	var last *pb.GetResponse
	testenv.Eventually(t, 30*time.Second, "the job ends", func() bool {
		r, err := c.async.Get(callCtx(t), &pb.GetRequest{Context: tc, ResourceMeta: meta})
		if err != nil {
			t.Fatal(err)
		}
		logs := r.GetPhaseInfo().GetLogs()
		if len(logs) != 1 || logs[0].GetName() != "job log" || !strings.HasPrefix(logs[0].GetUri(), "file:///") || !strings.HasSuffix(logs[0].GetUri(), "/job.log") {
			t.Fatalf("logs %v", logs)
		}
		last = r
		seen = append(seen, r.GetPhaseInfo().GetPhase())
		p := r.GetPhaseInfo().GetPhase()
		return p == pb.Phase_PHASE_SUCCESS || p == pb.Phase_PHASE_PERMANENT_FAILURE || p == pb.Phase_PHASE_RETRYABLE_FAILURE
	})
	return last, seen
}

func TestBatchJobs(t *testing.T) {
	n := testenv.StartNATS(t)
	_, c, jobsDir := startBatch(t, n.URL, "PLUGIN_BRIDGE_TOKEN="+sidecarToken, "PLUGIN_BRIDGE_TOKEN_ID=batch", "BATCH_TEST_INHERITED=yes")
	ctx := callCtx(t)

	t.Run("success with log tail", func(t *testing.T) {
		tc := taskContext(t, "batch", "b-ok", 1, map[string]any{
			"command": "sh", "args": []any{"-c", `sleep 0.7; echo "hello $GREETING"; echo err >&2`}, "env": map[string]any{"GREETING": "world"},
		})
		created, err := c.async.Create(ctx, &pb.CreateRequest{Context: tc})
		if err != nil {
			t.Fatal(err)
		}
		last, seen := pollUntilTerminal(t, c, tc, created.GetResourceMeta())
		if seen[0] != pb.Phase_PHASE_RUNNING {
			t.Errorf("first phase %v, want RUNNING", seen[0])
		}
		out := last.GetOutputs().AsMap()
		if last.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_SUCCESS || out["exitCode"] != float64(0) || out["logTail"] != "hello world\nerr\n" {
			t.Fatalf("final %v", last)
		}
		uri := last.GetPhaseInfo().GetLogs()[0].GetUri()
		if !strings.HasPrefix(strings.TrimPrefix(uri, "file://"), jobsDir) {
			t.Errorf("log %s is not under %s", uri, jobsDir)
		}
	})

	// A job gets the sidecar's environment, but not its token: the token is the sidecar's, not the task's.
	t.Run("environment without the token", func(t *testing.T) {
		tc := taskContext(t, "batch", "b-env", 1, map[string]any{
			"command": "sh", "args": []any{"-c", `echo "${BATCH_TEST_INHERITED-unset} ${PLUGIN_BRIDGE_TOKEN-unset}"`},
		})
		created, err := c.async.Create(ctx, &pb.CreateRequest{Context: tc})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := pollUntilTerminal(t, c, tc, created.GetResourceMeta())
		if tail := last.GetOutputs().AsMap()["logTail"]; tail != "yes unset\n" {
			t.Fatalf("the job saw %q", tail)
		}
	})

	t.Run("non-zero exit", func(t *testing.T) {
		tc := taskContext(t, "batch", "b-fail", 1, map[string]any{"command": "sh", "args": []any{"-c", "echo failing; exit 3"}})
		created, err := c.async.Create(ctx, &pb.CreateRequest{Context: tc})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := pollUntilTerminal(t, c, tc, created.GetResourceMeta())
		e := last.GetPhaseInfo().GetError()
		if last.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_PERMANENT_FAILURE || e.GetKind() != pb.ErrorKind_ERROR_KIND_USER ||
			!strings.Contains(e.GetMessage(), "exited with code 3") || last.GetPhaseInfo().GetCustomInfo().AsMap()["exitCode"] != float64(3) {
			t.Fatalf("final %v", last)
		}
	})

	t.Run("own timeout", func(t *testing.T) {
		tc := taskContext(t, "batch", "b-timeout", 1, map[string]any{"command": "sleep", "args": []any{"60"}, "timeout": "0.3s"})
		created, err := c.async.Create(ctx, &pb.CreateRequest{Context: tc})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := pollUntilTerminal(t, c, tc, created.GetResourceMeta())
		if last.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_PERMANENT_FAILURE || last.GetPhaseInfo().GetError().GetCode() != "JobTimeout" {
			t.Fatalf("final %v", last)
		}
	})

	t.Run("delete kills the process group", func(t *testing.T) {
		childFile := filepath.Join(t.TempDir(), "child.pid")
		tc := taskContext(t, "batch", "b-delete", 1, map[string]any{
			"command": "sh", "args": []any{"-c", `sleep 60 & echo $! > "$CHILD_FILE"; wait`}, "env": map[string]any{"CHILD_FILE": childFile},
		})
		created, err := c.async.Create(ctx, &pb.CreateRequest{Context: tc})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.async.Get(ctx, &pb.GetRequest{Context: tc, ResourceMeta: created.GetResourceMeta()})
		if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RUNNING {
			t.Fatalf("get: %v %v", r, err)
		}
		leader := int(r.GetPhaseInfo().GetCustomInfo().AsMap()["pid"].(float64))
		var child int
		testenv.Eventually(t, 10*time.Second, "the job writes its child's pid", func() bool {
			data, err := os.ReadFile(childFile)
			child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
			return err == nil && child > 0
		})
		if !alive(leader) || !alive(child) {
			t.Fatal("the job is not running")
		}
		if _, err := c.async.Delete(ctx, &pb.DeleteRequest{Context: tc, ResourceMeta: created.GetResourceMeta()}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 15*time.Second, "the job's processes are gone", func() bool { return !alive(leader) && !alive(child) })
		// Delete again, and Delete of a finished or unknown job, are fine.
		if _, err := c.async.Delete(ctx, &pb.DeleteRequest{Context: tc, ResourceMeta: created.GetResourceMeta()}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown job", func(t *testing.T) {
		tc := taskContext(t, "batch", "b-lost", 1, map[string]any{"command": "true"})
		r, err := c.async.Get(ctx, &pb.GetRequest{Context: tc, ResourceMeta: []byte(`"no-such-job"`)})
		if err != nil || r.GetPhaseInfo().GetPhase() != pb.Phase_PHASE_RETRYABLE_FAILURE || r.GetPhaseInfo().GetError().GetCode() != "JobLost" {
			t.Fatalf("get: %v %v", r, err)
		}
	})
}

// alive reports whether pid exists and is not a zombie (a container's init may not reap orphans at once).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
