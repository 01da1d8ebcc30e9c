// Package stations is keiline's station agent: it talks to the line's PLCs
// over OPC UA (the only part of keiline that does), follows the handshake of
// docs/plc-tags.md, turns finished cycles and state changes into build events
// and acknowledges the PLC only once the event is durable.
package stations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Timeouts of the OPC UA connection.
const (
	// DialTimeoutDefault bounds connecting to a PLC.
	DialTimeoutDefault = 5 * time.Second
	// RequestTimeoutDefault bounds one Read or Write.
	RequestTimeoutDefault = 5 * time.Second
)

// PLC is one OPC UA connection to a station PLC: connect, batched read,
// write. It does not reconnect by itself (gopcua's auto-reconnect can leave
// a client "connected" with nothing behind it); the caller closes a PLC that
// failed and dials a new one.
type PLC struct {
	Endpoint string
	client   *opcua.Client
	maxRead  int
}

// DialPLC connects to endpoint with security None and an anonymous session.
// maxNodesPerRead caps every Read; 0 asks the server's
// OperationLimits/MaxNodesPerRead and falls back to MaxNodesPerReadDefault.
func DialPLC(ctx context.Context, endpoint string, maxNodesPerRead int) (*PLC, error) {
	c, err := opcua.NewClient(endpoint,
		opcua.SecurityMode(ua.MessageSecurityModeNone),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone),
		opcua.AutoReconnect(false),
		opcua.DialTimeout(DialTimeoutDefault),
		opcua.RequestTimeout(RequestTimeoutDefault),
		opcua.SessionTimeout(time.Minute),
		opcua.ApplicationName("keiline agent"),
	)
	if err != nil {
		return nil, fmt.Errorf("plc %s: %w", endpoint, err)
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeoutDefault+RequestTimeoutDefault)
	defer cancel()
	if err := c.Connect(dctx); err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("plc %s: connect: %w", endpoint, err)
	}
	p := &PLC{Endpoint: endpoint, client: c, maxRead: maxNodesPerRead}
	if p.maxRead <= 0 {
		p.maxRead = MaxNodesPerReadDefault
		dvs, err := p.read(ctx, []*ua.NodeID{ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)})
		if err == nil && dvs[0].Status == ua.StatusOK && dvs[0].Value != nil {
			if n, ok := dvs[0].Value.Value().(uint32); ok && n > 0 {
				p.maxRead = int(n)
			}
		}
	}
	return p, nil
}

// MaxNodesPerRead is the most nodes this PLC is sent in one Read.
func (p *PLC) MaxNodesPerRead() int { return p.maxRead }

// Read reads the values of nodes, split into Reads of at most
// MaxNodesPerRead nodes. The results are in the order of nodes. A
// transport or service error is returned as is; the caller should close
// the PLC and dial again when IsConnectionError says so.
func (p *PLC) Read(ctx context.Context, nodes []*ua.NodeID) ([]*ua.DataValue, error) {
	out := make([]*ua.DataValue, 0, len(nodes))
	for start := 0; start < len(nodes); start += p.maxRead {
		end := min(start+p.maxRead, len(nodes))
		dvs, err := p.read(ctx, nodes[start:end])
		if err != nil {
			return nil, err
		}
		out = append(out, dvs...)
	}
	return out, nil
}

func (p *PLC) read(ctx context.Context, nodes []*ua.NodeID) ([]*ua.DataValue, error) {
	req := &ua.ReadRequest{
		MaxAge:             0,
		TimestampsToReturn: ua.TimestampsToReturnBoth,
		NodesToRead:        make([]*ua.ReadValueID, len(nodes)),
	}
	for i, n := range nodes {
		req.NodesToRead[i] = &ua.ReadValueID{NodeID: n, AttributeID: ua.AttributeIDValue}
	}
	res, err := p.client.Read(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("plc %s: read %d nodes: %w", p.Endpoint, len(nodes), err)
	}
	if res.ResponseHeader != nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
		return nil, fmt.Errorf("plc %s: read %d nodes: %w", p.Endpoint, len(nodes), res.ResponseHeader.ServiceResult)
	}
	if len(res.Results) != len(nodes) {
		return nil, fmt.Errorf("plc %s: read %d nodes: server returned %d results", p.Endpoint, len(nodes), len(res.Results))
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
