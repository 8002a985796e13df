// Package cluster holds DocuVault's end-to-end test on a three-node NATS
// JetStream cluster. It owns no production code: its test runs the real
// roles (the api, two confirmers, a sweeper and every process's outbox
// relay) connected to all three nodes, with every stream replicated three
// times and MinIO's notification targets pointed at two of the nodes, and
// stops the node leading the streams twice while honest clients upload
// through both doors. Losing a node must lose nothing: every upload is
// confirmed and charged once, DOCUMENTS holds one document.uploaded per
// charged document, the sweep schedule fires at most once per interval and
// keeps firing, and nothing stays pending past its TTL.
package cluster
