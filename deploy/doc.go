// Package deploy holds no code: it is the home of the tests that keep the
// deployment files — docker-compose.yml at the repository root, and
// deploy/Dockerfile, deploy/k8s and deploy/nats beside this file — in step
// with what the services read (shared/config), with the MinIO notification
// targets (shared/objectstore) and with nats.conf.
package deploy
