package stations

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"go.yaml.in/yaml/v3"
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

// TagMatch is the node a browse found for a logical tag.
type TagMatch struct {
	Tag  string
	Node *BrowsedNode // nil when no node matches
	// Others are further nodes that match as well, for the integrator to
	// choose from.
	Others []string
	// Problem is set when the node's data type or access does not fit.
	Problem string
}

// MatchStation matches browsed variables to the logical tags of station
// id by name: a tag matches a variable whose browse path ends with the
// tag's parts, compared without case, spaces, '_' and '-', and splitting
// dotted browse names ("Result.Vin" matches .../Result/Vin,
// .../Result.Vin and .../result_vin"). Among several matches, one whose
// path names the station wins. The slot counts are the highest slot
// numbers found. It returns the station and a match per tag.
func MatchStation(res *BrowseResult, id, endpoint string) (*line.Station, []TagMatch) {
	type cand struct {
		n      *BrowsedNode
		tokens []string
	}
	var cands []cand
	for i := range res.Nodes {
		n := &res.Nodes[i]
		if n.NodeClass != ua.NodeClassVariable {
			continue
		}
		var toks []string
		for _, p := range n.Path {
			for _, t := range strings.Split(p, ".") {
				toks = append(toks, normalizeName(t))
			}
		}
		cands = append(cands, cand{n, toks})
	}
	st := &line.Station{ID: id, Endpoint: endpoint, Nodes: map[string]string{}}
	// Slot counts: the highest slot of each kind whose key tag matches.
	for _, kind := range []struct {
		prefix, key string
		n           *int
	}{{"Part", "PartNumber", &st.Parts}, {"Joint", "Name", &st.Joints}, {"Test", "Name", &st.Tests}} {
		for i := line.SlotsMax; i >= 1; i-- {
			if bestMatch(cands, fmt.Sprintf("%s%d.%s", kind.prefix, i, kind.key), id, func(c cand) []string { return c.tokens }) >= 0 {
				*kind.n = i
				break
			}
		}
	}
	var matches []TagMatch
	for _, tag := range st.Tags() {
		m := TagMatch{Tag: tag}
		idx := bestMatch(cands, tag, id, func(c cand) []string { return c.tokens })
		if idx >= 0 {
			m.Node = cands[idx].n
			st.Nodes[tag] = m.Node.NodeID
			// Others that match as well as the chosen one.
			score := matchScore(cands[idx].tokens, tag, id)
			for j, c := range cands {
				if j != idx && matchScore(c.tokens, tag, id) == score {
					m.Others = append(m.Others, c.n.NodeID)
				}
			}
			ni := nodeInfo{class: ua.NodeClassVariable, dataType: m.Node.DataType, valueRank: m.Node.ValueRank, rankKnown: true,
				access: m.Node.AccessLevel, accessKnown: true, user: m.Node.UserAccessLevel, userKnown: true}
			m.Problem = strings.Join(checkNode(tag, &ni), "; ")
		}
		matches = append(matches, m)
	}
	return st, matches
}

// bestMatch returns the index of the candidate that best matches tag, or
// -1: a candidate whose path names the station beats one that does not.
func bestMatch[C any](cands []C, tag, station string, tokens func(C) []string) int {
	best, bestScore := -1, -1
	for i, c := range cands {
		if sc := matchScore(tokens(c), tag, station); sc > bestScore {
			best, bestScore = i, sc
		}
	}
	return best
}

// matchScore is -1 when the path tokens do not end with tag; otherwise 2
// when the rest of the path has a token that is the station id, 1 when a
// token contains it, else 0.
func matchScore(toks []string, tag, station string) int {
	k := suffixLen(toks, tagParts(tag))
	if k == 0 {
		return -1
	}
	st := normalizeName(station)
	switch {
	case slices.Contains(toks[:len(toks)-k], st):
		return 2
	case slices.ContainsFunc(toks[:len(toks)-k], func(t string) bool { return strings.Contains(t, st) }):
		return 1
	}
	return 0
}

func tagParts(tag string) []string {
	parts := strings.Split(tag, ".")
	for i, p := range parts {
		parts[i] = normalizeName(p)
	}
	return parts
}

// suffixLen is how many of the last path tokens spell the tag's parts
// want, or 0: "result","vin" and "resultvin" both end a path that matches
// Result.Vin.
func suffixLen(toks, want []string) int {
	w := strings.Join(want, "")
	s := ""
	for k := 1; k <= len(toks); k++ {
		s = toks[len(toks)-k] + s
		if s == w {
			return k
		}
		if len(s) >= len(w) {
			break
		}
	}
	return 0
}

// normalizeName lower-cases s and drops what is not a letter or digit.
func normalizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, s)
}

// EmitStation writes station st as a YAML item of a line config's
// stations list, with a comment on every tag that matched no node, matched
// several or whose node's type or access does not fit.
func EmitStation(w io.Writer, st *line.Station, matches []TagMatch) error {
	item := &yaml.Node{Kind: yaml.MappingNode}
	kv := func(m *yaml.Node, k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.DoubleQuotedStyle}
	}
	num := func(n int) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(n), Tag: "!!int"} }
	kv(item, "id", &yaml.Node{Kind: yaml.ScalarNode, Value: st.ID})
	kv(item, "endpoint", &yaml.Node{Kind: yaml.ScalarNode, Value: st.Endpoint})
	kv(item, "parts", num(st.Parts))
	kv(item, "joints", num(st.Joints))
	kv(item, "tests", num(st.Tests))
	nodes := &yaml.Node{Kind: yaml.MappingNode}
	missing := 0
	for _, m := range matches {
		v := str("")
		switch {
		case m.Node == nil:
			missing++
			v.LineComment = "TODO: no node matched; write the node id"
		default:
			v = str(m.Node.NodeID)
			var notes []string
			if m.Problem != "" {
				notes = append(notes, "CHECK: "+m.Problem)
			}
			if len(m.Others) > 0 {
				notes = append(notes, "also matched: "+strings.Join(m.Others, ", "))
			}
			v.LineComment = strings.Join(notes, "; ")
		}
		kv(nodes, m.Tag, v)
	}
	kv(item, "nodes", nodes)
	item.HeadComment = fmt.Sprintf("Station %s, matched by `keiline plc browse --emit-station`: %d of %d tags found.\n"+
		"Check every node, add name, zone and security settings (docs/line-config.md), then run `keiline plc check`.",
		st.ID, len(matches)-missing, len(matches))
	doc := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{item}}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}
