package kit

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// endpoint is where a sidecar listens. Unix sockets are the default: no port to pick, no network exposure.
// TCP binds loopback unless told otherwise.
type endpoint struct {
	unixPath string // set for a unix socket
	host     string
	port     int
}

var hostPortPattern = regexp.MustCompile(`^(?:\[([^\]]+)\]|([^:]*)):(\d+)$`)

// parseEndpoint reads "unix:/path" (also "unix:///path"; a relative path is made absolute) or "host:port"
// / ":port" (host defaults to 127.0.0.1), as PLUGIN_BRIDGE_ENDPOINT holds it.
func parseEndpoint(text string) (endpoint, error) {
	if rest, ok := strings.CutPrefix(text, "unix:"); ok {
		rest = strings.TrimPrefix(rest, "//")
		if rest == "" {
			return endpoint{}, fmt.Errorf("endpoint %q has no socket path", text)
		}
		abs, err := filepath.Abs(rest)
		if err != nil {
			return endpoint{}, fmt.Errorf("endpoint %q: %w", text, err)
		}
		return endpoint{unixPath: abs}, nil
	}
	m := hostPortPattern.FindStringSubmatch(text)
	if m == nil {
		return endpoint{}, fmt.Errorf("endpoint %q is neither unix:/path nor host:port", text)
	}
	host := m[1] + m[2]
	if host == "" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(m[3])
	if err != nil || port > 65535 {
		return endpoint{}, fmt.Errorf("endpoint %q has an invalid port", text)
	}
	return endpoint{host: host, port: port}, nil
}

// defaultEndpoint is a unix socket in the temp directory, named after the instance.
func defaultEndpoint(instanceID string) endpoint {
	return endpoint{unixPath: filepath.Join(os.TempDir(), "plugin-bridge-"+instanceID+".sock")}
}

// listen binds the endpoint; a unix socket left by a dead process is removed first.
func (e endpoint) listen() (net.Listener, error) {
	if e.unixPath != "" {
		if err := removeStaleSocket(e.unixPath); err != nil {
			return nil, err
		}
		return net.Listen("unix", e.unixPath)
	}
	return net.Listen("tcp", net.JoinHostPort(e.host, strconv.Itoa(e.port)))
}

// dialAddress is the address a host dials, exactly as grpc-js takes it and as announced: "unix:/abs/path"
// or "host:port" with the bound port. A wildcard bind is announced as loopback.
func (e endpoint) dialAddress(l net.Listener) string {
	if e.unixPath != "" {
		return "unix:" + e.unixPath
	}
	host := e.host
	if host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

// removeStaleSocket removes a socket file left by a process that died, so bind does not fail with "address
// in use". A socket that still accepts connections belongs to a live process: refuse rather than steal it.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("%s is in use by a live process", path)
	}
	return os.Remove(path)
}
