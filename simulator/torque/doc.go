// Package torque simulates nutrunner tightening controllers speaking the
// Open Protocol (Atlas Copco's ASCII frames over TCP) — the plant's side of
// keiline's stations/openprotocol client, written independently of it, so
// the two test each other. It imports nothing of keiline.
//
// # What a Controller does
//
// A Controller listens on TCP (127.0.0.1, a free port by default) and
// serves one client at a time; a second one gets MID 0004 error 96 (client
// already connected) and is closed. It answers:
//
//   - MID 0001 with MID 0002 at the revision asked, up to MaxRevision, and
//     error 97 above it; a client must start with MID 0001.
//   - MID 9999 with MID 9999. A client silent for KeepAliveTimeout is dropped.
//   - MID 0018 (select parameter set; error 02 if no tool has it), 0042
//     (disable tool), 0043 (enable tool), 0050 (VIN download), 0060
//     (subscribe to results, up to MaxResultRevision, error 09 if
//     subscribed), 0063 (unsubscribe, error 10 if not) with MID 0005.
//   - MID 0064 with MID 0065 for any tightening it keeps (id 0: the
//     newest), error 15 for an unknown id.
//   - any other MID with error 99.
//
// # Tightenings
//
// The plant makes a tightening with Tighten(ctx, channel): the tool of that
// channel tightens with the selected parameter set for the downloaded VIN.
// A disabled tool does not tighten: Tighten returns ErrToolDisabled and
// nothing is made, no id used. The values are drawn from Seed and the
// tightening id (the same seed, the same values), within the parameter
// set's limits but for a NOKRate share with the torque low or high. Ids
// increase by one from 1 across the controller's tools.
//
// Every tightening is kept (Truth; with StateDir also on disk, with the id
// counter and the state, so a controller started again goes on where it
// stopped). WriteTruth and ReadTruth read and write them as JSON lines, so
// a test compares what the controller made with what a client got.
//
// # Results and their acknowledge
//
// A tightening made while a client is subscribed is queued and pushed as a
// MID 0061, at most PushWindow awaiting their MID 0062 at once (real
// controllers: one). The oldest unacknowledged result is sent again every
// AckTimeout, and after AckRetries resends the link is closed as broken.
// The queue outlives the link and a restart: when a client subscribes
// again, the unacknowledged results are pushed again, oldest first.
// Tightenings made while no client was subscribed are not pushed: a client
// fetches them with MID 0064.
//
// # Faults
//
// CutLink closes the client's connection; Stop and Start restart the
// controller (the same address, the same state); SendRaw writes any bytes
// (garbage, malformed frames, unknown MIDs); SetFaults splits frames into
// many writes, merges several into one, delays every frame, makes the
// controller silent, or drops the client's acknowledges (MID 0062).
package torque
