// Package natsconf holds the test of nats.conf, the NATS server
// configuration at the repository root that DocuVault runs in production.
//
// The test loads the file with the nats-server configuration parser, starts
// a real server from it on a free port and checks what each of its users may
// do: the docuvault user has full JetStream use of the document, sweeper and
// MinIO event subjects; the minio user may only publish MinIO's events to
// JetStream, as the real MinIO server does, and cannot touch anything else.
// The package has no code of its own.
package natsconf
