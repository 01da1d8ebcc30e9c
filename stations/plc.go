// Package stations is keiline's station agent: it talks to the line's PLCs
// over OPC UA (the only part of keiline that does), follows the handshake of
// docs/plc-tags.md, turns finished cycles and state changes into build events
// and acknowledges the PLC only once the event is durable. It also holds the
// PLC integrator's tools that share its OPC UA layer: browse, check, watch
// and the PKI.
package stations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
)

// Timeouts of the OPC UA connection.
const (
	// DialTimeoutDefault bounds connecting to a PLC.
	DialTimeoutDefault = 5 * time.Second
	// RequestTimeoutDefault bounds one Read or Write.
	RequestTimeoutDefault = 5 * time.Second
)

// Errors a connection is refused with; they need the integrator, not a
// retry (see IsSetupError).
var (
	// ErrUserRejected: the PLC refused the session's user identity (a wrong
	// user name or password, or an unknown user certificate).
	ErrUserRejected = errors.New("the PLC refused the user")
	// ErrNoEndpoint: the PLC offers no endpoint with the configured security
	// policy, mode and user type.
	ErrNoEndpoint = errors.New("no matching endpoint")
	// ErrAgentCertificateRefused: the PLC refused the secure channel, most
	// often because it does not trust the agent's certificate yet.
	ErrAgentCertificateRefused = errors.New("the PLC refused the agent's certificate")
	// ErrPasswordInClear: a password would travel unencrypted.
	ErrPasswordInClear = errors.New("the password would be sent in clear text")
)

// Connection says how to reach one PLC: the endpoint, the secure channel,
// the user and the PKI. LineConfig.Connection makes one for a station.
type Connection struct {
	// Station names the station in messages; empty for a bare endpoint.
	Station string
	// Endpoint is opc.tcp://host:port[/path].
	Endpoint string
	// SecurityPolicy is None (or empty), Basic256Sha256,
	// Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss.
	SecurityPolicy string
	// SecurityMode is None, Sign or SignAndEncrypt. Empty means None with
	// policy None, else SignAndEncrypt.
	SecurityMode string
	// User is the session's user. The zero value is anonymous.
	User line.UserIdentity
	// PKI holds the agent's certificate and the trust lists; it is needed
	// for a secure channel and for a user other than anonymous.
	PKI PKI
	// MaxNodesPerRead caps every Read; 0 asks the server's
	// OperationLimits/MaxNodesPerRead and falls back to
	// MaxNodesPerReadDefault.
	MaxNodesPerRead int
	// Now is the clock certificates are checked with. Defaults to time.Now.
	Now func() time.Time
}

// ConnectionOf returns how to reach station st of c (a validated config,
// whose passwords ResolvePasswords has read).
func ConnectionOf(c *line.Config, st *line.Station) Connection {
	u := st.User
	u.Certificate = c.Resolve(u.Certificate)
	u.PrivateKey = c.Resolve(u.PrivateKey)
	return Connection{
		Station:         st.ID,
		Endpoint:        st.Endpoint,
		SecurityPolicy:  st.SecurityPolicy,
		SecurityMode:    st.SecurityMode,
		User:            u,
		PKI:             PKIOf(c),
		MaxNodesPerRead: st.MaxNodesPerRead,
	}
}

// where names the station and endpoint for messages.
func (c Connection) where() string {
	if c.Station != "" {
		return fmt.Sprintf("station %s: plc %s", c.Station, c.Endpoint)
	}
	return "plc " + c.Endpoint
}

func (c Connection) policy() string {
	if c.SecurityPolicy == "" {
		return line.PolicyNone
	}
	return c.SecurityPolicy
}

func (c Connection) mode() string {
	switch {
	case c.SecurityMode != "":
		return c.SecurityMode
	case c.policy() == line.PolicyNone:
		return line.ModeNone
	}
	return line.ModeSignAndEncrypt
}

func (c Connection) userType() string {
	if c.User.Type == "" {
		return line.UserAnonymous
	}
	return c.User.Type
}

// PLC is one OPC UA connection to a station PLC: connect, batched read,
// write. It does not reconnect by itself (gopcua's auto-reconnect can leave
// a client "connected" with nothing behind it); the caller closes a PLC that
// failed and dials a new one.
type PLC struct {
	Endpoint string
	client   *opcua.Client
	maxRead  int
}

// DialPLC connects to the PLC of conn and opens a session.
//
// With security policy None and an anonymous user it connects directly.
// Otherwise it first asks the PLC for its endpoints, picks the one with the
// configured policy and mode and checks the PLC's certificate against the
// trust list: gopcua does not, so keiline does, before any secret is sent.
// An unknown certificate is saved in the rejected directory and refused
// with a *CertificateError (errors.Is ErrCertificateUntrusted). A user the
// PLC refuses gives ErrUserRejected; IsSetupError tells these apart from a
// PLC that is merely unreachable. Every error names the station and the
// endpoint; none contains a password.
func DialPLC(ctx context.Context, conn Connection) (*PLC, error) {
	opts, err := conn.options(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", conn.where(), err)
	}
	c, err := opcua.NewClient(conn.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", conn.where(), err)
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeoutDefault+RequestTimeoutDefault)
	defer cancel()
	if err := connect(dctx, c); err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%s: %w", conn.where(), conn.explain(err))
	}
	p := &PLC{Endpoint: conn.Endpoint, client: c, maxRead: conn.MaxNodesPerRead}
	if p.maxRead <= 0 {
		p.maxRead = line.MaxNodesPerReadDefault
		dvs, err := p.readValues(ctx, []*ua.ReadValueID{{
			NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead), AttributeID: ua.AttributeIDValue,
		}})
		if err == nil && dvs[0].Status == ua.StatusOK && dvs[0].Value != nil {
			if n, ok := dvs[0].Value.Value().(uint32); ok && n > 0 {
				p.maxRead = int(n)
			}
		}
	}
	return p, nil
}

// connect opens the client's channel and session. gopcua v0.8.0 goes on
// with a nil session when it cannot verify the server's session signature
// and then panics; that becomes an error here, not a crashed agent.
func connect(ctx context.Context, c *opcua.Client) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the PLC's session signature could not be verified (gopcua: %v)", r)
		}
	}()
	return c.Connect(ctx)
}

// options returns the gopcua options of conn; for a secure channel or a
// user with credentials it picks the PLC's endpoint and checks the PLC's
// certificate first.
func (c Connection) options(ctx context.Context) ([]opcua.Option, error) {
	base := []opcua.Option{
		opcua.AutoReconnect(false),
		opcua.DialTimeout(DialTimeoutDefault),
		opcua.RequestTimeout(RequestTimeoutDefault),
		opcua.SessionTimeout(time.Minute),
		opcua.ApplicationName("keiline agent"),
	}
	policy, mode, user := c.policy(), c.mode(), c.userType()
	if policy == line.PolicyNone && user == line.UserAnonymous {
		return append(base,
			opcua.SecurityMode(ua.MessageSecurityModeNone),
			opcua.SecurityPolicy(ua.SecurityPolicyURINone),
		), nil
	}

	// The agent's own certificate signs and decrypts the channel, and
	// encrypts a password for the PLC.
	der, key, err := c.PKI.Load()
	if err != nil {
		return nil, err
	}
	base = append(base, opcua.Certificate(der), opcua.PrivateKey(key))

	gctx, cancel := context.WithTimeout(ctx, DialTimeoutDefault+RequestTimeoutDefault)
	defer cancel()
	eps, err := opcua.GetEndpoints(gctx, c.Endpoint, opcua.DialTimeout(DialTimeoutDefault), opcua.RequestTimeout(RequestTimeoutDefault))
	if err != nil {
		return nil, fmt.Errorf("get endpoints: %w", err)
	}
	ep, tokenType, err := c.selectEndpoint(eps)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if len(ep.ServerCertificate) == 0 {
		return nil, fmt.Errorf("the PLC's %s/%s endpoint has no server certificate", policy, mode)
	}
	if err := c.PKI.CheckServerCertificate(ep.ServerCertificate, now()); err != nil {
		return nil, err
	}

	switch user {
	case line.UserUsername:
		pw, ok := c.User.Password()
		if !ok {
			return nil, fmt.Errorf("user %q: no password (from %s): the program did not resolve it", c.User.Name, c.User.PasswordSource())
		}
		base = append(base, opcua.AuthUsername(c.User.Name, pw))
	case line.UserCertificate:
		uder, ukey := der, key
		if c.User.Certificate != "" {
			u := PKI{Certificate: c.User.Certificate, PrivateKey: c.User.PrivateKey}
			if uder, ukey, err = u.Load(); err != nil {
				return nil, fmt.Errorf("user certificate: %w", err)
			}
		}
		base = append(base, opcua.AuthCertificate(uder), opcua.AuthPrivateKey(ukey))
	default:
		base = append(base, opcua.AuthAnonymous())
	}
	return append(base, opcua.SecurityFromEndpoint(ep, tokenType)), nil
}

// selectEndpoint picks the endpoint with c's policy and mode that accepts
// c's user type. A password must be encrypted: by the channel
// (SignAndEncrypt) or by the user token policy.
func (c Connection) selectEndpoint(eps []*ua.EndpointDescription) (*ua.EndpointDescription, ua.UserTokenType, error) {
	policyURI := ua.FormatSecurityPolicyURI(c.policy())
	mode := ua.MessageSecurityModeFromString(c.mode())
	tokenType := map[string]ua.UserTokenType{
		line.UserAnonymous: ua.UserTokenTypeAnonymous, line.UserUsername: ua.UserTokenTypeUserName, line.UserCertificate: ua.UserTokenTypeCertificate,
	}[c.userType()]
	var offered []string
	for _, ep := range eps {
		offered = append(offered, strings.TrimPrefix(ep.SecurityPolicyURI, ua.SecurityPolicyURIPrefix)+"/"+strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode"))
		if ep.SecurityPolicyURI != policyURI || ep.SecurityMode != mode {
			continue
		}
		var users []string
		for _, t := range ep.UserIdentityTokens {
			users = append(users, userTypeName(t.TokenType))
			if t.TokenType != tokenType {
				continue
			}
			if tokenType == ua.UserTokenTypeUserName && mode != ua.MessageSecurityModeSignAndEncrypt {
				tp := t.SecurityPolicyURI
				if tp == "" {
					tp = ep.SecurityPolicyURI
				}
				if tp == ua.SecurityPolicyURINone {
					return nil, 0, fmt.Errorf("user %q: %w: the PLC's %s/%s endpoint does not encrypt user passwords; use security_mode SignAndEncrypt: %w",
						c.User.Name, ErrPasswordInClear, c.policy(), c.mode(), ErrNoEndpoint)
				}
			}
			return ep, tokenType, nil
		}
		slices.Sort(users)
		return nil, 0, fmt.Errorf("the PLC's %s/%s endpoint does not accept user type %s; it accepts: %s: %w",
			c.policy(), c.mode(), c.userType(), strings.Join(slices.Compact(users), ", "), ErrNoEndpoint)
	}
	slices.Sort(offered)
	return nil, 0, fmt.Errorf("the PLC offers no endpoint with security policy %s and mode %s; it offers (policy/mode): %s: %w",
		c.policy(), c.mode(), strings.Join(slices.Compact(offered), ", "), ErrNoEndpoint)
}

func userTypeName(t ua.UserTokenType) string {
	switch t {
	case ua.UserTokenTypeAnonymous:
		return line.UserAnonymous
	case ua.UserTokenTypeUserName:
		return line.UserUsername
	case ua.UserTokenTypeCertificate:
		return line.UserCertificate
	}
	return "issued token"
}

// explain turns a failed Connect into a message for the integrator.
func (c Connection) explain(err error) error {
	var sc ua.StatusCode
	if !errors.As(err, &sc) {
		return fmt.Errorf("connect: %w", err)
	}
	switch {
	case sc == ua.StatusBadUserAccessDenied || sc == ua.StatusBadIdentityTokenInvalid || sc == ua.StatusBadIdentityTokenRejected:
		who := "the anonymous user"
		switch c.userType() {
		case line.UserUsername:
			who = fmt.Sprintf("user %q: check the user name and the password (from %s)", c.User.Name, c.User.PasswordSource())
		case line.UserCertificate:
			who = "the user certificate: the PLC must trust it"
		}
		return fmt.Errorf("%w (%s), %s: %w", ErrUserRejected, statusName(sc), who, err)
	case sc == ua.StatusBadSecurityChecksFailed || sc == ua.StatusBadCertificateUntrusted || sc == ua.StatusBadCertificateInvalid ||
		sc == ua.StatusBadCertificateURIInvalid || sc == ua.StatusBadCertificateUseNotAllowed || sc == ua.StatusBadCertificateTimeInvalid ||
		sc == ua.StatusBadCertificateHostNameInvalid || sc == ua.StatusBadCertificateChainIncomplete:
		thumb := ""
		if der, _, lerr := c.PKI.Load(); lerr == nil {
			thumb = fmt.Sprintf(" (thumbprint %s)", Thumbprint(der))
		}
		return fmt.Errorf("%w (%s): the PLC must trust the agent's certificate %s%s: %w", ErrAgentCertificateRefused, statusName(sc), c.PKI.Certificate, thumb, err)
	case sc == ua.StatusBadSecurityPolicyRejected:
		return fmt.Errorf("%w: the PLC rejected security policy %s/%s: %w", ErrNoEndpoint, c.policy(), c.mode(), err)
	}
	return fmt.Errorf("connect: %w", err)
}

// statusName is a status code's short name, e.g. BadUserAccessDenied.
func statusName(sc ua.StatusCode) string {
	s := sc.Error()
	if i := strings.LastIndex(s, "Status"); i >= 0 {
		s = s[i+len("Status"):]
	}
	if i := strings.Index(s, " ("); i >= 0 {
		s = s[:i]
	}
	return s
}

// IsSetupError reports whether err is a connection refused for a reason
// the integrator has to fix (an untrusted certificate, a refused user, no
// matching endpoint), rather than a PLC that is unreachable for a while.
func IsSetupError(err error) bool {
	return errors.Is(err, ErrCertificateUntrusted) || errors.Is(err, ErrUserRejected) ||
		errors.Is(err, ErrNoEndpoint) || errors.Is(err, ErrAgentCertificateRefused)
}

// IsConnectionError reports whether err means the connection or the
// session is gone (or the PLC does not answer), so the PLC must be closed
// and dialed again. A NodeError (the connection is fine) is not.
func IsConnectionError(err error) bool {
	if err == nil || IsNodeError(err) {
		return false
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, sc := range []ua.StatusCode{
		ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated,
		ua.StatusBadSecureChannelIDInvalid, ua.StatusBadSecureChannelClosed, ua.StatusBadSecureChannelTokenUnknown,
		ua.StatusBadConnectionClosed, ua.StatusBadServerNotConnected, ua.StatusBadNotConnected,
		ua.StatusBadTimeout, ua.StatusBadRequestTimeout, ua.StatusBadCommunicationError,
	} {
		if errors.Is(err, sc) {
			return true
		}
	}
	return false
}

// ServerMaxNodesPerRead asks the PLC for its OperationLimits/MaxNodesPerRead;
// ok is false when the PLC does not say.
func (p *PLC) ServerMaxNodesPerRead(ctx context.Context) (n uint32, ok bool) {
	res, err := p.read(ctx, []*ua.ReadValueID{{
		NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead), AttributeID: ua.AttributeIDValue,
	}})
	if err != nil || res[0].Status != ua.StatusOK || res[0].Value == nil {
		return 0, false
	}
	n, ok = res[0].Value.Value().(uint32)
	return n, ok && n > 0
}

// readLimitHint explains a Read the PLC refused for its size
// (BadTooManyOperations): the PLC's own limit and the line config field
// that fixes it. Other errors are returned as they are.
func readLimitHint(ctx context.Context, err error, p *PLC, lc *line.Config, st *line.Station) error {
	if !errors.Is(err, ua.StatusBadTooManyOperations) {
		return err
	}
	where := fmt.Sprintf("station %s", st.ID)
	if lc.Path() != "" && st.Line() > 0 {
		where = fmt.Sprintf("%s:%d: station %s", lc.Path(), st.Line(), st.ID)
	}
	if n, ok := p.ServerMaxNodesPerRead(ctx); ok {
		return fmt.Errorf("the PLC reads at most %d nodes at once (its OperationLimits.MaxNodesPerRead) and refused a Read of %d: set max_nodes_per_read: %d (or 0, to ask the PLC) in %s: %w",
			n, p.maxRead, n, where, err)
	}
	return fmt.Errorf("the PLC refused a Read of %d nodes as too many and does not say its limit: set a lower max_nodes_per_read in %s: %w", p.maxRead, where, err)
}

// MaxNodesPerRead is the most nodes this PLC is sent in one Read.
func (p *PLC) MaxNodesPerRead() int { return p.maxRead }

// Read reads the values of nodes, split into Reads of at most
// MaxNodesPerRead nodes. The results are in the order of nodes. A
// transport or service error is returned as is; the caller should close
// the PLC and dial again when IsConnectionError says so.
func (p *PLC) Read(ctx context.Context, nodes []*ua.NodeID) ([]*ua.DataValue, error) {
	rvs := make([]*ua.ReadValueID, len(nodes))
	for i, n := range nodes {
		rvs[i] = &ua.ReadValueID{NodeID: n, AttributeID: ua.AttributeIDValue}
	}
	return p.readValues(ctx, rvs)
}

// readValues reads the attributes rvs name, split like Read.
func (p *PLC) readValues(ctx context.Context, rvs []*ua.ReadValueID) ([]*ua.DataValue, error) {
	maxRead := max(p.maxRead, 1)
	out := make([]*ua.DataValue, 0, len(rvs))
	for start := 0; start < len(rvs); start += maxRead {
		end := min(start+maxRead, len(rvs))
		dvs, err := p.read(ctx, rvs[start:end])
		if err != nil {
			return nil, err
		}
		out = append(out, dvs...)
	}
	return out, nil
}

func (p *PLC) read(ctx context.Context, rvs []*ua.ReadValueID) ([]*ua.DataValue, error) {
	req := &ua.ReadRequest{
		MaxAge:             0,
		TimestampsToReturn: ua.TimestampsToReturnBoth,
		NodesToRead:        rvs,
	}
	res, err := p.client.Read(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("plc %s: read %d nodes: %w", p.Endpoint, len(rvs), err)
	}
	if res.ResponseHeader != nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
		return nil, fmt.Errorf("plc %s: read %d nodes: %w", p.Endpoint, len(rvs), res.ResponseHeader.ServiceResult)
	}
	if len(res.Results) != len(rvs) {
		return nil, fmt.Errorf("plc %s: read %d nodes: server returned %d results", p.Endpoint, len(rvs), len(res.Results))
	}
	return res.Results, nil
}

// Write writes value to node and returns the node's status.
func (p *PLC) Write(ctx context.Context, node *ua.NodeID, value any) error {
	v, err := ua.NewVariant(value)
	if err != nil {
		return fmt.Errorf("plc %s: write %s: %w", p.Endpoint, node, err)
	}
	res, err := p.client.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      node,
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if err != nil {
		return fmt.Errorf("plc %s: write %s: %w", p.Endpoint, node, err)
	}
	if len(res.Results) != 1 {
		return fmt.Errorf("plc %s: write %s: server returned %d results", p.Endpoint, node, len(res.Results))
	}
	if res.Results[0] != ua.StatusOK {
		return fmt.Errorf("plc %s: write %s: %w", p.Endpoint, node, &NodeError{Node: node.String(), Status: res.Results[0]})
	}
	return nil
}

// WriteMany writes values to nodes in one Write request and returns the
// first node's bad status, if any.
func (p *PLC) WriteMany(ctx context.Context, nodes []*ua.NodeID, values []any) error {
	if len(nodes) != len(values) {
		return fmt.Errorf("plc %s: write: %d nodes, %d values", p.Endpoint, len(nodes), len(values))
	}
	req := &ua.WriteRequest{}
	for i, node := range nodes {
		v, err := ua.NewVariant(values[i])
		if err != nil {
			return fmt.Errorf("plc %s: write %s: %w", p.Endpoint, node, err)
		}
		req.NodesToWrite = append(req.NodesToWrite, &ua.WriteValue{
			NodeID: node, AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
		})
	}
	res, err := p.client.Write(ctx, req)
	if err != nil {
		return fmt.Errorf("plc %s: write %d nodes: %w", p.Endpoint, len(nodes), err)
	}
	if len(res.Results) != len(nodes) {
		return fmt.Errorf("plc %s: write %d nodes: server returned %d results", p.Endpoint, len(nodes), len(res.Results))
	}
	for i, sc := range res.Results {
		if sc != ua.StatusOK {
			return fmt.Errorf("plc %s: write %s: %w", p.Endpoint, nodes[i], &NodeError{Node: nodes[i].String(), Status: sc})
		}
	}
	return nil
}

// Close ends the session and the connection. It is safe on a nil PLC.
func (p *PLC) Close(ctx context.Context) error {
	if p == nil || p.client == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	return p.client.Close(cctx)
}

// NodeError is a bad status for one node: the node is missing, not
// writable, or its value is bad.
type NodeError struct {
	Node   string
	Status ua.StatusCode
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %s: %s", e.Node, e.Status.Error())
}

func (e *NodeError) Unwrap() error { return e.Status }

// IsNodeError reports whether err is about one node (the connection is fine).
func IsNodeError(err error) bool {
	var ne *NodeError
	return errors.As(err, &ne)
}
