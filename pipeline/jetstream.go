package pipeline

import "time"

// Limits of the tracker's dead-letter batches.
const (
	// DeadLetterBatchMax is the most dead letters stored in one atomic
	// batch: nats-server's default limit on an atomic batch.
	DeadLetterBatchMax = 1000
	// DeadLetterTimeout bounds the wait for the dead-letter stream to
	// store a batch of dead letters.
	DeadLetterTimeout = 10 * time.Second
)

// The headers of JetStream's atomic batch publish (nats-server 2.12 and
// later).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)
