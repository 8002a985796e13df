package objectstore

import (
	"reflect"
	"strings"
	"testing"
)

func TestRepositoryMinioEventsMatchesTheDefault(t *testing.T) {
	t.Parallel()
	n, err := LoadNotifications("../../minio-events.json")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(n, DefaultNotifications) {
		t.Fatalf("minio-events.json = %+v, the built-in default = %+v: keep them equal", n, DefaultNotifications)
	}
}

func TestServerEnvSuffixesEveryVariable(t *testing.T) {
	t.Parallel()
	env := NATSTarget{Address: "nats:4222", Subject: "minio.events", Username: "minio", Password: "pw", QueueDir: "/q"}.ServerEnv()
	primary, live := 0, 0
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasSuffix(name, "_PRIMARY"):
			primary++
		case strings.HasSuffix(name, "_LIVE"):
			live++
		default:
			t.Errorf("%s has no target suffix", name)
		}
	}
	// PRIMARY has the queue dir, LIVE has none (it must send at once).
	if primary != 7 || live != 6 {
		t.Fatalf("PRIMARY %d and LIVE %d variables: %v", primary, live, env)
	}
}
