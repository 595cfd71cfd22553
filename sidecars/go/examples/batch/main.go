// Command batch runs the `batch` example plugin as a sidecar: task type `batch` v1, specification
// pluginbridge.plugins.batch.v1.BatchJob. Each task runs one command as a job on this machine, after AWS
// Batch. Jobs and their logs live under $BATCH_JOBS_DIR (default <tmp>/plugin-bridge-batch).
//
//	go run ./examples/batch
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/plugin-bridge/plugin-bridge/sidecars/go/kit"
)

func main() {
	root := os.Getenv("BATCH_JOBS_DIR")
	if root == "" {
		root = filepath.Join(os.TempDir(), "plugin-bridge-batch")
	}
	root, err := filepath.Abs(root)
	if err == nil {
		err = os.MkdirAll(root, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "batch: jobs directory:", err)
		os.Exit(1)
	}
	js := &jobs{root: root, byID: map[string]*job{}}
	if err := kit.Serve(context.Background(), newPlugin(js)); err != nil {
		fmt.Fprintln(os.Stderr, "batch:", err)
		os.Exit(1)
	}
}
