package objectstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
)

// Notification is a bucket notification rule.
type Notification struct {
	ARN    string   `json:"arn"`    // target, e.g. arn:minio:sqs::PRIMARY:nats
	Events []string `json:"events"` // e.g. s3:ObjectCreated:*
	Prefix string   `json:"prefix,omitempty"`
	Suffix string   `json:"suffix,omitempty"`
}

// Notifications is the format of the repository's minio-events.json.
type Notifications struct {
	Rules []Notification `json:"rules"`
}

// The two NATS targets a MinIO server publishes through. PRIMARY queues
// events on disk and publishes them to JetStream, waiting for its ack, so
// it survives a NATS outage; but MinIO sends from its queue only every 3 s.
// LIVE sends at once as a plain NATS publish (the stream captures the
// subject all the same), waits for nothing and drops events while NATS is
// down: PRIMARY is the guarantee, LIVE the speed. Both feed minio.events;
// the confirmer is idempotent, so the copy that arrives second changes
// nothing.
const (
	TargetPrimary = "PRIMARY"
	TargetLive    = "LIVE"
)

// DefaultNotifications are the rules used when no file is configured; the
// repository's minio-events.json holds the same (a test keeps them equal).
var DefaultNotifications = Notifications{Rules: []Notification{
	{ARN: "arn:minio:sqs::" + TargetPrimary + ":nats", Events: []string{"s3:ObjectCreated:*"}},
	{ARN: "arn:minio:sqs::" + TargetLive + ":nats", Events: []string{"s3:ObjectCreated:*"}},
}}

// LoadNotifications reads rules from a minio-events.json file.
func LoadNotifications(path string) (Notifications, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Notifications{}, err
	}
	var n Notifications
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return Notifications{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(n.Rules) == 0 {
		return Notifications{}, fmt.Errorf("%s: no rules", path)
	}
	for i, r := range n.Rules {
		if r.ARN == "" || len(r.Events) == 0 {
			return Notifications{}, fmt.Errorf("%s: rule %d: arn and events are required", path, i)
		}
	}
	return n, nil
}

// SetNotifications replaces the bucket's notification configuration with
// the rules. Setting the same rules again changes nothing.
func (s *Store) SetNotifications(ctx context.Context, n Notifications) error {
	cfg := notification.Configuration{}
	for _, r := range n.Rules {
		arn, err := notification.NewArnFromString(r.ARN)
		if err != nil {
			return fmt.Errorf("notification arn %q: %w", r.ARN, err)
		}
		q := notification.NewConfig(arn)
		for _, e := range r.Events {
			q.AddEvents(notification.EventType(e))
		}
		if r.Prefix != "" {
			q.AddFilterPrefix(r.Prefix)
		}
		if r.Suffix != "" {
			q.AddFilterSuffix(r.Suffix)
		}
		cfg.AddQueue(q)
	}
	// Just after MinIO starts, its notification targets may not be
	// registered yet and their ARNs are refused: try again for a while.
	deadline := time.Now().Add(targetsReadyWithin)
	for {
		err := s.internal.SetBucketNotification(ctx, s.cfg.Bucket, cfg)
		if err == nil {
			return nil
		}
		if !IsUnknownARN(err) || time.Now().After(deadline) {
			return translate(err, "set bucket notification")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// targetsReadyWithin bounds the wait for MinIO to register its targets.
const targetsReadyWithin = 15 * time.Second

// IsUnknownARN reports whether err is MinIO refusing a notification target
// it does not (yet) know.
func IsUnknownARN(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "InvalidArgument" && strings.Contains(r.Message, "destination ARN does not exist")
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
// bucket notifications to t as targets PRIMARY (through JetStream, queued
// in QueueDir) and LIVE (immediate, plain NATS). Every variable carries its
// target's suffix; MinIO refuses a mix.
func (t NATSTarget) ServerEnv() []string {
	var env []string
	for _, id := range []string{TargetPrimary, TargetLive} {
		jetstream := "on"
		if id == TargetLive {
			jetstream = "off"
		}
		env = append(env,
			"MINIO_NOTIFY_NATS_ENABLE_"+id+"=on",
			"MINIO_NOTIFY_NATS_ADDRESS_"+id+"="+t.Address,
			"MINIO_NOTIFY_NATS_SUBJECT_"+id+"="+t.Subject,
			"MINIO_NOTIFY_NATS_JETSTREAM_"+id+"="+jetstream,
		)
		if t.Username != "" {
			env = append(env, "MINIO_NOTIFY_NATS_USERNAME_"+id+"="+t.Username, "MINIO_NOTIFY_NATS_PASSWORD_"+id+"="+t.Password)
		}
	}
	if t.QueueDir != "" {
		env = append(env, "MINIO_NOTIFY_NATS_QUEUE_DIR_"+TargetPrimary+"="+t.QueueDir)
	}
	return env
}
