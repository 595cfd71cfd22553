package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
)

// The module works from outside this repository: a fresh module requires it (replaced by this checkout)
// and builds a tiny plugin against the kit and the SDK.
func TestModuleUsableOutsideTheRepository(t *testing.T) {
	dir := t.TempDir()
	root := testenv.ModuleRoot()
	files := map[string]string{
		"go.mod": "module example.com/myplugin\n\ngo 1.26\n\nrequire github.com/plugin-bridge/plugin-bridge/sidecars/go v0.0.0\n\n" +
			"replace github.com/plugin-bridge/plugin-bridge/sidecars/go => " + root + "\n",
		"main.go": `package main

import (
	"context"
	"log"

	sensorv1 "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/plugins/sensor/v1"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/sdk"
)

var _ = sdk.New

func main() {
	plugin := &kit.Sync[*sensorv1.FileSensor]{
		Name: "tiny", Version: "0.1.0", TaskTypes: []kit.TaskType{{Type: "tiny", Version: 1}},
		Do: func(ctx context.Context, task *kit.Task[*sensorv1.FileSensor]) (kit.Result, error) {
			return kit.Success(map[string]any{"path": task.Spec.GetPath()}), nil
		},
	}
	if err := kit.Serve(context.Background(), plugin); err != nil {
		log.Fatal(err)
	}
}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// This module's go.sum covers every dependency, so the build needs no checksum lookups.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "tiny"), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build outside the repository: %v\n%s", err, out)
	}
}
