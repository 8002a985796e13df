package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// sampleEvery is how often the sampler reads the quotas while the run lasts.
const sampleEvery = 100 * time.Millisecond

// sampleStats is what the quota sampler saw.
type sampleStats struct {
	samples      int
	reserving    int     // samples in which some user had bytes reserved
	peakReserved int64   // the most one user had reserved
	peakShare    float64 // the highest (used + reserved) / limit
	dumps        int     // failures explained with the user's documents
}

// quotaSample reads every quota and, in the same snapshot (one statement),
// what its documents add up to: the sizes of the charged ones, the
// reservations of the pending ones, and how many documents reserve other
// than they should — a pending one its declared size (0 without one), any
// other nothing.
const quotaSample = `SELECT q.user_id, q.used_bytes, q.reserved_bytes, q.limit_bytes,
		coalesce(d.charged, 0)::bigint, coalesce(d.reserved, 0)::bigint, coalesce(d.misreserved, 0), coalesce(d.example, '')
	FROM quotas q LEFT JOIN (
		SELECT user_id,
			sum(size_bytes) FILTER (WHERE status = ANY($1)) AS charged,
			sum(reserved_bytes) FILTER (WHERE status = 'pending') AS reserved,
			count(*) FILTER (WHERE reserved_bytes <> CASE WHEN status = 'pending' THEN coalesce(declared_size, 0) ELSE 0 END) AS misreserved,
			min(id::text) FILTER (WHERE reserved_bytes <> CASE WHEN status = 'pending' THEN coalesce(declared_size, 0) ELSE 0 END) AS example
		FROM documents GROUP BY user_id
	) d USING (user_id)`

// chargedStatuses are the statuses whose sizes count against a quota.
func chargedStatuses() []string {
	var out []string
	for _, s := range []document.Status{document.StatusPending, document.StatusUploaded, document.StatusClassified,
		document.StatusClassificationFailed, document.StatusRejected} {
		if s.Charged() {
			out = append(out, string(s))
		}
	}
	return out
}

// sampleQuotas checks the quotas against the documents every sampleEvery
// until stop closes, and once more then. Each sample is one snapshot of
// PostgreSQL, so each must hold exactly, at every moment of the run:
//
//   - used_bytes + reserved_bytes <= limit_bytes;
//   - used_bytes is the sum of the sizes of the user's charged documents;
//   - reserved_bytes is the sum of the reservations of the user's pending
//     documents, each of which reserves its declared size (and no other
//     document anything).
//
// Every fourth sample also records the multipart documents' keys, for the
// check at the end that none left an upload behind.
func (r *rig) sampleQuotas(stop <-chan struct{}) {
	charged := chargedStatuses()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		r.sampleOnce(charged, i%4 == 0)
		select {
		case <-stop:
			r.sampleOnce(charged, true)
			return
		case <-tick.C:
		}
	}
}

// sampleOnce takes one sample; withKeys also records the multipart keys.
func (r *rig) sampleOnce(charged []string, withKeys bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	at := began.Sub(r.began).Round(time.Millisecond)
	// While PostgreSQL is away (and just after, until the pool has dropped
	// the connections the stop broke) a sample may fail to connect: it is
	// lost, not failed. Whatever a sample reads is checked in full.
	rows, err := r.s.DB.Query(ctx, quotaSample, charged)
	if err != nil {
		if !r.pgAway(began, err) {
			r.fail("quota sample at +%s: %v", at, err)
		}
		return
	}
	type bad struct {
		user uuid.UUID
		what string
	}
	var bads []bad
	var peakReserved int64
	var peakShare float64
	for rows.Next() {
		var user uuid.UUID
		var used, reserved, limit, chargedSum, reservedSum, misreserved int64
		var example string
		if err := rows.Scan(&user, &used, &reserved, &limit, &chargedSum, &reservedSum, &misreserved, &example); err != nil {
			rows.Close()
			if !r.pgAway(began, err) {
				r.fail("quota sample at +%s: %v", at, err)
			}
			return
		}
		peakReserved = max(peakReserved, reserved)
		if limit > 0 {
			peakShare = max(peakShare, float64(used+reserved)/float64(limit))
		}
		if used+reserved > limit {
			bads = append(bads, bad{user, fmt.Sprintf("used_bytes %d + reserved_bytes %d = %d > limit_bytes %d", used, reserved, used+reserved, limit)})
		}
		if used != chargedSum {
			bads = append(bads, bad{user, fmt.Sprintf("used_bytes %d, but the charged documents add up to %d", used, chargedSum)})
		}
		if reserved != reservedSum {
			bads = append(bads, bad{user, fmt.Sprintf("reserved_bytes %d, but the pending documents reserve %d", reserved, reservedSum)})
		}
		if misreserved > 0 {
			bads = append(bads, bad{user, fmt.Sprintf("%d document(s) reserve other than their declared size while pending and 0 otherwise, e.g. %s", misreserved, example)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		if !r.pgAway(began, err) {
			r.fail("quota sample at +%s: %v", at, err)
		}
		return
	}
	var keys map[uuid.UUID]string
	if withKeys {
		keys = r.readMultipartKeys(ctx)
	}

	r.mu.Lock()
	r.sampled.samples++
	if peakReserved > 0 {
		r.sampled.reserving++
	}
	r.sampled.peakReserved = max(r.sampled.peakReserved, peakReserved)
	r.sampled.peakShare = max(r.sampled.peakShare, peakShare)
	for id, key := range keys {
		r.multipartKeys[id] = key
	}
	dump := r.sampled.dumps < 3 && len(bads) > 0
	if dump {
		r.sampled.dumps++
	}
	r.mu.Unlock()
	for i, b := range bads {
		msg := fmt.Sprintf("quota sample at +%s: user %s: %s", at, b.user, b.what)
		if dump && i == 0 {
			msg += "; read just after, its pending or reserving documents: " + r.describeDocuments(ctx, b.user)
		}
		r.fail("%s", msg)
	}
}

// readMultipartKeys returns the keys of the multipart documents now in
// PostgreSQL, the workers' and any whose upload-url answer was lost.
func (r *rig) readMultipartKeys(ctx context.Context) map[uuid.UUID]string {
	began := time.Now()
	rows, err := r.s.DB.Query(ctx, `SELECT id, object_key FROM documents WHERE part_size IS NOT NULL`)
	if err != nil {
		if !r.pgAway(began, err) {
			r.fail("read multipart documents: %v", err)
		}
		return nil
	}
	defer rows.Close()
	keys := map[uuid.UUID]string{}
	for rows.Next() {
		var id uuid.UUID
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			if !r.pgAway(began, err) {
				r.fail("read multipart documents: %v", err)
			}
			return nil
		}
		keys[id] = key
	}
	return keys
}

// describeDocuments lists user's pending or reserving documents, for a
// failure's report.
func (r *rig) describeDocuments(ctx context.Context, user uuid.UUID) string {
	rows, err := r.s.DB.Query(ctx, `SELECT id, status, coalesce(declared_size, 0), reserved_bytes, size_bytes,
			coalesce(part_size, 0), updated_at
		FROM documents WHERE user_id = $1 AND (status = 'pending' OR reserved_bytes <> 0) ORDER BY updated_at LIMIT 20`, user)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id uuid.UUID
		var status string
		var declared, reserved, size, part int64
		var updated time.Time
		if err := rows.Scan(&id, &status, &declared, &reserved, &size, &part, &updated); err != nil {
			return err.Error()
		}
		out = append(out, fmt.Sprintf("%s %s declared %d reserved %d size %d part_size %d updated %s",
			id, status, declared, reserved, size, part, updated.Format("15:04:05.000")))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}
