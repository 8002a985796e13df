package testenv

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfPath is the repository's nats.conf.
var NATSConfPath = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "nats.conf")
}()

// NATSConfPasswordVar is the environment variable nats.conf reads user's
// password from (NATS_<USER>_PASSWORD).
func NATSConfPasswordVar(user string) string { return "NATS_" + strings.ToUpper(user) + "_PASSWORD" }

// LoadNATSConf sets the environment variables nats.conf reads to
// passwords (user → password) and parses the file. Tests that call it
// cannot run in parallel (t.Setenv).
func LoadNATSConf(t testing.TB, passwords map[string]string) *server.Options {
	t.Helper()
	for user, p := range passwords {
		t.Setenv(NATSConfPasswordVar(user), p)
	}
	opts, err := server.ProcessConfigFile(NATSConfPath)
	if err != nil {
		t.Fatalf("load %s: %v", NATSConfPath, err)
	}
	return opts
}

// StartNATSConf starts a NATS server from nats.conf with passwords,
// changed only to listen on a free port of 127.0.0.1 (clients and
// monitoring) and to keep its JetStream store in a temporary directory;
// it is shut down when the test ends.
func StartNATSConf(t testing.TB, passwords map[string]string) *server.Server {
	t.Helper()
	SkipShort(t, "a real NATS server")
	opts := LoadNATSConf(t, passwords)
	opts.Host, opts.Port = natsHost, -1 // -1: a free port; 0 would be 4222
	opts.HTTPHost, opts.HTTPPort = natsHost, -1
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("configure NATS server from %s: %v", NATSConfPath, err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(natsReadyAfter) {
		t.Fatalf("NATS server from %s is not accepting connections after %s", NATSConfPath, natsReadyAfter)
	}
	return s
}
