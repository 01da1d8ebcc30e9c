package event

import "time"

// The streams and subjects events travel on.
const (
	// StreamName is the JetStream stream that captures every build event.
	StreamName = "KEILINE"
	// SubjectAll is what StreamName captures.
	SubjectAll = "keiline.>"
	// DeadLetterStream keeps messages the tracker could not use.
	DeadLetterStream = "KEILINE_DLQ"
	// DeadLetterPrefix starts every dead-letter subject; the original
	// subject follows it.
	DeadLetterPrefix = "keiline_dlq."
	// DuplicateWindowDefault is how long JetStream remembers a Nats-Msg-Id.
	// The tracker is idempotent beyond it.
	DuplicateWindowDefault = 10 * time.Minute
	// HeaderReason says why a message was dead-lettered.
	HeaderReason = "Keiline-Reason"
	// HeaderSubject is the dead-lettered message's original subject.
	HeaderSubject = "Keiline-Subject"
)

// Subject returns the NATS subject of an event: keiline.<plant>.<line>.<station>.<kind>.
func Subject(plant, line, station, kind string) string {
	return "keiline." + plant + "." + line + "." + station + "." + kind
}

// LineSubjects returns the subjects of every event of one line:
// keiline.<plant>.<line>.>.
func LineSubjects(plant, line string) string {
	return "keiline." + plant + "." + line + ".>"
}
