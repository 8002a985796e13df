package apitest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// StoredRow is a documents row as CheckLedger reads it.
type StoredRow struct {
	ID     uuid.UUID
	User   uuid.UUID
	Key    string
	Status document.Status
	Size   int64
	ETag   string
}

// Ledger is what the bucket stores and what the database charges.
type Ledger struct {
	Objects map[string]minio.ObjectInfo // by key
	Rows    map[string]StoredRow        // by object key
	Used    map[uuid.UUID]int64         // quotas.used_bytes by user
}

// ReadLedger lists the bucket (as MinIO's root user) and reads every
// document and quota row.
func (s *Stack) ReadLedger(tb testing.TB) Ledger {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := Ledger{Objects: map[string]minio.ObjectInfo{}, Rows: map[string]StoredRow{}, Used: map[uuid.UUID]int64{}}
	for obj := range s.minio.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			tb.Fatalf("list the bucket: %v", obj.Err)
		}
		l.Objects[obj.Key] = obj
	}
	rows, err := s.DB.Query(ctx, `SELECT id, user_id, object_key, status, size_bytes, etag FROM documents`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r StoredRow
		if err := rows.Scan(&r.ID, &r.User, &r.Key, &r.Status, &r.Size, &r.ETag); err != nil {
			tb.Fatal(err)
		}
		l.Rows[r.Key] = r
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	quotas, err := s.DB.Query(ctx, `SELECT user_id, used_bytes FROM quotas`)
	if err != nil {
		tb.Fatal(err)
	}
	defer quotas.Close()
	for quotas.Next() {
		var u uuid.UUID
		var used int64
		if err := quotas.Scan(&u, &used); err != nil {
			tb.Fatal(err)
		}
		l.Used[u] = used
	}
	if err := quotas.Err(); err != nil {
		tb.Fatal(err)
	}
	return l
}

// Problems says where stored and charged bytes disagree: an object that is
// not its charged document's (of exactly the size and ETag charged) nor a
// pending document's; a charged document without its object; a user whose
// used_bytes is not the sum of their charged sizes.
func (l Ledger) Problems() []string {
	var out []string
	for key, obj := range l.Objects {
		r, ok := l.Rows[key]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("object %s (%d bytes) has no document", key, obj.Size))
		case r.Status == document.StatusPending:
		case !r.Status.Charged():
			out = append(out, fmt.Sprintf("object %s (%d bytes) belongs to %s document %s", key, obj.Size, r.Status, r.ID))
		case obj.Size != r.Size || obj.ETag != r.ETag:
			out = append(out, fmt.Sprintf("object %s holds %d bytes (ETag %s), its %s document %s is charged %d (ETag %s)",
				key, obj.Size, obj.ETag, r.Status, r.ID, r.Size, r.ETag))
		}
	}
	sums := map[uuid.UUID]int64{}
	for key, r := range l.Rows {
		if !r.Status.Charged() {
			continue
		}
		sums[r.User] += r.Size
		if _, ok := l.Objects[key]; !ok {
			out = append(out, fmt.Sprintf("%s document %s has no object %s", r.Status, r.ID, key))
		}
	}
	for u, used := range l.Used {
		if used != sums[u] {
			out = append(out, fmt.Sprintf("user %s: used_bytes %d, the charged documents add up to %d", u, used, sums[u]))
		}
	}
	return out
}

// WaitConfirmerIdle returns once the confirmer has had nothing pending or
// unacknowledged for quiet (longer than MinIO's 3 s resend of its queued
// PRIMARY notifications, so both copies of each have been handled), or
// fails tb after timeout.
func (s *Stack) WaitConfirmerIdle(tb testing.TB, quiet, timeout time.Duration) {
	tb.Helper()
	nc, js := s.connectNATS(tb)
	defer nc.Close()
	var stream jetstream.Stream
	deadline := time.Now().Add(timeout)
	var idleSince time.Time
	var lastSeq uint64
	var err error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		busy := true
		var seq uint64
		if stream == nil {
			stream, err = js.Stream(ctx, events.StreamMinIO)
		}
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = stream.Info(ctx); err == nil {
				seq = info.State.LastSeq
				var cons jetstream.Consumer
				if cons, err = js.Consumer(ctx, events.StreamMinIO, confirmer.ConsumerName); err == nil {
					var ci *jetstream.ConsumerInfo
					if ci, err = cons.Info(ctx); err == nil {
						busy = ci.NumPending+uint64(ci.NumAckPending) > 0
					}
				}
			}
		}
		cancel()
		switch {
		case busy || seq != lastSeq:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) >= quiet:
			return
		}
		lastSeq = seq
		if time.Now().After(deadline) {
			tb.Fatalf("the confirmer is not idle after %s (last error: %v)", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
