// Package testenv starts what the kit's tests need as real processes: nats-server on a free loopback port
// in a temp dir, binaries built from this module, and a plugin-bridge host. Every wait is bounded.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ModuleRoot is the directory holding this module's go.mod.
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RepoRoot is the plugin-bridge checkout: two levels above the module (sidecars/go).
func RepoRoot() string { return filepath.Dir(filepath.Dir(ModuleRoot())) }

// NATSServerBinary is $PLUGIN_BRIDGE_NATS_SERVER, else ../../.tools/bin/nats-server from the module.
func NATSServerBinary() string {
	if path := os.Getenv("PLUGIN_BRIDGE_NATS_SERVER"); path != "" {
		return path
	}
	return filepath.Join(RepoRoot(), ".tools", "bin", "nats-server")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NATS is a nats-server child process with JetStream.
type NATS struct {
	URL string
	cmd *exec.Cmd
	// clientOptions are what a client needs to connect: TLS files, credentials (see StartNATSWithConfig).
	clientOptions []nats.Option
}

// StartNATS starts nats-server with JetStream on a free loopback port; it is killed at the end of the test.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSOnPort(t, FreePort(t))
}

// StartNATSOnPort is StartNATS on a chosen port.
func StartNATSOnPort(t testing.TB, port int) *NATS {
	t.Helper()
	return startNATS(t, port, "", nil)
}

// StartNATSWithConfig is StartNATS with config added to the server's configuration file (a tls block, an
// operator and its accounts, …); [NATS.Connect] connects with clientOptions, which that server asks of clients.
func StartNATSWithConfig(t testing.TB, config string, clientOptions ...nats.Option) *NATS {
	t.Helper()
	return startNATS(t, FreePort(t), config, clientOptions)
}

func startNATS(t testing.TB, port int, config string, clientOptions []nats.Option) *NATS {
	t.Helper()
	binary := NATSServerBinary()
	if _, err := os.Stat(binary); err != nil {
		t.Fatalf("nats-server not found at %s (set PLUGIN_BRIDGE_NATS_SERVER): %v", binary, err)
	}
	dir := t.TempDir()
	configFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(configFile, []byte("max_payload: 8388608\n"+config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-js", "-sd", filepath.Join(dir, "js"), "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-c", configFile)
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	n := &NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), cmd: cmd, clientOptions: clientOptions}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	Eventually(t, 15*time.Second, "nats-server accepts connections", func() bool {
		select {
		case <-exited:
			t.Fatalf("nats-server exited:\n%s", output.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return true
		}
		return false
	})
	return n
}

// Connect opens a NATS connection and a JetStream context, closed at the end of the test.
func (n *NATS) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(n.URL, append([]nats.Option{nats.Timeout(5 * time.Second)}, n.clientOptions...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Eventually polls cond every 50 ms until it holds, failing the test after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var buildMu sync.Mutex

// Build compiles the package at pkg (relative to the module, such as "./conformance") into dir and returns
// the binary's path.
func Build(dir, pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(dir, filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = ModuleRoot()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, output)
	}
	return out, nil
}

// Process is a child process whose output is kept for failure messages.
type Process struct {
	Cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
	err    error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartProcess runs binary with env added to the test's environment; it is killed at the end of the test
// unless it exited before.
func StartProcess(t testing.TB, env []string, binary string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &Process{Cmd: cmd, output: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(binary), p.output.String())
		}
	})
	return p
}

// Output is what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.output.String() }

// Wait waits up to timeout for the process to exit and returns its exit code (-1 on a timeout).
func (p *Process) Wait(timeout time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return -1, false
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
