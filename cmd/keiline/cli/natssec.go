package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The NATS identities of a line's parts (pipeline/broker): each part
// connects with its own nkey and client certificate over TLS and may do
// only what its role needs (docs/security.md).

// credsFile is the credentials file of part name in a NATS security dir.

// natsLink is how the parts of one process reach NATS: the URL and, on a
// NATS with identities, the directory of the parts' credentials.
type natsLink struct {
	url   string
	creds string // "" for a NATS without identities
}

// connect connects as part name.
func (n natsLink) connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	return connectAs(n.url, n.creds, name, opts...)
}

// connectAs connects to url as part name with its credentials from the
// security directory dir, or without identity when dir is "".
func connectAs(url, dir, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name("keiline " + name)}, opts...)
	if dir == "" {
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", url, err)
		}
		return nc, nil
	}
	return connectCreds(url, broker.CredsFile(dir, name), opts...)
}

// connectCreds connects to url with the credentials file at path.
func connectCreds(url, path string, opts ...nats.Option) (*nats.Conn, error) {
	c, err := broker.LoadCredentials(path)
	if err != nil {
		return nil, err
	}
	nc, err := c.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s as %s: %w", url, c.Name, err)
	}
	return nc, nil
}

// natsFromState is how a tool reaches the NATS of an up state dir, as
// part name: its URL and credentials, or an error saying what to give.
func natsFromState(state, name string) (url, creds string, err error) {
	sf, err := readState(state)
	if err != nil {
		return "", "", err
	}
	if sf.NATSURL == "" {
		return "", "", errors.New("the state dir has no NATS: run keiline up, or give --nats")
	}
	if sf.NATSSecurity == "" {
		return sf.NATSURL, "", nil
	}
	return sf.NATSURL, broker.CredsFile(sf.NATSSecurity, name), nil
}

// partNames lists parts' names, for messages.
func partNames(ps broker.Parts) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// upNATS are up's connections to NATS, one per part, each with its own
// identity on a NATS with identities.
type upNATS struct {
	link      natsLink
	agent     *nats.Conn
	tracker   *nats.Conn
	agentJS   jetstream.JetStream
	trackerJS jetstream.JetStream
	// webJS is the line's web part (the station terminals), which
	// publishes only people's decisions.
	webJS     jetstream.JetStream
	suppliers map[string]jetstream.JetStream
}

// startNATS starts up's NATS — the embedded server with an identity per
// part (made under <state>/nats-sec) unless --nats names one — makes the
// streams as the admin, and connects the agent, the tracker and the
// simulated suppliers each as itself. It remembers the NATS in the state
// dir for the tools (keiline dlq, broadcast tail --state).
func (u *upRun) startNATS(ctx context.Context, o upOptions, lc *line.Config) (*upNATS, error) {
	n := &upNATS{link: natsLink{url: o.nats, creds: o.natsCreds}, suppliers: map[string]jetstream.JetStream{}}
	if o.nats == "" {
		dir := filepath.Join(u.state, "nats-sec")
		prov, err := broker.ProvisionLine(dir, broker.LineParts(lc, 1))
		if err != nil {
			return nil, err
		}
		b, err := broker.Start(broker.Config{StoreDir: filepath.Join(u.state, "nats"), Logger: u.log, Security: &prov.Security})
		if err != nil {
			return nil, err
		}
		u.onClose(func(context.Context) { b.Shutdown() })
		n.link = natsLink{url: b.URL(), creds: dir}
	}
	sf, err := readState(u.state)
	if err != nil {
		return nil, err
	}
	sf.NATSURL, sf.NATSSecurity = n.link.url, n.link.creds
	if err := writeState(u.state, sf); err != nil {
		return nil, err
	}
	admin, err := n.link.connect(broker.AdminPart)
	if err != nil {
		return nil, err
	}
	ajs, err := jetstream.New(admin)
	if err == nil {
		err = streams.Ensure(ctx, ajs, 1)
	}
	if err == nil {
		err = streams.EnsureBroadcast(ctx, ajs, 1)
	}
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("nats %s: the streams: %w", n.link.url, err)
	}
	connect := func(name string) (*nats.Conn, jetstream.JetStream, error) {
		nc, err := n.link.connect(name, nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, err
		}
		u.onClose(func(context.Context) { nc.Close() })
		js, err := jetstream.New(nc)
		return nc, js, err
	}
	if n.agent, n.agentJS, err = connect(broker.AgentPart(lc, 0)); err != nil {
		return nil, err
	}
	if n.tracker, n.trackerJS, err = connect(broker.TrackerPart(lc)); err != nil {
		return nil, err
	}
	if o.http != "" {
		if _, n.webJS, err = connect(broker.WebPart(lc)); err != nil {
			return nil, fmt.Errorf("%w (a security dir made before the station terminals has no web part: run keiline nats provision again)", err)
		}
	}
	if o.orders != "" && lc.Broadcast != nil {
		for _, s := range lc.Broadcast.Suppliers {
			if _, n.suppliers[s.Name], err = connect(broker.SupplierPart(lc, s.Name)); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// toolConn connects a tool as part name: to the NATS of an up state dir
// (its URL and the part's identity) when state is given, else to url with
// the credentials file creds ("" for none).
func toolConn(url, creds, state, name string) (*nats.Conn, error) {
	if state != "" {
		u, c, err := natsFromState(state, name)
		if err != nil {
			return nil, err
		}
		if c == "" {
			return partConn(u, "", name)
		}
		return connectCreds(u, c)
	}
	return partConn(url, creds, name)
}
