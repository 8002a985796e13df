// Package config reads DocuVault's settings from the environment, once, into
// a typed struct, and validates them with messages that name the variable.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting the services read.
type Config struct {
	DatabaseURL string // DATABASE_URL

	MinIOEndpoint       string // MINIO_ENDPOINT, host:port the services reach
	MinIOPublicEndpoint string // MINIO_PUBLIC_ENDPOINT, host:port browsers reach; defaults to MINIO_ENDPOINT
	// Each role's own credentials (MINIO_<ROLE>_ACCESS_KEY and
	// _SECRET_KEY, NATS_<ROLE>_PASSWORD): a process reads and needs only
	// those of the roles it runs.
	API, Confirmer, Sweeper, Classifier, Scanner RoleCredentials
	// The identity that signs upload URLs: s3:PutObject on the bucket only.
	MinIOUploadAccessKey string // MINIO_UPLOAD_ACCESS_KEY
	MinIOUploadSecretKey string // MINIO_UPLOAD_SECRET_KEY
	// The identity that signs download URLs: s3:GetObject on the bucket only.
	MinIODownloadAccessKey string // MINIO_DOWNLOAD_ACCESS_KEY
	MinIODownloadSecretKey string // MINIO_DOWNLOAD_SECRET_KEY
	// An admin credential (MinIO's root user, say), read only by
	// `docuvault setup`: it creates the bucket, the three identities above
	// and their policies. The services never hold it.
	MinIOAdminAccessKey string // MINIO_ADMIN_ACCESS_KEY
	MinIOAdminSecretKey string // MINIO_ADMIN_SECRET_KEY
	MinIOBucket         string // MINIO_BUCKET
	MinIORegion         string // MINIO_REGION
	MinIOUseTLS         bool   // MINIO_USE_TLS, TLS to MINIO_ENDPOINT
	// MinIOPublicUseTLS is TLS to MINIO_PUBLIC_ENDPOINT, the scheme of the
	// URLs browsers get; it defaults to MINIO_USE_TLS.
	MinIOPublicUseTLS bool // MINIO_PUBLIC_USE_TLS

	MinIOEventsConfig string // MINIO_EVENTS_CONFIG, path of a minio-events.json; "" means the built-in rule

	NATSURL string // NATS_URL
	// NATSSetupPassword is the password of NATS user setup, which alone
	// creates and changes the streams, their consumers and the sweeper's
	// schedule; read by `docuvault setup` only. Empty: no credentials.
	NATSSetupPassword string // NATS_SETUP_PASSWORD
	// Stream limits (events.StreamLimits): MINIO_EVENTS holds the
	// notifications not yet confirmed, and refuses new ones when full (they
	// wait in MinIO's queue); DOCUMENTS holds the newest document events
	// and drops its oldest when full.
	NATSMinIOEventsMaxBytes int64         // NATS_MINIO_EVENTS_MAX_BYTES
	NATSMinIOEventsMaxAge   time.Duration // NATS_MINIO_EVENTS_MAX_AGE
	NATSDocumentsMaxBytes   int64         // NATS_DOCUMENTS_MAX_BYTES
	NATSStreamReplicas      int64         // NATS_STREAM_REPLICAS
	NATSDocumentsMaxAge     time.Duration // NATS_DOCUMENTS_MAX_AGE
	// NATSDocumentsMaxPerSubject bounds the events DOCUMENTS keeps of one
	// type of one user (document.<type>.<user>).
	NATSDocumentsMaxPerSubject int64 // NATS_DOCUMENTS_MAX_PER_SUBJECT

	JWTSecret         string        // JWT_SECRET, HS256 key, at least 32 bytes
	JWTPublicKeysFile string        // JWT_PUBLIC_KEYS_FILE, PEM public keys for RS256, ES256 and EdDSA tokens
	JWTIssuer         string        // JWT_ISSUER, checked when set
	JWTAudience       string        // JWT_AUDIENCE, checked when set
	JWTLeeway         time.Duration // JWT_LEEWAY, clock skew tolerated on exp, nbf and iat

	HTTPAddr string // HTTP_ADDR
	// PprofAddr, when set, is where a service serves Go's profiles
	// (/debug/pprof/), apart from the API; empty (the default) serves none.
	PprofAddr string // PPROF_ADDR
	// CORSOrigins are the exact origins (scheme://host[:port]) of the
	// frontends allowed to call the API from another origin; `docuvault
	// dev` lets them PUT to its MinIO too. Empty: no cross-origin access.
	CORSOrigins    []string      // CORS_ORIGINS, comma-separated
	UploadURLTTL   time.Duration // UPLOAD_URL_TTL
	DownloadURLTTL time.Duration // DOWNLOAD_URL_TTL
	MaxUploadBytes int64         // MAX_UPLOAD_BYTES
	// MultipartThreshold is the declared size above which an upload goes
	// in parts (a client may ask for parts below it too).
	MultipartThreshold int64 // MULTIPART_THRESHOLD
	// MultipartPartSize is the smallest part size of a multipart upload;
	// larger files get larger parts (at most 10,000 parts).
	MultipartPartSize   int64 // MULTIPART_PART_SIZE
	QuotaDefaultBytes   int64 // QUOTA_DEFAULT_BYTES
	UploadsPerMinute    int64 // UPLOAD_RATE_PER_MINUTE, upload URLs one user may ask for per minute
	MaxPendingUploads   int64 // MAX_PENDING_UPLOADS, a user's uploads waiting for their bytes
	DeletesPerMinute    int64 // DELETE_RATE_PER_MINUTE, deletes one user may ask for per minute
	StoragePerMinute    int64 // STORAGE_RATE_PER_MINUTE, confirms of pending uploads and part requests one user may make per minute on one api replica
	ReclassifyPerMinute int64 // RECLASSIFY_RATE_PER_MINUTE, classification requests one user may make per minute
	// ConfirmWait is how long POST /confirm of a pending upload waits for
	// MinIO's notification to settle it (one writer per upload) before it
	// stats and settles it itself; 0 waits not at all.
	ConfirmWait         time.Duration // CONFIRM_WAIT
	RequireDeclaredSize bool          // REQUIRE_DECLARED_SIZE, refuse (422) an upload URL asked for without size_bytes: every upload then has a signed, reserved size
	RequireChecksum     bool          // REQUIRE_CHECKSUM, refuse (422) a single PUT's upload URL asked for without sha256: every document so uploaded is proven by MinIO
	ReadHeaderTimeout   time.Duration // HTTP_READ_HEADER_TIMEOUT, how long a client may take to send its headers
	MaxEventStreams     int64         // EVENT_STREAMS_MAX, open /api/events streams one api replica holds
	// EventsResumeWindow is how far back a reconnecting event stream may
	// resume (Last-Event-ID); older, it starts from now with a reset event.
	EventsResumeWindow time.Duration // EVENTS_RESUME_WINDOW
	// EventsConnectsPerMinute is how many event streams one user may open
	// per minute on one api replica (bursts of as many).
	EventsConnectsPerMinute int64 // EVENTS_CONNECTS_PER_MINUTE

	SweepInterval     time.Duration // SWEEP_INTERVAL, how often the sweeper runs (JetStream schedule)
	PendingTTL        time.Duration // PENDING_TTL, age after which a pending upload is stale
	RejectedRetention time.Duration // REJECTED_RETENTION, how long rejected documents stay
	SweepBatchSize    int64         // SWEEP_BATCH_SIZE, rows per sweep query or transaction
	ReconcileKeys     int64         // SWEEP_RECONCILE_KEYS, bucket keys one sweep checks against the table
	ReconcilePeriod   time.Duration // SWEEP_RECONCILE_PERIOD, how often a reconciliation pass over the bucket starts
	LedgerRepair      bool          // LEDGER_REPAIR, the sweeper's ledger check repairs the quota rows it finds off their documents (false: report only)

	ClassifyMaxBytes int64  // CLASSIFY_MAX_BYTES, how much of a document the classifier reads
	ClassifyRules    string // CLASSIFY_RULES, path of a rules JSON file; "" means the built-in rules
	// ClassifyRecoveryAfter is how long a document may wait for the
	// classifier, or for the scanner, before that role's recovery takes
	// it up from PostgreSQL: its event dropped by a full DOCUMENTS log,
	// deferred over its owner's share, or lost with a replica.
	ClassifyRecoveryAfter time.Duration // CLASSIFY_RECOVERY_AFTER

	// ClamdAddress is where the scanner reaches clamd: host:port (its
	// TCPSocket) or the path of its LocalSocket; "" for no scanner.
	ClamdAddress string // CLAMD_ADDRESS
	// ScanRequired: every document stored is scanned for malware before
	// it may be downloaded or classified. It defaults to on wherever
	// CLAMD_ADDRESS is set; every role must agree (the api gives download
	// URLs by it, the confirmer stores documents pending their scan).
	ScanRequired bool // SCAN_REQUIRED
	// ScanMaxBytes is the largest document the scanner sends to clamd; a
	// larger one's scan fails and, while scanning is required, it is never
	// downloadable. Keep it at or below clamd's StreamMaxLength.
	ScanMaxBytes int64 // SCAN_MAX_BYTES

	// Settings of `docuvault dev` only; "" or 0 means its default.
	DevDataDir          string // DEV_DATA_DIR
	DevNATSAddr         string // DEV_NATS_ADDR
	DevMinIOAddr        string // DEV_MINIO_ADDR
	DevMinIOConsoleAddr string // DEV_MINIO_CONSOLE_ADDR
	DevMinIOBin         string // DEV_MINIO_BIN
	DevPGPort           int64  // DEV_PG_PORT

	LogLevel  string // LOG_LEVEL
	LogFormat string // LOG_FORMAT: json or console
}

// RoleNames are the services' roles, each with credentials of its own.
var RoleNames = []string{"api", "confirmer", "sweeper", "classifier", "scanner"}

// RoleCredentials are one role's own credentials.
type RoleCredentials struct {
	// MinIOAccessKey and MinIOSecretKey are the role's MinIO identity,
	// whose policy grants that role's calls and nothing else.
	MinIOAccessKey string // MINIO_<ROLE>_ACCESS_KEY
	MinIOSecretKey string // MINIO_<ROLE>_SECRET_KEY
	// NATSPassword is the password of the NATS user named after the role;
	// empty connects without credentials (an embedded dev or test server).
	NATSPassword string // NATS_<ROLE>_PASSWORD
}

// Role returns the credentials of role (one of RoleNames), nil for
// another name.
func (c *Config) Role(role string) *RoleCredentials {
	switch role {
	case "api":
		return &c.API
	case "confirmer":
		return &c.Confirmer
	case "sweeper":
		return &c.Sweeper
	case "classifier":
		return &c.Classifier
	case "scanner":
		return &c.Scanner
	}
	return nil
}

// The signers' names among the MinIO identities (MinIOIdentities).
const (
	UploadSigner   = "upload"   // signs upload URLs
	DownloadSigner = "download" // signs download URLs
)

// MinIOIdentity is one of the MinIO identities `docuvault setup` creates
// and the services act or sign as.
type MinIOIdentity struct {
	// Name is a role's (one of RoleNames), UploadSigner or DownloadSigner;
	// its settings are MINIO_<NAME>_ACCESS_KEY and _SECRET_KEY.
	Name string
	// AccessKey and SecretKey point at its keys in the Config.
	AccessKey, SecretKey *string
}

// MinIOIdentities are every MinIO identity c holds: the upload and
// download signers', then each role's, in RoleNames' order. The admin
// credential is not one: it only creates them.
func (c *Config) MinIOIdentities() []MinIOIdentity {
	ids := []MinIOIdentity{
		{UploadSigner, &c.MinIOUploadAccessKey, &c.MinIOUploadSecretKey},
		{DownloadSigner, &c.MinIODownloadAccessKey, &c.MinIODownloadSecretKey},
	}
	for _, role := range RoleNames {
		rc := c.Role(role)
		ids = append(ids, MinIOIdentity{role, &rc.MinIOAccessKey, &rc.MinIOSecretKey})
	}
	return ids
}

// roleVar is the name of role's variable with suffix, e.g.
// MINIO_CONFIRMER_ACCESS_KEY for ("MINIO_", "confirmer", "_ACCESS_KEY").
func roleVar(prefix, role, suffix string) string {
	return prefix + strings.ToUpper(role) + suffix
}

// MinMinIOEventsBytes is the smallest NATS_MINIO_EVENTS_MAX_BYTES: twice
// events.LargestNotification, the largest notification MinIO can make (a
// client pads it with its headers), since one the stream can never hold
// would stop MinIO's notification queue. It is written out here because
// config imports no adapter; TestMinMinIOEventsBytes holds the two together.
const MinMinIOEventsBytes = 256 << 10

// MaxConfirmWait bounds CONFIRM_WAIT.
const MaxConfirmWait = 10 * time.Second

// MinDocumentsBytes is the smallest NATS_DOCUMENTS_MAX_BYTES: the largest
// document event DOCUMENTS takes.
const MinDocumentsBytes = 64 << 10

// Defaults returns the settings used where a variable is not set.
func Defaults() Config {
	return Config{
		MinIOBucket:         "documents",
		MinIORegion:         "us-east-1",
		NATSURL:             "nats://127.0.0.1:4222",
		HTTPAddr:            "127.0.0.1:8080",
		UploadURLTTL:        15 * time.Minute,
		DownloadURLTTL:      5 * time.Minute,
		MaxUploadBytes:      100 << 20,
		MultipartThreshold:  64 << 20,
		MultipartPartSize:   16 << 20,
		QuotaDefaultBytes:   104857600,
		UploadsPerMinute:    120,
		ConfirmWait:         2 * time.Second,
		MaxPendingUploads:   100,
		DeletesPerMinute:    300,
		StoragePerMinute:    600,
		ReclassifyPerMinute: 30,
		// clamd's own StreamMaxLength default (Debian's packaged
		// clamd.conf sets 25M), and MAX_UPLOAD_BYTES': every upload is
		// scanned.
		ScanMaxBytes:               100 << 20,
		ReadHeaderTimeout:          5 * time.Second,
		JWTLeeway:                  30 * time.Second,
		MaxEventStreams:            1000,
		EventsResumeWindow:         time.Hour,
		EventsConnectsPerMinute:    20,
		NATSMinIOEventsMaxBytes:    1 << 30,
		NATSMinIOEventsMaxAge:      7 * 24 * time.Hour,
		NATSDocumentsMaxBytes:      1 << 30,
		NATSStreamReplicas:         1,
		NATSDocumentsMaxAge:        30 * 24 * time.Hour,
		NATSDocumentsMaxPerSubject: 10000,
		SweepInterval:              30 * time.Minute,
		PendingTTL:                 time.Hour,
		RejectedRetention:          24 * time.Hour,
		SweepBatchSize:             500,
		ReconcileKeys:              10000,
		ReconcilePeriod:            24 * time.Hour,
		LedgerRepair:               true,
		ClassifyMaxBytes:           8 << 20,
		ClassifyRecoveryAfter:      time.Minute,
		LogLevel:                   "info",
		LogFormat:                  "json",
	}
}

// Load reads the environment over Defaults and validates the result.
func Load() (Config, error) {
	return parse(os.LookupEnv)
}

// parse reads settings through lookup, so tests need not touch the process
// environment.
func parse(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok && v != "" {
			*dst = v
		}
	}
	// duration reads name into dst: a positive duration, or also 0 (for
	// "none") when zero says so.
	duration := func(name string, dst *time.Duration, zero bool) {
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		switch {
		case zero && (err != nil || d < 0):
			errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 2s (or 0)", name, v))
		case !zero && (err != nil || d <= 0):
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 15m", name, v))
		default:
			*dst = d
		}
	}
	flag := func(name string, dst *bool) {
		if v, ok := lookup(name); ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", name, v))
			}
			*dst = b
		}
	}
	dur := func(name string, dst *time.Duration) { duration(name, dst, false) }
	bytes := func(name string, dst *int64) {
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive number of bytes", name, v))
			return
		}
		*dst = n
	}
	str("DATABASE_URL", &c.DatabaseURL)
	str("MINIO_ENDPOINT", &c.MinIOEndpoint)
	str("MINIO_PUBLIC_ENDPOINT", &c.MinIOPublicEndpoint)
	for _, role := range RoleNames {
		rc := c.Role(role)
		str(roleVar("MINIO_", role, "_ACCESS_KEY"), &rc.MinIOAccessKey)
		str(roleVar("MINIO_", role, "_SECRET_KEY"), &rc.MinIOSecretKey)
		str(roleVar("NATS_", role, "_PASSWORD"), &rc.NATSPassword)
	}
	for _, gone := range []string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "NATS_USER", "NATS_PASSWORD"} {
		// One credential for every role is what this release removed:
		// say so rather than run without the credentials meant.
		if v, ok := lookup(gone); ok && v != "" {
			errs = append(errs, fmt.Errorf("%s is no longer read: each role has credentials of its own (MINIO_<ROLE>_ACCESS_KEY and _SECRET_KEY, NATS_<ROLE>_PASSWORD; see the README)", gone))
		}
	}
	str("MINIO_UPLOAD_ACCESS_KEY", &c.MinIOUploadAccessKey)
	str("MINIO_UPLOAD_SECRET_KEY", &c.MinIOUploadSecretKey)
	str("MINIO_DOWNLOAD_ACCESS_KEY", &c.MinIODownloadAccessKey)
	str("MINIO_DOWNLOAD_SECRET_KEY", &c.MinIODownloadSecretKey)
	str("MINIO_ADMIN_ACCESS_KEY", &c.MinIOAdminAccessKey)
	str("MINIO_ADMIN_SECRET_KEY", &c.MinIOAdminSecretKey)
	str("MINIO_BUCKET", &c.MinIOBucket)
	str("MINIO_REGION", &c.MinIORegion)
	flag("MINIO_USE_TLS", &c.MinIOUseTLS)
	c.MinIOPublicUseTLS = c.MinIOUseTLS
	flag("MINIO_PUBLIC_USE_TLS", &c.MinIOPublicUseTLS)
	str("MINIO_EVENTS_CONFIG", &c.MinIOEventsConfig)
	str("NATS_URL", &c.NATSURL)
	str("NATS_SETUP_PASSWORD", &c.NATSSetupPassword)
	bytes("NATS_MINIO_EVENTS_MAX_BYTES", &c.NATSMinIOEventsMaxBytes)
	dur("NATS_MINIO_EVENTS_MAX_AGE", &c.NATSMinIOEventsMaxAge)
	bytes("NATS_DOCUMENTS_MAX_BYTES", &c.NATSDocumentsMaxBytes)
	bytes("NATS_STREAM_REPLICAS", &c.NATSStreamReplicas)
	dur("NATS_DOCUMENTS_MAX_AGE", &c.NATSDocumentsMaxAge)
	bytes("NATS_DOCUMENTS_MAX_PER_SUBJECT", &c.NATSDocumentsMaxPerSubject)
	str("JWT_SECRET", &c.JWTSecret)
	str("JWT_PUBLIC_KEYS_FILE", &c.JWTPublicKeysFile)
	str("JWT_ISSUER", &c.JWTIssuer)
	str("JWT_AUDIENCE", &c.JWTAudience)
	dur("JWT_LEEWAY", &c.JWTLeeway)
	str("HTTP_ADDR", &c.HTTPAddr)
	str("PPROF_ADDR", &c.PprofAddr)
	if v, ok := lookup("CORS_ORIGINS"); ok && strings.TrimSpace(v) != "" {
		c.CORSOrigins = nil
		for o := range strings.SplitSeq(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.CORSOrigins = append(c.CORSOrigins, o)
			}
		}
	}
	dur("UPLOAD_URL_TTL", &c.UploadURLTTL)
	dur("DOWNLOAD_URL_TTL", &c.DownloadURLTTL)
	duration("CONFIRM_WAIT", &c.ConfirmWait, true)
	bytes("MAX_UPLOAD_BYTES", &c.MaxUploadBytes)
	bytes("MULTIPART_THRESHOLD", &c.MultipartThreshold)
	bytes("MULTIPART_PART_SIZE", &c.MultipartPartSize)
	bytes("QUOTA_DEFAULT_BYTES", &c.QuotaDefaultBytes)
	bytes("UPLOAD_RATE_PER_MINUTE", &c.UploadsPerMinute)
	bytes("MAX_PENDING_UPLOADS", &c.MaxPendingUploads)
	bytes("DELETE_RATE_PER_MINUTE", &c.DeletesPerMinute)
	bytes("STORAGE_RATE_PER_MINUTE", &c.StoragePerMinute)
	bytes("RECLASSIFY_RATE_PER_MINUTE", &c.ReclassifyPerMinute)
	flag("REQUIRE_DECLARED_SIZE", &c.RequireDeclaredSize)
	flag("REQUIRE_CHECKSUM", &c.RequireChecksum)
	dur("HTTP_READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout)
	bytes("EVENT_STREAMS_MAX", &c.MaxEventStreams)
	dur("EVENTS_RESUME_WINDOW", &c.EventsResumeWindow)
	bytes("EVENTS_CONNECTS_PER_MINUTE", &c.EventsConnectsPerMinute)
	dur("SWEEP_INTERVAL", &c.SweepInterval)
	dur("PENDING_TTL", &c.PendingTTL)
	dur("REJECTED_RETENTION", &c.RejectedRetention)
	bytes("SWEEP_BATCH_SIZE", &c.SweepBatchSize)
	bytes("SWEEP_RECONCILE_KEYS", &c.ReconcileKeys)
	dur("SWEEP_RECONCILE_PERIOD", &c.ReconcilePeriod)
	flag("LEDGER_REPAIR", &c.LedgerRepair)
	bytes("CLASSIFY_MAX_BYTES", &c.ClassifyMaxBytes)
	str("CLASSIFY_RULES", &c.ClassifyRules)
	dur("CLASSIFY_RECOVERY_AFTER", &c.ClassifyRecoveryAfter)
	str("CLAMD_ADDRESS", &c.ClamdAddress)
	c.ScanRequired = c.ClamdAddress != ""
	flag("SCAN_REQUIRED", &c.ScanRequired)
	bytes("SCAN_MAX_BYTES", &c.ScanMaxBytes)
	str("DEV_DATA_DIR", &c.DevDataDir)
	str("DEV_NATS_ADDR", &c.DevNATSAddr)
	str("DEV_MINIO_ADDR", &c.DevMinIOAddr)
	str("DEV_MINIO_CONSOLE_ADDR", &c.DevMinIOConsoleAddr)
	str("DEV_MINIO_BIN", &c.DevMinIOBin)
	bytes("DEV_PG_PORT", &c.DevPGPort)
	str("LOG_LEVEL", &c.LogLevel)
	str("LOG_FORMAT", &c.LogFormat)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, nil
}

// Validate checks the settings a process running roles (of RoleNames)
// needs: what is missing is named by its variable. A process needs the
// credentials of its own roles only: the api's signers and token keys
// only with the api.
func (c Config) Validate(roles ...string) error {
	var errs []error
	vars := append(c.storeVars(), [2]string{"NATS_URL", c.NATSURL})
	api := false
	for _, role := range roles {
		if c.Role(role) == nil {
			errs = append(errs, fmt.Errorf("unknown role %q (want one of %s)", role, strings.Join(RoleNames, ", ")))
			continue
		}
		vars = append(vars, c.roleVars(role)...)
		api = api || role == "api"
		if role == "scanner" {
			vars = append(vars, [2]string{"CLAMD_ADDRESS", c.ClamdAddress})
		}
	}
	if api {
		vars = append(vars, c.signerVars()...)
	}
	errs = append(errs, requireSet(vars...)...)
	errs = append(errs, c.validateIdentities()...)
	if api && c.JWTSecret == "" && c.JWTPublicKeysFile == "" {
		errs = append(errs, errors.New("JWT_SECRET or JWT_PUBLIC_KEYS_FILE is required"))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JWT_SECRET must be at least 32 bytes"))
	}
	if c.JWTPublicKeysFile != "" && (c.JWTIssuer == "" || c.JWTAudience == "") {
		// The provider's keys sign tokens for its other applications too:
		// without both checks, any of them would be accepted here.
		errs = append(errs, errors.New("JWT_PUBLIC_KEYS_FILE needs JWT_ISSUER and JWT_AUDIENCE, so that tokens the provider issued for other applications are refused"))
	}
	errs = append(errs, c.refuseExampleSecrets()...)
	for _, o := range c.CORSOrigins {
		if err := ValidateOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("CORS_ORIGINS: %w", err))
		}
	}
	for _, e := range []struct{ name, value string }{{"MINIO_ENDPOINT", c.MinIOEndpoint}, {"MINIO_PUBLIC_ENDPOINT", c.MinIOPublicEndpoint}} {
		if strings.Contains(e.value, "://") || strings.Contains(e.value, "/") {
			errs = append(errs, fmt.Errorf("%s must be host:port without a scheme or path, got %q", e.name, e.value))
		}
	}
	if c.ScanMaxBytes < 1 {
		errs = append(errs, fmt.Errorf("SCAN_MAX_BYTES must be at least 1, got %d", c.ScanMaxBytes))
	}
	if c.PendingTTL <= c.UploadURLTTL {
		// A stale row could be purged while its URL still accepts a PUT.
		errs = append(errs, fmt.Errorf("PENDING_TTL (%s) must be longer than UPLOAD_URL_TTL (%s)", c.PendingTTL, c.UploadURLTTL))
	}
	if c.ConfirmWait < 0 || c.ConfirmWait > MaxConfirmWait {
		// A confirm holds its request (and its client) for the wait.
		errs = append(errs, fmt.Errorf("CONFIRM_WAIT must be between 0 and %s, got %s", MaxConfirmWait, c.ConfirmWait))
	}
	if c.MaxUploadBytes < 1 || c.MaxUploadBytes > 5<<40 {
		errs = append(errs, fmt.Errorf("MAX_UPLOAD_BYTES must be between 1 and 5 TiB (the object store's largest object), got %d", c.MaxUploadBytes))
	}
	if c.MultipartThreshold < 1 || c.MultipartThreshold > 5<<30 {
		errs = append(errs, fmt.Errorf("MULTIPART_THRESHOLD must be between 1 and 5 GiB (the largest single PUT), got %d", c.MultipartThreshold))
	}
	if c.MultipartPartSize < 5<<20 || c.MultipartPartSize > 5<<30 {
		errs = append(errs, fmt.Errorf("MULTIPART_PART_SIZE must be between 5 MiB and 5 GiB (the object store's part limits), got %d", c.MultipartPartSize))
	}
	if c.NATSMinIOEventsMaxBytes < MinMinIOEventsBytes {
		errs = append(errs, fmt.Errorf("NATS_MINIO_EVENTS_MAX_BYTES must be at least %d (twice the largest notification MinIO can make: one the stream can never hold stops MinIO's notification queue), got %d", MinMinIOEventsBytes, c.NATSMinIOEventsMaxBytes))
	}
	if c.NATSDocumentsMaxBytes < MinDocumentsBytes || c.NATSDocumentsMaxPerSubject < 1 {
		errs = append(errs, fmt.Errorf("NATS_DOCUMENTS_MAX_BYTES must be at least %d (the largest document event) and NATS_DOCUMENTS_MAX_PER_SUBJECT at least 1, got %d and %d", MinDocumentsBytes, c.NATSDocumentsMaxBytes, c.NATSDocumentsMaxPerSubject))
	}
	if c.NATSStreamReplicas < 1 || c.NATSStreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("NATS_STREAM_REPLICAS must be between 1 and 5 (JetStream's limit; 3 on a three-node cluster), got %d", c.NATSStreamReplicas))
	}
	if c.ReconcileKeys < 1 || c.ReconcileKeys > 100_000 {
		errs = append(errs, fmt.Errorf("SWEEP_RECONCILE_KEYS must be between 1 and 100000 (one sweep holds them in memory and asks PostgreSQL about them in one query), got %d", c.ReconcileKeys))
	}
	if c.ReconcilePeriod < c.SweepInterval {
		errs = append(errs, fmt.Errorf("SWEEP_RECONCILE_PERIOD (%s) must be at least SWEEP_INTERVAL (%s)", c.ReconcilePeriod, c.SweepInterval))
	}
	if c.EventsResumeWindow < time.Second || c.EventsConnectsPerMinute < 1 {
		errs = append(errs, fmt.Errorf("EVENTS_RESUME_WINDOW must be at least 1s and EVENTS_CONNECTS_PER_MINUTE at least 1, got %s and %d", c.EventsResumeWindow, c.EventsConnectsPerMinute))
	}
	if c.SweepInterval < time.Second {
		errs = append(errs, fmt.Errorf("SWEEP_INTERVAL must be at least 1s, got %s", c.SweepInterval))
	}
	if c.PprofAddr != "" {
		if err := validateHostPort(c.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("PPROF_ADDR: %w", err))
		}
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT must be json or console, got %q", c.LogFormat))
	}
	return errors.Join(errs...)
}

// validateIdentities checks that the MinIO identities are distinct (one
// credential doing two jobs would hold both jobs' rights, and a URL signed
// with the admin credential could do anything) and that their secrets are
// long enough for MinIO.
func (c Config) validateIdentities() []error {
	var errs []error
	var ids []struct{ name, key string }
	for _, id := range c.MinIOIdentities() {
		ids = append(ids, struct{ name, key string }{roleVar("MINIO_", id.Name, "_ACCESS_KEY"), *id.AccessKey})
	}
	ids = append(ids, struct{ name, key string }{"MINIO_ADMIN_ACCESS_KEY", c.MinIOAdminAccessKey})
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			if a.key != "" && a.key == b.key {
				errs = append(errs, fmt.Errorf("%s and %s must name different MinIO identities, both are %q", a.name, b.name, a.key))
			}
		}
	}
	for _, s := range c.minioSecrets() {
		if s[1] != "" && len(s[1]) < 8 {
			errs = append(errs, fmt.Errorf("%s must be at least 8 characters (MinIO refuses shorter secret keys)", s[0]))
		}
	}
	return errs
}

// ValidateSetup checks the settings `docuvault setup` needs: the database,
// the bucket, NATS, every identity it creates (each role's, the two
// signers') and the admin credential that creates them.
func (c Config) ValidateSetup() error {
	vars := append(c.storeVars(),
		[2]string{"NATS_URL", c.NATSURL},
		[2]string{"MINIO_ADMIN_ACCESS_KEY", c.MinIOAdminAccessKey},
		[2]string{"MINIO_ADMIN_SECRET_KEY", c.MinIOAdminSecretKey},
	)
	for _, role := range RoleNames {
		vars = append(vars, c.roleVars(role)...)
	}
	errs := requireSet(append(vars, c.signerVars()...)...)
	errs = append(errs, c.validateIdentities()...)
	return errors.Join(append(errs, c.refuseExampleSecrets()...)...)
}

// storeVars are the database and MinIO settings (name, value) every role
// and setup need.
func (c Config) storeVars() [][2]string {
	return [][2]string{
		{"DATABASE_URL", c.DatabaseURL},
		{"MINIO_ENDPOINT", c.MinIOEndpoint},
		{"MINIO_BUCKET", c.MinIOBucket},
	}
}

// roleVars are role's MinIO identity (name, value).
func (c Config) roleVars(role string) [][2]string {
	rc := c.Role(role)
	return [][2]string{
		{roleVar("MINIO_", role, "_ACCESS_KEY"), rc.MinIOAccessKey},
		{roleVar("MINIO_", role, "_SECRET_KEY"), rc.MinIOSecretKey},
	}
}

// signerVars are the identities that sign upload and download URLs.
func (c Config) signerVars() [][2]string {
	return [][2]string{
		{"MINIO_UPLOAD_ACCESS_KEY", c.MinIOUploadAccessKey},
		{"MINIO_UPLOAD_SECRET_KEY", c.MinIOUploadSecretKey},
		{"MINIO_DOWNLOAD_ACCESS_KEY", c.MinIODownloadAccessKey},
		{"MINIO_DOWNLOAD_SECRET_KEY", c.MinIODownloadSecretKey},
	}
}

// minioSecrets are the secret keys of every identity but the admin's
// (name, value).
func (c Config) minioSecrets() [][2]string {
	var s [][2]string
	for _, id := range c.MinIOIdentities() {
		s = append(s, [2]string{roleVar("MINIO_", id.Name, "_SECRET_KEY"), *id.SecretKey})
	}
	return s
}

// requireSet names each variable of vars (name, value) whose value is empty.
func requireSet(vars ...[2]string) []error {
	var errs []error
	for _, v := range vars {
		if v[1] == "" {
			errs = append(errs, fmt.Errorf("%s is required", v[0]))
		}
	}
	return errs
}

// exampleSecrets are the secret values the repository shows as examples or
// defaults (.env.example, docker-compose.yml before it required its
// secrets, deploy/k8s's REPLACE_ME): anyone can read them, so a deployment
// that kept one is open to anyone. deploy/compose_test.go checks that every
// secret the examples show is here. (devstack's MinIO root password is not:
// `docuvault dev` runs its MinIO on loopback, for this machine only, and
// hands the services identities with secrets of their own.)
var exampleSecrets = map[string]bool{
	"REPLACE_ME": true,
	// .env.example
	"example-postgres-password":                           true,
	"example-minio-root-password":                         true,
	"example-service-secret":                              true,
	"example-upload-secret":                               true,
	"example-download-secret":                             true,
	"pexampleminiopassword":                               true,
	"pexampledocuvaultpassword":                           true,
	"example-jwt-secret-replace-with-openssl-rand-hex-32": true,
	// docker-compose.yml's former defaults, and devstack's
	"dev-only-jwt-secret-do-not-use-in-production": true,
	"minio-dev-only-secret":                        true,
	"docuvault-dev-only":                           true,
	"service-dev-only-secret":                      true,
	"upload-dev-only-secret":                       true,
	"download-dev-only-secret":                     true,
	"p646f63757661756c742d6465762d6f6e6c79":        true,
	"p6d696e696f2d6465762d6f6e6c79":                true,
}

// IsExampleSecret reports whether s is a secret the repository shows.
func IsExampleSecret(s string) bool { return exampleSecrets[s] }

// refuseExampleSecrets names every secret setting that holds a value from
// the repository's examples.
func (c Config) refuseExampleSecrets() []error {
	var errs []error
	dbPassword := ""
	if u, err := url.Parse(c.DatabaseURL); err == nil && u.User != nil {
		dbPassword, _ = u.User.Password()
	}
	secrets := append(c.minioSecrets(),
		[2]string{"JWT_SECRET", c.JWTSecret},
		[2]string{"MINIO_ADMIN_SECRET_KEY", c.MinIOAdminSecretKey},
		[2]string{"NATS_SETUP_PASSWORD", c.NATSSetupPassword},
		[2]string{"DATABASE_URL's password", dbPassword},
	)
	for _, role := range RoleNames {
		secrets = append(secrets, [2]string{roleVar("NATS_", role, "_PASSWORD"), c.Role(role).NATSPassword})
	}
	for _, s := range secrets {
		if IsExampleSecret(s[1]) {
			errs = append(errs, fmt.Errorf("%s is an example value from the repository, known to anyone: set a secret of your own (e.g. openssl rand -hex 32)", s[0]))
		}
	}
	return errs
}

// validateHostPort checks that a is a listen address, host:port with a
// numeric port (the host may be empty: every interface).
func validateHostPort(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port such as 127.0.0.1:6060", a)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: the port must be a number between 1 and 65535", a)
	}
	return nil
}

// ValidateOrigin checks that o is one exact web origin: http or https, a
// host, an optional port, nothing else (no wildcard, path or trailing
// slash), as a browser sends it in its Origin header.
func ValidateOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not an origin: %v", o, err)
	case strings.Contains(o, "*"):
		return fmt.Errorf("%q: wildcards are not allowed, list each origin", o)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Hostname() == "":
		return fmt.Errorf("%q is not an origin such as https://app.example.com or http://localhost:5173", o)
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" || u.ForceQuery:
		return fmt.Errorf("%q has more than scheme, host and port (as the browser's Origin header sends it)", o)
	case strings.ToLower(o) != o:
		return fmt.Errorf("%q: browsers send origins in lower case", o)
	}
	return nil
}
