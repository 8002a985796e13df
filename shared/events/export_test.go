package events

import "github.com/nats-io/nats.go/jetstream"

// JetStream is b's JetStream client, for the tests to make streams and
// consumers and to publish and read raw messages on the bus's connection.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }
