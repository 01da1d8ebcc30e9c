package event

import "fmt"

// The manifest download: the tracker keeps the framing PLC's manifest
// slots filled with the next cars of the build sequence. Only agents talk
// to PLCs, so the tracker asks the framing station's agent, by a NATS
// request on ManifestSubject, to write the cars; the agent replies once
// the PLC has them (or says why not).

// ManifestRequest asks the framing station's agent to load cars, in
// sequence order, into free manifest slots. Cars the PLC already framed
// or holds are skipped, so a request may be repeated.
type ManifestRequest struct {
	Cars []ManifestCar `json:"cars"`
}

// ManifestCar is one car's build data as the framing PLC takes it.
type ManifestCar struct {
	Seq     int64    `json:"seq"`
	VIN     string   `json:"vin"`
	Model   string   `json:"model"`
	Variant string   `json:"variant"`
	Colour  string   `json:"colour"`
	Options []string `json:"options"`
}

// ManifestReply is the agent's answer: the PLC's last framed sequence
// number, the sequence numbers its slots hold after the request, those the
// request wrote, and an error when the request could not be carried out.
type ManifestReply struct {
	LastSeq int64   `json:"last_seq"`
	Loaded  []int64 `json:"loaded"`
	Written []int64 `json:"written"`
	Slots   int     `json:"slots"`
	Error   string  `json:"error,omitempty"`
}

// ManifestSubject is the subject of a station's manifest requests:
// keiline_cmd.<plant>.<line>.<station>.manifest (outside keiline.>, so
// the event stream does not capture it).
func ManifestSubject(plant, line, station string) string {
	return fmt.Sprintf("keiline_cmd.%s.%s.%s.manifest", plant, line, station)
}
