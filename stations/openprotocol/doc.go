// Package openprotocol is keiline's client of nutrunner tightening
// controllers (Atlas Copco, Bosch Rexroth, Stanley, Desoutter, ...) over the
// Open Protocol: ASCII frames on TCP, usually port 4545. A station agent
// runs one Client per controller.
//
// Field layouts follow the Open Protocol specification (Atlas Copco
// Industrial Technique, releases 2.x): the 20-byte header; MID 0002
// revisions 1-6; MID 0004 error codes (96 client already connected, 97 MID
// revision unsupported, 99 unknown MID, ...); MID 0061 revisions 1-7 and
// MID 0065 revisions 1-6, cross-checked against controller manuals.
//
// # Using a client
//
//	c, err := openprotocol.New(openprotocol.Config{ID: "C04-T1", Address: "10.1.4.21:4545",
//		Location: plantZone, LastDurable: lastDurable, Logger: log})
//	go c.Run(ctx)                       // connects, keeps the link up, redials
//	for r := range c.Results() {        // closed when Run returns
//		makeDurable(r)                  // e.g. the JetStream publish ack, or the spool
//		c.Ack(ctx, r)                   // only now MID 0062
//	}
//
// Commands (SelectPset, DisableTool, EnableTool, DownloadVIN, Subscribe,
// Unsubscribe, OldResult, ResultsSince, Do) wait for a connection, send
// their MID and return nil on MID 0005, a *CommandError on MID 0004 (its
// MID and code with the code's meaning; errors.Is matches
// ErrClientAlreadyConnected, ErrRevisionUnsupported, ErrUnknownMID,
// ErrTighteningNotFound). Every error names the controller's id and
// address.
//
// # The link
//
// Run dials, says MID 0001 at Config.Revision (on error 97 the next lower,
// down to MinRevision), reads the MID 0002, and subscribes to results with
// MID 0060 at Config.ResultRevision (falling back the same way). It sends
// MID 9999 whenever it sent nothing for KeepAlive, and a controller that
// does not answer any request within ReplyTimeout is dead: the client
// closes the connection and redials with back-off. A malformed frame
// (bad length, missing NUL, non-ASCII header, too long) closes and redials
// too, logged with the controller's id and address. Error 96 (another
// client holds the controller) is ErrClientAlreadyConnected and the redial
// waits BusyBackoff. Unknown MIDs received are logged once and ignored. On
// the way out (ctx done, Close) the client says MID 0003.
//
// # Results, acknowledge and redelivery
//
// The client never acknowledges a result by itself. The caller calls Ack
// once the result is durable; only then does MID 0062 go out. A controller
// keeps an unacknowledged result: it sends it again after its own ack
// timeout on the same connection (the client recognises the tightening id
// and does not deliver it twice) and, real controllers and the simulator
// alike, on the next connection after a reconnect or a restart — then it
// is delivered again and the caller, deduplicating by TighteningID, acks
// it again. MID 0062 carries no id: it acknowledges the oldest
// unacknowledged result, so acknowledges go out in delivery order.
//
// Results made while no client was subscribed (the link down, the agent
// stopped) are not pushed by the controller; they are fetched by id with
// MID 0064. Set Config.LastDurable to return the last tightening id up to
// which the caller has made every result durable (ids of a controller
// increase by one): after every connect the client fetches the newer ones
// (ResultsSince) and delivers them on Results as MID 0065 results, which
// need no Ack. A MID 0065 carries fewer fields than a MID 0061: no limits
// (Result.Limits is nil), and cell, channel and controller name come from
// the MID 0002. Ids the controller no longer keeps are logged (a
// *NotFoundError). A result that does not parse is logged, counted and not
// acknowledged: it stays in the controller, which sends it again.
package openprotocol
