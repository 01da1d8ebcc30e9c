package broker

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/keiline/keiline/pipeline/event"
)

// Role is what a part of the plant does on NATS; it decides the part's
// permissions.
type Role string

// The roles of a plant's parts.
const (
	// RoleAgent publishes its stations' events and serves the manifest
	// requests of the framing stations among them.
	RoleAgent Role = "agent"
	// RoleTracker consumes its line's events, dead-letters, publishes the
	// line's JIS broadcasts and sends manifest requests.
	RoleTracker Role = "tracker"
	// RoleDashboard and RoleReader read: stream and consumer info, the
	// dead letters, the JIS broadcasts. They never publish.
	RoleDashboard Role = "dashboard"
	RoleReader    Role = "reader"
	// RoleSupplier is a JIS supplier following its broadcast subject with a
	// durable consumer.
	RoleSupplier Role = "supplier"
	// RoleAdmin creates and updates the streams at setup and may use the
	// whole JetStream API; it publishes no events.
	RoleAdmin Role = "admin"
	// RoleOperator recovers a line's dead letters (keiline dlq): it reads
	// and deletes them, and may publish on its line's event subjects to
	// replay one. Its credentials belong with the MES administrator, never
	// on a line-side PC.
	RoleOperator Role = "operator"
	// RoleWeb is a line's web server (the station terminals): it publishes
	// people's decisions (event.KindHuman) on its line's station subjects
	// and nothing an agent publishes; an agent, in turn, may not publish
	// a person's decision.
	RoleWeb Role = "web"
)

// Part is one identity on NATS: a station agent, a line's tracker, a
// dashboard, a reader (the CLI), a JIS supplier or the admin.
type Part struct {
	// Name names the identity: its nkey and certificate files, its inbox
	// prefix, the user in the server's log. Letters, digits, '_' and '-'.
	// Required, unique.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Plant and Line the part serves; required for agents, trackers and
	// suppliers.
	Plant string `json:"plant,omitempty"`
	Line  string `json:"line,omitempty"`
	// Stations an agent polls; at least one.
	Stations []string `json:"stations,omitempty"`
	// Manifest lists the framing stations among Stations whose manifest
	// requests the agent serves.
	Manifest []string `json:"manifest,omitempty"`
	// Supplier is a supplier part's JIS supplier name (its broadcast
	// subject's last token).
	Supplier string `json:"supplier,omitempty"`
}

// Parts describes every part of a plant that connects to NATS.
type Parts []Part

// tokenPattern is what a name or a subject token of ours may be: no dots,
// wildcards, spaces or quotes, so it is one NATS subject token, a file
// name and a consumer name at once.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func checkToken(field, v string) error {
	if !tokenPattern.MatchString(v) {
		return fmt.Errorf("%s %q: want 1 to 64 letters, digits, '_' or '-'", field, v)
	}
	return nil
}

// ServerCertName is the name of the server's certificate; no part may
// take it.
const ServerCertName = "nats-server"

// Validate checks every part and returns an error naming the first bad
// part and field.
func (ps Parts) Validate() error {
	if len(ps) == 0 {
		return errors.New("parts: none")
	}
	names := map[string]bool{}
	consumers := map[string]string{}
	for i, p := range ps {
		if err := p.validate(); err != nil {
			return fmt.Errorf("parts[%d]: %w", i, err)
		}
		if names[p.Name] {
			return fmt.Errorf("parts[%d]: name %q is taken by another part", i, p.Name)
		}
		names[p.Name] = true
		if c := p.Consumer(); c != "" {
			if other, ok := consumers[c]; ok {
				return fmt.Errorf("parts[%d] %s: durable consumer %q is also %s's", i, p.Name, c, other)
			}
			consumers[c] = p.Name
		}
	}
	return nil
}

func (p *Part) validate() error {
	if err := checkToken("name", p.Name); err != nil {
		return err
	}
	if p.Name == ServerCertName {
		return fmt.Errorf("name %q is the server certificate's", p.Name)
	}
	where := func() error {
		if err := checkToken(p.Name+": plant", p.Plant); err != nil {
			return err
		}
		return checkToken(p.Name+": line", p.Line)
	}
	switch p.Role {
	case RoleAgent:
		if err := where(); err != nil {
			return err
		}
		if len(p.Stations) == 0 {
			return fmt.Errorf("%s: an agent needs stations", p.Name)
		}
		for _, s := range p.Stations {
			if err := checkToken(p.Name+": station", s); err != nil {
				return err
			}
		}
		for _, s := range p.Manifest {
			if !slices.Contains(p.Stations, s) {
				return fmt.Errorf("%s: manifest station %q is not one of its stations %v", p.Name, s, p.Stations)
			}
		}
	case RoleTracker, RoleOperator, RoleWeb:
		return where()
	case RoleSupplier:
		if err := where(); err != nil {
			return err
		}
		return checkToken(p.Name+": supplier", p.Supplier)
	case RoleDashboard, RoleReader, RoleAdmin:
	default:
		return fmt.Errorf("%s: role %q, want one of agent, tracker, dashboard, reader, supplier, operator, web, admin", p.Name, p.Role)
	}
	return nil
}

// InboxPrefix is the part's inbox prefix (nats.CustomInboxPrefix): its
// replies, JetStream acks and consumer deliveries arrive under it, and
// it may subscribe nowhere else in _INBOX, so no part reads another's.
func (p *Part) InboxPrefix() string { return InboxPrefix(p.Name) }

// InboxPrefix is the inbox prefix of the part named name.
func InboxPrefix(name string) string { return "_INBOX." + name }

// Consumer is the durable consumer of a tracker (on stream KEILINE) or a
// supplier (on KEILINE_JIS), "" for other parts.
func (p *Part) Consumer() string {
	switch p.Role {
	case RoleTracker:
		return TrackerConsumer(p.Plant, p.Line)
	case RoleSupplier:
		return SupplierConsumer(p.Plant, p.Line, p.Supplier)
	}
	return ""
}

// TrackerConsumer is the durable consumer name of a line's tracker: its
// permissions name it, so no other part can pull, ack or reconfigure it.
func TrackerConsumer(plant, line string) string { return "tracker_" + plant + "_" + line }

// TrackerFilter is the filter subject of a line's tracker: the line's
// events only.
func TrackerFilter(plant, line string) string { return "keiline." + plant + "." + line + ".>" }

// SupplierConsumer is the durable consumer name of a JIS supplier of a
// line.
func SupplierConsumer(plant, line, supplier string) string {
	return "supplier_" + plant + "_" + line + "_" + supplier
}

// JetStream API subjects (nats-server's jetstream_api.go; the ack subject
// has a v1 form and, behind a server feature flag, a v2 form with domain
// and account hash in front of the stream).
const (
	jsAPI            = "$JS.API."
	jsStreamInfo     = jsAPI + "STREAM.INFO."
	jsConsumerCreate = jsAPI + "CONSUMER.CREATE."
	jsConsumerInfo   = jsAPI + "CONSUMER.INFO."
	jsConsumerNext   = jsAPI + "CONSUMER.MSG.NEXT."
	jsMsgGet         = jsAPI + "STREAM.MSG.GET."
	jsDirectGet      = jsAPI + "DIRECT.GET."
)

func acks(stream, consumer string) []string {
	return []string{"$JS.ACK." + stream + "." + consumer + ".>", "$JS.ACK.*.*." + stream + "." + consumer + ".>"}
}

var allStreams = []string{event.StreamName, event.DeadLetterStream, event.BroadcastStream}

// Permissions returns the least privileges of the part named name among
// ps (Validate them first): what it may publish and subscribe to. It
// returns an error when no part has the name.
func (ps Parts) Permissions(name string) (Permissions, error) {
	i := slices.IndexFunc(ps, func(p Part) bool { return p.Name == name })
	if i < 0 {
		return Permissions{}, fmt.Errorf("parts: no part named %q", name)
	}
	p := ps[i]
	inbox := p.InboxPrefix() + ".>"
	var perm Permissions
	perm.Subscribe.Allow = []string{inbox}
	switch p.Role {
	case RoleAgent:
		for _, s := range p.Stations {
			perm.Publish.Allow = append(perm.Publish.Allow, event.Subject(p.Plant, p.Line, s, ">"))
			perm.Publish.Deny = append(perm.Publish.Deny, event.Subject(p.Plant, p.Line, s, event.KindHuman))
		}
		for _, s := range p.Manifest {
			perm.Subscribe.Allow = append(perm.Subscribe.Allow, event.ManifestSubject(p.Plant, p.Line, s))
		}
		// The manifest reply goes to the tracker's inbox, once per request.
		perm.Responses = len(p.Manifest) > 0
	case RoleTracker:
		c := p.Consumer()
		perm.Publish.Allow = append(perm.Publish.Allow,
			jsConsumerCreate+event.StreamName+"."+c+"."+TrackerFilter(p.Plant, p.Line),
			jsConsumerInfo+event.StreamName+"."+c,
			jsConsumerNext+event.StreamName+"."+c)
		perm.Publish.Allow = append(perm.Publish.Allow, acks(event.StreamName, c)...)
		for _, s := range allStreams {
			perm.Publish.Allow = append(perm.Publish.Allow, jsStreamInfo+s)
		}
		perm.Publish.Allow = append(perm.Publish.Allow,
			event.DeadLetterPrefix+TrackerFilter(p.Plant, p.Line),
			event.BroadcastSubject(p.Plant, p.Line, ">"),
			event.ManifestSubject(p.Plant, p.Line, "*"))
	case RoleSupplier:
		c, s := p.Consumer(), event.BroadcastStream
		perm.Publish.Allow = append(perm.Publish.Allow,
			jsConsumerCreate+s+"."+c+"."+event.BroadcastSubject(p.Plant, p.Line, p.Supplier),
			jsConsumerInfo+s+"."+c,
			jsConsumerNext+s+"."+c,
			jsStreamInfo+s)
		perm.Publish.Allow = append(perm.Publish.Allow, acks(s, c)...)
	case RoleDashboard, RoleReader:
		perm.Publish = ps.readerPublish()
	case RoleOperator:
		perm.Publish = ps.readerPublish()
		dlq := event.DeadLetterStream
		perm.Publish.Allow = append(perm.Publish.Allow, jsAPI+"STREAM.MSG.DELETE."+dlq, TrackerFilter(p.Plant, p.Line))
	case RoleWeb:
		perm.Publish.Allow = []string{event.Subject(p.Plant, p.Line, "*", event.KindHuman)}
	case RoleAdmin:
		perm.Publish.Allow = []string{jsAPI + ">"}
	}
	return perm, nil
}

// readerPublish is what a dashboard or reader may send: info requests,
// ordered (ephemeral) consumers on the dead letters and the JIS
// broadcasts, and message gets on the dead letters — but nothing on
// another part's durable consumer, which a create request would
// reconfigure and a pull would take messages from.
func (ps Parts) readerPublish() Subjects {
	var s Subjects
	for _, st := range allStreams {
		s.Allow = append(s.Allow, jsStreamInfo+st, jsConsumerInfo+st+".*")
	}
	for _, st := range []string{event.DeadLetterStream, event.BroadcastStream} {
		// Ordered consumers delete themselves when they reset or end.
		s.Allow = append(s.Allow, jsConsumerCreate+st+".*", jsConsumerCreate+st+".*.>", jsConsumerNext+st+".*", jsAPI+"CONSUMER.DELETE."+st+".*")
	}
	dlq := event.DeadLetterStream
	s.Allow = append(s.Allow, jsMsgGet+dlq, jsDirectGet+dlq, jsDirectGet+dlq+".>")
	for _, p := range ps {
		if p.Role != RoleSupplier {
			continue
		}
		c, st := p.Consumer(), event.BroadcastStream
		s.Deny = append(s.Deny, jsConsumerCreate+st+"."+c, jsConsumerCreate+st+"."+c+".>", jsConsumerNext+st+"."+c, jsAPI+"CONSUMER.DELETE."+st+"."+c)
	}
	return s
}

// Describe returns the permission table of every part, one line per
// subject, for an operator to read.
func (ps Parts) Describe() string {
	var b strings.Builder
	for _, p := range ps {
		perm, err := ps.Permissions(p.Name)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s (%s)\n", p.Name, p.Role)
		for _, l := range []struct {
			what string
			subs []string
		}{{"pub allow", perm.Publish.Allow}, {"pub deny", perm.Publish.Deny}, {"sub allow", perm.Subscribe.Allow}, {"sub deny", perm.Subscribe.Deny}} {
			for _, s := range l.subs {
				fmt.Fprintf(&b, "  %-9s %s\n", l.what, s)
			}
		}
		if perm.Responses {
			fmt.Fprintf(&b, "  %-9s one reply to each request it receives\n", "responses")
		}
	}
	return b.String()
}
