package stations

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Bounds of a browse.
const (
	// BrowseDepthDefault is how many levels below the root a browse walks.
	BrowseDepthDefault = 8
	// BrowseNodesDefault is the most nodes a browse returns.
	BrowseNodesDefault = 10000
	// browseBatch is the most nodes browsed in one Browse request.
	browseBatch = 50
)

// BrowseOptions bound a browse of a PLC's address space.
type BrowseOptions struct {
	// Root is where the walk starts. Defaults to the Objects folder.
	Root *ua.NodeID
	// MaxDepth is how many levels below Root are walked. Defaults to
	// BrowseDepthDefault.
	MaxDepth int
	// MaxNodes is the most nodes returned. Defaults to BrowseNodesDefault.
	MaxNodes int
	// AllNamespaces also walks below nodes of namespace 0 (the server's own
	// objects, such as Server, which are large and rarely hold PLC tags).
	AllNamespaces bool
}

// BrowsedNode is an object or variable found by Browse.
type BrowsedNode struct {
	NodeID string
	// Path is the browse names from the root (excluded) to the node.
	Path      []string
	NodeClass ua.NodeClass
	// DataType, ValueRank and the access levels are those of a variable.
	DataType        *ua.NodeID
	ValueRank       int32
	AccessLevel     byte
	UserAccessLevel byte
}

// BrowseResult is the outcome of a browse.
type BrowseResult struct {
	Nodes []BrowsedNode
	// Truncated says why the walk stopped early ("" when it did not):
	// the depth or node limit, or the time limit (the context's deadline).
	Truncated string
}

// Browse walks the PLC's address space breadth first from opts.Root along
// hierarchical references (with subtypes: gopcua's server loops or panics
// without them), returning objects and variables with the data type, value
// rank and access levels of each variable. The walk stops at MaxDepth,
// MaxNodes or when ctx is done; what was found until then is returned with
// Truncated saying why. An error is returned only when nothing could be
// browsed.
func Browse(ctx context.Context, plc *PLC, opts BrowseOptions) (*BrowseResult, error) {
	if opts.Root == nil {
		opts.Root = ua.NewNumericNodeID(0, id.ObjectsFolder)
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = BrowseDepthDefault
	}
	if opts.MaxNodes <= 0 {
		opts.MaxNodes = BrowseNodesDefault
	}
	type item struct {
		node *ua.NodeID
		path []string
	}
	res := &BrowseResult{}
	seen := map[string]bool{opts.Root.String(): true}
	level := []item{{node: opts.Root}}
	var vars []int // indexes of variables in res.Nodes
walk:
	for depth := 1; len(level) > 0; depth++ {
		if depth > opts.MaxDepth {
			res.Truncated = fmt.Sprintf("depth limit %d reached", opts.MaxDepth)
			break
		}
		var next []item
		for start := 0; start < len(level); start += browseBatch {
			batch := level[start:min(start+browseBatch, len(level))]
			nodes := make([]*ua.NodeID, len(batch))
			for i, it := range batch {
				nodes[i] = it.node
			}
			refs, err := plc.browse(ctx, nodes)
			if err != nil {
				switch {
				case ctx.Err() != nil:
					res.Truncated = "time limit reached"
				case len(res.Nodes) == 0:
					return nil, err
				default:
					res.Truncated = fmt.Sprintf("stopped by an error: %v", err)
				}
				break walk
			}
			for i, rs := range refs {
				for _, r := range rs {
					if r.NodeID == nil || r.NodeID.NodeID == nil || r.NodeID.ServerIndex != 0 {
						continue
					}
					n := r.NodeID.NodeID
					if seen[n.String()] {
						continue
					}
					seen[n.String()] = true
					name := n.String()
					if r.BrowseName != nil {
						name = r.BrowseName.Name
					}
					path := append(slices.Clip(batch[i].path), name)
					res.Nodes = append(res.Nodes, BrowsedNode{NodeID: n.String(), Path: path, NodeClass: r.NodeClass})
					if r.NodeClass == ua.NodeClassVariable {
						vars = append(vars, len(res.Nodes)-1)
					}
					if len(res.Nodes) >= opts.MaxNodes {
						res.Truncated = fmt.Sprintf("node limit %d reached", opts.MaxNodes)
						break walk
					}
					if n.Namespace() != 0 || opts.AllNamespaces {
						next = append(next, item{node: n, path: path})
					}
				}
			}
		}
		level = next
	}

	// The variables' data types and access levels.
	nodes := make([]*ua.NodeID, len(vars))
	for i, v := range vars {
		nodes[i], _ = ua.ParseNodeID(res.Nodes[v].NodeID)
	}
	for start := 0; start < len(nodes) && ctx.Err() == nil; start += 500 {
		end := min(start+500, len(nodes))
		infos, err := readNodeInfo(ctx, plc, nodes[start:end], false)
		if err != nil {
			if res.Truncated == "" {
				res.Truncated = fmt.Sprintf("data types not read: %v", err)
			}
			break
		}
		for i, ni := range infos {
			bn := &res.Nodes[vars[start+i]]
			bn.DataType, bn.ValueRank, bn.AccessLevel, bn.UserAccessLevel = ni.dataType, ni.valueRank, ni.access, ni.user
			if !ni.userKnown {
				bn.UserAccessLevel = ni.access
			}
		}
	}
	if ctx.Err() != nil && res.Truncated == "" {
		res.Truncated = "time limit reached"
	}
	return res, nil
}

// browse returns the forward hierarchical references of each node to
// objects and variables, following continuation points.
func (p *PLC) browse(ctx context.Context, nodes []*ua.NodeID) ([][]*ua.ReferenceDescription, error) {
	req := &ua.BrowseRequest{
		View:                          &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		RequestedMaxReferencesPerNode: 1000,
	}
	for _, n := range nodes {
		req.NodesToBrowse = append(req.NodesToBrowse, &ua.BrowseDescription{
			NodeID:          n,
			BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true, // never false: gopcua's server panics
			NodeClassMask:   uint32(ua.NodeClassObject | ua.NodeClassVariable),
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		})
	}
	res, err := p.client.Browse(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("plc %s: browse %d nodes: %w", p.Endpoint, len(nodes), err)
	}
	if len(res.Results) != len(nodes) {
		return nil, fmt.Errorf("plc %s: browse %d nodes: server returned %d results", p.Endpoint, len(nodes), len(res.Results))
	}
	out := make([][]*ua.ReferenceDescription, len(nodes))
	for i, r := range res.Results {
		if r.StatusCode != ua.StatusOK {
			continue // a node that cannot be browsed has no children for us
		}
		out[i] = r.References
		cp := r.ContinuationPoint
		for len(cp) > 0 {
			nr, err := p.client.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
			if err != nil {
				return nil, fmt.Errorf("plc %s: browse next of %s: %w", p.Endpoint, nodes[i], err)
			}
			if len(nr.Results) != 1 || nr.Results[0].StatusCode != ua.StatusOK {
				break
			}
			out[i] = append(out[i], nr.Results[0].References...)
			cp = nr.Results[0].ContinuationPoint
		}
	}
	return out, nil
}

// nodeClassName is a node class's short name (Variable, Object, ...).
func nodeClassName(c ua.NodeClass) string {
	return strings.TrimPrefix(c.String(), "NodeClass")
}

// PrintBrowse writes the browsed nodes as a table: node id, browse path,
// node class or data type, and access level.
func PrintBrowse(w io.Writer, res *BrowseResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tBROWSE PATH\tTYPE\tACCESS")
	for _, n := range res.Nodes {
		typ, access := nodeClassName(n.NodeClass), ""
		if n.NodeClass == ua.NodeClassVariable {
			typ = dataTypeName(n.DataType)
			if n.ValueRank >= 0 {
				typ += "[]"
			}
			access = accessString(n.UserAccessLevel)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.NodeID, strings.Join(n.Path, "/"), typ, access)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	vars := 0
	for _, n := range res.Nodes {
		if n.NodeClass == ua.NodeClassVariable {
			vars++
		}
	}
	_, err := fmt.Fprintf(w, "%d nodes, %d variables", len(res.Nodes), vars)
	if res.Truncated != "" {
		_, err = fmt.Fprintf(w, " (incomplete: %s)", res.Truncated)
	}
	fmt.Fprintln(w)
	return err
}
