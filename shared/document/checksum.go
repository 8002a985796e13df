package document

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// ChecksumAlgorithm names the algorithm of a Checksum.
type ChecksumAlgorithm string

// ChecksumSHA256 is SHA-256 of the whole object, the digest's 32 bytes in
// base64 as S3 spells it (x-amz-checksum-sha256).
const ChecksumSHA256 ChecksumAlgorithm = "sha256"

// ChecksumSHA256Composite is the checksum of an upload in parts, each part
// sent under its own signed SHA-256: the SHA-256 of the parts' digests one
// after the other, in base64, then "-" and the number of parts, as S3
// spells a composite checksum. A multipart document declaring it holds an
// empty Value until its parts are complete.
const ChecksumSHA256Composite ChecksumAlgorithm = "sha256_composite"

// Checksum is a document's content checksum: the one its client declared,
// signed into its upload URL so that MinIO stores no other bytes (it
// answers a body that does not match 400 XAmzContentChecksumMismatch, and a
// PUT without the signed header or with another value is refused). The
// zero Checksum is none declared.
type Checksum struct {
	Algorithm ChecksumAlgorithm `json:"algorithm"`
	Value     string            `json:"value"`
}

// IsZero reports whether c is no checksum.
func (c Checksum) IsZero() bool { return c == Checksum{} }

// OrNil returns a copy of c, or nil when it has no value (none declared,
// or an upload in parts not complete yet): a JSON field that is left out
// then.
func (c Checksum) OrNil() *Checksum {
	if c.Value == "" {
		return nil
	}
	return &c
}

// SHA256 returns the Checksum of the SHA-256 digest given in base64
// (S3's format), or an Invalid error naming field when it is not the
// standard base64 of 32 bytes.
func SHA256(field, b64 string) (Checksum, error) {
	digest, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(digest) != 32 {
		return Checksum{}, Errorf(Invalid, "%s must be the base64 of a SHA-256 digest (32 bytes, 44 characters)", field)
	}
	return Checksum{Algorithm: ChecksumSHA256, Value: b64}, nil
}

// checksumMismatch reports whether the object info describes cannot hold
// the bytes d's client declared a checksum of: info read the object's
// stored checksums (a stat with checksum mode) and d's is not among them.
// Nothing is known against d when it declared none, or when info did not
// read them (a notification, a listing: the write came through d's upload
// URL, its key's only writer, which MinIO took only with the signed
// checksum).
func (d *Document) checksumMismatch(info ObjectInfo) bool {
	if d.Checksum.Value == "" || info.Checksums == nil {
		return false
	}
	return info.Checksums[d.Checksum.Algorithm] != d.Checksum.Value
}

// compositeSHA256 is the ChecksumSHA256Composite of parts, each holding
// its SHA-256 as the object store took it (in number order).
func compositeSHA256(parts []Part) (Checksum, error) {
	h := sha256.New()
	for _, p := range parts {
		digest, err := base64.StdEncoding.DecodeString(p.ChecksumSHA256)
		if err != nil || len(digest) != sha256.Size {
			return Checksum{}, Errorf(Invalid, "part %d is stored without its SHA-256: upload it again", p.Number)
		}
		h.Write(digest)
	}
	return Checksum{Algorithm: ChecksumSHA256Composite,
		Value: fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), len(parts))}, nil
}
