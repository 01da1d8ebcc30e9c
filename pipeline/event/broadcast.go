package event

import (
	"strconv"
	"time"
)

// The JIS broadcast: when a car passes the broadcast point (trim in), each
// just-in-sequence supplier is told the part variant the car needs,
// numbered per supplier, on its own subject of stream BroadcastStream.

// JIS stream and subjects.
const (
	// BroadcastStream keeps the JIS broadcasts.
	BroadcastStream = "KEILINE_JIS"
	// BroadcastPrefix starts every broadcast subject:
	// jis.<plant>.<line>.<supplier>.
	BroadcastPrefix = "jis."
)

// BroadcastSubject is a supplier's subject.
func BroadcastSubject(plant, line, supplier string) string {
	return BroadcastPrefix + plant + "." + line + "." + supplier
}

// BroadcastMsgID is the Nats-Msg-Id of a supplier's broadcast seq: a
// broadcast published twice is stored once.
func BroadcastMsgID(supplier string, seq int64) string {
	return supplier + "." + strconv.FormatInt(seq, 10)
}

// Broadcast is one JIS broadcast: the supplier, its sequence number, the
// car and the part variant it needs, where it is installed, and the event
// of the car passing the broadcast point.
type Broadcast struct {
	Supplier    string     `json:"supplier"`
	Seq         int64      `json:"seq"`
	VIN         string     `json:"vin"`
	PartNumber  string     `json:"part_number"`
	PartVariant string     `json:"part_variant"`
	Install     string     `json:"install"`
	EventID     string     `json:"event_id"`
	PassedAt    time.Time  `json:"passed_at"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
}
