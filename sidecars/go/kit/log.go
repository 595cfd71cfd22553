package kit

import (
	"log/slog"
	"os"
	"strings"
)

// newLogger writes to stderr only: a sidecar's stdout belongs to the plugin author, and whatever runs the
// sidecar (a shell, systemd, Kubernetes) collects stderr as its log. PLUGIN_BRIDGE_LOG_LEVEL (debug, info,
// warn, error) sets the threshold, as in the TypeScript kit.
func newLogger(plugin string) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("PLUGIN_BRIDGE_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("plugin", plugin)
}
