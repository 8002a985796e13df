// Package testenv starts real servers for integration tests: a PostgreSQL
// cluster, NATS JetStream servers and MinIO object storage servers.
// Nothing is mocked.
//
// A test package that uses it must route its tests through [Main] so the
// servers this package starts are stopped when the tests finish:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// [Postgres] hands each test a fresh, empty database, dropped when the test
// ends. It creates the database on the server named by the DATABASE_URL
// environment variable or, when that is unset, on a throwaway cluster started
// once per test process from the PostgreSQL server binaries; [MigratedPool]
// gives a pool on such a database with DocuVault's migrations applied.
//
// [NATS] starts a NATS server with JetStream for the test, embedded in the
// test process on a free port, with a store directory of its own.
//
// [MinIO] returns a MinIO server shared by every test of the process, started
// on first use from the binary named by DOCUVAULT_MINIO_BIN or, when that is
// unset, from bin/minio at the repository root (built by `make tools`). Tests
// isolate themselves with [MinIOServer.NewBucket]. [StartMinIO] starts a
// separate server for tests that need their own environment or that stop and
// restart the server.
//
// The servers are started with package devstack, which `docuvault dev` uses
// too; child processes are killed if the test process dies.
//
// When a server cannot be started the test fails, saying what to install or
// run; it is never skipped, but under `go test -short` (`make test-short`,
// the fast tier that starts no server) every function here that starts one
// skips the test first, through [SkipShort], which tests starting a server
// or a browser by other means call too.
package testenv
