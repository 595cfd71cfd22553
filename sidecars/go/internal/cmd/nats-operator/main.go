// Command nats-operator writes a NATS operator setup (see package natsoperator) for the tests of the kits
// without a JWT library at hand, the TypeScript and Python ones:
//
//	go run ./internal/cmd/nats-operator <dir>
//
// writes <dir>/operator.conf, the lines a nats-server configuration needs to trust the operator, and
// <dir>/user.creds, the credentials of a user of its JetStream account.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/natsoperator"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: nats-operator <dir>")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "nats-operator:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	setup, err := natsoperator.New("sidecar")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.conf"), []byte(setup.ServerConfig), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "user.creds"), setup.Credentials, 0o600)
}
