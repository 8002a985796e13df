package stack_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/config"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRolesRefuseToStartBeforeSetup: every role, pointed at a NATS server
// setup never ran on, stops at start saying to run docuvault setup, and
// creates nothing there (only setup makes streams and consumers).
func TestRolesRefuseToStartBeforeSetup(t *testing.T) {
	mi := testenv.MinIO(t)
	cfg := config.Defaults()
	cfg.DatabaseURL = testenv.Postgres(t)
	cfg.MinIOBucket = mi.NewBucket(t)
	cfg.MinIORegion = mi.Region
	cfg.NATSURL = testenv.NATS(t).URL
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg.JWTSecret = hex.EncodeToString(secret)
	apitest.SetIdentities(t, &cfg, mi) // setup, on the first NATS server
	fresh := testenv.NATS(t)
	cfg.NATSURL = fresh.URL
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.ClamdAddress = "127.0.0.1:1" // the scanner's; never reached before setup

	for _, role := range stack.Roles {
		t.Run(string(role), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := stack.Open(ctx, cfg, stack.Options{Roles: []stack.Role{role}, Registry: prometheus.NewRegistry()})
			if err == nil {
				err = s.Run(ctx)
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "run docuvault setup") {
				t.Errorf("%s before setup: %v, want an error saying to run docuvault setup", role, err)
			}
		})
	}
	jsz, err := fresh.Server().Jsz(&server.JSzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if jsz.Streams != 0 || jsz.Consumers != 0 {
		t.Errorf("the roles made %d streams and %d consumers on a server setup never ran on", jsz.Streams, jsz.Consumers)
	}
}
