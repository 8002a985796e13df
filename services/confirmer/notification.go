package confirmer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/docuvault/docuvault/shared/events"
)

// ObjectCreated is one object-created record of a MinIO bucket notification.
type ObjectCreated struct {
	EventName string // e.g. s3:ObjectCreated:Put
	Bucket    string
	Key       string // unescaped
	Size      int64
	ETag      string
	// Sequencer tells writes of one key apart: MinIO makes it from the
	// object's modification time, so both copies of a notification (targets
	// PRIMARY and LIVE) carry the same one and a later write another.
	Sequencer string
}

// ErrMalformed marks a notification that can never be processed.
var ErrMalformed = errors.New("malformed MinIO notification")

// createdEvents are the object-created events DocuVault confirms on.
var createdEvents = map[string]bool{
	"s3:ObjectCreated:Put":                     true,
	"s3:ObjectCreated:Post":                    true,
	"s3:ObjectCreated:Copy":                    true,
	"s3:ObjectCreated:CompleteMultipartUpload": true,
}

// minioNotification is the part of MinIO's notification JSON DocuVault reads.
type minioNotification struct {
	EventName string `json:"EventName"`
	Key       string `json:"Key"`
	Records   []struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				Size      int64  `json:"size"`
				ETag      string `json:"eTag"`
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// ParseNotification returns the object-created records of a MinIO
// notification; records of other events (deletes, reads) are skipped. Keys
// arrive query-escaped ("/" as %2F, space as +) and are returned unescaped.
// An error wraps ErrMalformed.
func ParseNotification(data []byte) ([]ObjectCreated, error) {
	if len(data) > events.MaxNotificationBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	var n minioNotification
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(n.Records) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrMalformed)
	}
	var out []ObjectCreated
	for i, r := range n.Records {
		name := r.EventName
		if name == "" {
			return nil, fmt.Errorf("%w: record %d has no eventName", ErrMalformed, i)
		}
		if !strings.HasPrefix(name, "s3:") {
			name = "s3:" + name // records name events without the s3: prefix
		}
		if !createdEvents[name] {
			continue
		}
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil || key == "" || r.S3.Bucket.Name == "" || r.S3.Object.Size < 0 {
			return nil, fmt.Errorf("%w: record %d has a bad bucket, key or size", ErrMalformed, i)
		}
		out = append(out, ObjectCreated{EventName: name, Bucket: r.S3.Bucket.Name, Key: key, Size: r.S3.Object.Size, ETag: r.S3.Object.ETag, Sequencer: r.S3.Object.Sequencer})
	}
	return out, nil
}
