// Package devstack runs DocuVault's backing servers on one machine for
// development: an embedded NATS JetStream server, a local PostgreSQL cluster
// made with initdb/pg_ctl, and MinIO as a child process publishing bucket
// notifications to that NATS. Everything keeps its state under one data
// directory, so a second start finds the documents of the first.
//
// [Start] checks every port before it starts anything, then starts the
// servers and returns a [Stack] with their URLs and credentials;
// [Stack.Stop] stops them (MinIO, then NATS, then PostgreSQL). The pieces
// — [CheckPorts], [StartNATS], [StartPostgres], [StartMinIO] — can be used
// on their own. `docuvault dev` runs the services on top of a Stack; the
// test servers of package testenv are these pieces too, with options for
// throwaway servers ([NATSOptions], [PostgresOptions].Settings and
// StopMode, [MinIOOptions].BaseEnv).
package devstack
