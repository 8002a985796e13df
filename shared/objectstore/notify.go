package objectstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/minio/minio-go/v7/pkg/notification"
)

// Notification is a bucket notification rule, the format of the
// repository's minio-events.json.
type Notification struct {
	ARN    string   `json:"arn"`    // target, e.g. arn:minio:sqs::PRIMARY:nats
	Events []string `json:"events"` // e.g. s3:ObjectCreated:*
	Prefix string   `json:"prefix,omitempty"`
	Suffix string   `json:"suffix,omitempty"`
}

// DefaultNotification is the rule used when no file is configured; the
// repository's minio-events.json holds the same (a test keeps them equal).
var DefaultNotification = Notification{
	ARN:    "arn:minio:sqs::PRIMARY:nats",
	Events: []string{"s3:ObjectCreated:*"},
}

// LoadNotification reads a rule from a minio-events.json file.
func LoadNotification(path string) (Notification, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Notification{}, err
	}
	var n Notification
	if err := json.Unmarshal(b, &n); err != nil {
		return Notification{}, fmt.Errorf("%s: %w", path, err)
	}
	if n.ARN == "" || len(n.Events) == 0 {
		return Notification{}, fmt.Errorf("%s: arn and events are required", path)
	}
	return n, nil
}

// SetNotification replaces the bucket's notification configuration with
// rule n. Setting the same rule again changes nothing.
func (s *Store) SetNotification(ctx context.Context, n Notification) error {
	arn, err := notification.NewArnFromString(n.ARN)
	if err != nil {
		return fmt.Errorf("notification arn %q: %w", n.ARN, err)
	}
	q := notification.NewConfig(arn)
	for _, e := range n.Events {
		q.AddEvents(notification.EventType(e))
	}
	if n.Prefix != "" {
		q.AddFilterPrefix(n.Prefix)
	}
	if n.Suffix != "" {
		q.AddFilterSuffix(n.Suffix)
	}
	cfg := notification.Configuration{}
	cfg.AddQueue(q)
	if err := s.internal.SetBucketNotification(ctx, s.bucket, cfg); err != nil {
		return translate(err, "set bucket notification")
	}
	return nil
}

// NATSTarget is where a MinIO server sends bucket notifications.
type NATSTarget struct {
	Address  string // host:port of the NATS server
	Subject  string // minio.events
	Username string
	Password string
	QueueDir string // absolute; events wait here while NATS is down
}

// ServerEnv returns the environment that makes a MinIO server publish
// bucket notifications to t through JetStream as target PRIMARY. Every
// variable carries the target suffix; MinIO refuses a mix.
func (t NATSTarget) ServerEnv() []string {
	env := []string{
		"MINIO_NOTIFY_NATS_ENABLE_PRIMARY=on",
		"MINIO_NOTIFY_NATS_ADDRESS_PRIMARY=" + t.Address,
		"MINIO_NOTIFY_NATS_SUBJECT_PRIMARY=" + t.Subject,
		"MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY=on",
	}
	if t.Username != "" {
		env = append(env, "MINIO_NOTIFY_NATS_USERNAME_PRIMARY="+t.Username, "MINIO_NOTIFY_NATS_PASSWORD_PRIMARY="+t.Password)
	}
	if t.QueueDir != "" {
		env = append(env, "MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY="+t.QueueDir)
	}
	return env
}
