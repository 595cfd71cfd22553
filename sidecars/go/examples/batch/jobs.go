package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logTailBytes is how much of the end of a job's log Get reports.
const logTailBytes = 4096

// job is one command started by Create, in its own process group so Delete can stop everything it
// spawned, with stdout and stderr in one log file.
type job struct {
	id      string
	dir     string
	logPath string
	pid     int
	started time.Time

	done     chan struct{} // closed when the process has exited
	exitCode int           // valid after done; -1 when killed by a signal
	waitErr  error
	mu       sync.Mutex
	timedOut bool
	killed   bool
	timer    *time.Timer
}

// jobs are the jobs this sidecar process started. They live in memory only: a restarted sidecar knows
// none of them (see the README).
type jobs struct {
	root string
	mu   sync.Mutex
	byID map[string]*job
}

type jobSpec struct {
	id         string
	command    string
	args       []string
	env        []string
	workingDir string
	timeout    time.Duration
}

func (js *jobs) start(spec jobSpec) (*job, error) {
	dir := filepath.Join(js.root, spec.id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("job directory: %w", err)
	}
	logPath := filepath.Join(dir, "job.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("job log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptors

	cmd := exec.Command(spec.command, spec.args...)
	cmd.Env = append(sidecarEnvironment(), spec.env...)
	cmd.Dir = spec.workingDir
	if cmd.Dir == "" {
		cmd.Dir = dir
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: Delete and the timeout signal the whole group, grandchildren included.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	j := &job{id: spec.id, dir: dir, logPath: logPath, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	// The timer exists before the job can be seen to end, and does nothing once it has: a job that exits first
	// must never have its (possibly reused) process group signalled or be reported as timed out.
	if spec.timeout > 0 {
		j.timer = time.AfterFunc(spec.timeout, func() {
			select {
			case <-j.done:
				return
			default:
			}
			j.mu.Lock()
			j.timedOut = true
			j.mu.Unlock()
			j.kill(killGrace)
		})
	}
	go func() {
		j.waitErr = cmd.Wait()
		j.exitCode = cmd.ProcessState.ExitCode()
		if j.timer != nil {
			j.timer.Stop()
		}
		close(j.done)
	}()
	js.mu.Lock()
	js.byID[j.id] = j
	js.mu.Unlock()
	return j, nil
}

// sidecarEnvironment is this process's environment without its token: the token is the sidecar's identity
// towards the hosts, and a job is any command a task asks for.
func sidecarEnvironment() []string {
	env := os.Environ()
	kept := make([]string, 0, len(env))
	for _, variable := range env {
		if !strings.HasPrefix(variable, "PLUGIN_BRIDGE_TOKEN=") {
			kept = append(kept, variable)
		}
	}
	return kept
}

func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.byID[id]
}

func (js *jobs) forget(id string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	delete(js.byID, id)
}

// killGrace is how long a job's group gets between SIGTERM and SIGKILL.
var killGrace = 5 * time.Second

// kill stops the job's whole process group: SIGTERM, then SIGKILL after grace if anything of the group is
// still alive. It returns once the job's process has exited (or after the SIGKILL).
func (j *job) kill(grace time.Duration) {
	j.mu.Lock()
	j.killed = true
	j.mu.Unlock()
	_ = syscall.Kill(-j.pid, syscall.SIGTERM)
	select {
	case <-j.done:
	case <-time.After(grace):
	}
	// The leader may be gone while members of its group live on: SIGKILL whatever is left.
	if groupAlive(j.pid) {
		_ = syscall.Kill(-j.pid, syscall.SIGKILL)
	}
	select {
	case <-j.done:
	case <-time.After(grace):
	}
}

func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// tail is the last logTailBytes of the log, as valid UTF-8 (a cut may split a character).
func (j *job) tail() string {
	f, err := os.Open(j.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ""
	}
	offset := info.Size() - logTailBytes
	if offset < 0 {
		offset = 0
	}
	data, _ := io.ReadAll(io.NewSectionReader(f, offset, info.Size()-offset))
	return strings.ToValidUTF8(string(data), "\uFFFD")
}
