// Package line is the line definition every MES part shares: the plant and
// line codes, the stations in line order with their zones and the tag map
// of each station's PLC (docs/plc-tags.md), the security of each PLC
// connection, and the planning half — what the line builds (products),
// how orders are sequenced and the JIS broadcast. It is read from YAML
// (docs/line-config.md) and validated with the file line of every problem.
//
// It is a leaf package: the agent, the tracker, the dashboard and the
// tools import it; it imports no transport, no database and no device
// library beyond gopcua's node id syntax. The simulator keeps its own
// model of the plant (the independent ground truth) and does not import it.
package line

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"go.yaml.in/yaml/v3"
)

// ConfigVersion is the line config version this code reads.
const ConfigVersion = 1

// Defaults and limits of the line config.
const (
	// PollIntervalDefault is how often an agent reads a station's tags.
	PollIntervalDefault = 100 * time.Millisecond
	// PollIntervalMin is the shortest poll interval allowed.
	PollIntervalMin = 10 * time.Millisecond
	// MaxNodesPerReadDefault is used when the server does not say its limit.
	MaxNodesPerReadDefault = 100
	// SlotsMax is the most part, joint or test slots a station may have.
	SlotsMax = 64
	// PKIDirDefault is the PKI directory, relative to the config file.
	PKIDirDefault = "pki"
)

// Security policies of the OPC UA secure channel (the short names of the
// OPC UA security policy URIs). Basic128Rsa15 and Basic256 are deprecated
// by the OPC Foundation and not allowed.
const (
	PolicyNone                = "None"
	PolicyBasic256Sha256      = "Basic256Sha256"
	PolicyAes128Sha256RsaOaep = "Aes128_Sha256_RsaOaep"
	PolicyAes256Sha256RsaPss  = "Aes256_Sha256_RsaPss"
)

// SecurityPolicies are the allowed values of security_policy.
var SecurityPolicies = []string{PolicyNone, PolicyBasic256Sha256, PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss}

// Message security modes of the secure channel.
const (
	ModeNone           = "None"
	ModeSign           = "Sign"
	ModeSignAndEncrypt = "SignAndEncrypt"
)

// SecurityModes are the allowed values of security_mode.
var SecurityModes = []string{ModeNone, ModeSign, ModeSignAndEncrypt}

// User identity types of the OPC UA session.
const (
	UserAnonymous   = "anonymous"
	UserUsername    = "username"
	UserCertificate = "certificate"
)

// UserTypes are the allowed values of user.type.
var UserTypes = []string{UserAnonymous, UserUsername, UserCertificate}

// Zones are the allowed values of a station's zone. The tracker's quality
// gate is the line's last non-optional station of zone quality.
var Zones = []string{"body", "paint", "trim", "chassis", "final", "quality", "rework", "ship"}

// Station tags every station must map (see docs/plc-tags.md).
var StationTags = []string{
	"Heartbeat", "State", "FaultCode", "FaultText", "Andon", "StateCounter",
	"VinPresent", "CycleCounter", "DataReady", "AckCounter",
	"Result.Vin", "Result.BodyNo", "Result.Model", "Result.Variant", "Result.Colour",
	"Result.Status", "Result.StartTime", "Result.EndTime",
}

// Slot tag suffixes, per slot kind.
var (
	PartTags  = []string{"PartNumber", "Serial", "Lot", "Supplier"}
	JointTags = []string{"Name", "Tool", "TorqueNm", "AngleDeg", "OK"}
	TestTags  = []string{"Name", "Unit", "Value", "Low", "High", "OK"}
)

// Config maps a line's stations to their PLCs. It is read from YAML
// (line.yaml, described field by field in docs/line-config.md); `keiline
// simulate --emit-config` writes one for the simulator.
type Config struct {
	// Version of the config format. Must be 1.
	Version int `yaml:"version"`
	// Plant code, e.g. US1. Required.
	Plant string `yaml:"plant"`
	// Line code, e.g. L1. Required.
	Line string `yaml:"line"`
	// PollInterval is how often each station's tags are read. Defaults to 100 ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Identity is how the line identifies its cars: vin (the default; a
	// 49 CFR 565 VIN, or a body number resolved to the VIN a station
	// reporting both gave), body-number or any. The agent refuses, and
	// does not acknowledge, a cycle whose car identity breaks it.
	Identity event.IdentityPolicy `yaml:"identity,omitempty"`
	// NodePattern, when set, maps every tag a station's nodes leave out
	// to the node id it gives, with {station} and {tag} replaced
	// ("ns=1;s={station}.{tag}", as keiline's simulator names its nodes).
	// A station's own node_pattern overrides it.
	NodePattern string `yaml:"node_pattern,omitempty"`
	// PKI holds the agent's application instance certificate and the trust
	// lists of PLC server certificates. It is used by stations with a
	// security policy or a user other than anonymous.
	PKI PKIConfig `yaml:"pki,omitempty"`
	// Stations in line order.
	Stations []Station `yaml:"stations"`
	// Products, Sequencing and Broadcast are the planning half: what the
	// line builds, how orders are sequenced and downloaded to the framing
	// station's manifest, and the JIS broadcast (see products.go). Optional.
	Products   *Products   `yaml:"products,omitempty"`
	Sequencing *Sequencing `yaml:"sequencing,omitempty"`
	Broadcast  *Broadcast  `yaml:"broadcast,omitempty"`
	// SPC and Shifts are the quality engineer's and the supervisor's
	// settings: statistical process control per characteristic (spc.go)
	// and the shift calendar for honest OEE (shifts.go). Optional.
	SPC    SPC    `yaml:"spc,omitempty"`
	Shifts Shifts `yaml:"shifts,omitempty"`
	// People is what the station terminals offer: the defect catalogue,
	// the zones on the car, the reason tree of stops (people.go).
	// Optional.
	People People `yaml:"people,omitempty"`

	path  string         // file the config came from, for messages
	dir   string         // directory relative paths are resolved against
	lines map[string]int // line of each YAML path ("stations.0.endpoint")
}

// PKIConfig locates the agent's certificates. Relative paths are relative
// to the config file's directory.
type PKIConfig struct {
	// Dir is the PKI directory: own/ (the agent's certificate), trusted/
	// (PLC certificates the integrator trusts) and rejected/ (unknown PLC
	// certificates, saved for approval). Defaults to "pki".
	Dir string `yaml:"dir,omitempty"`
	// Certificate is the agent's application instance certificate (DER or
	// PEM). Defaults to <dir>/own/cert.der.
	Certificate string `yaml:"certificate,omitempty"`
	// PrivateKey is the certificate's RSA private key (PEM). Defaults to
	// <dir>/own/key.pem.
	PrivateKey string `yaml:"private_key,omitempty"`
	// ApplicationURI is written into a certificate `keiline plc cert`
	// creates. Defaults to urn:<host name>:keiline:agent. An existing
	// certificate's own URI is always the one used.
	ApplicationURI string `yaml:"application_uri,omitempty"`
}

// Station is one station PLC.
type Station struct {
	// ID is the station id, e.g. W01. Required, unique.
	ID string `yaml:"id"`
	// Name is the station's name for people.
	Name string `yaml:"name"`
	// Zone is body, paint, trim, chassis, final, quality, rework or ship;
	// optional.
	Zone string `yaml:"zone"`
	// Endpoint is the PLC's OPC UA endpoint, opc.tcp://host:port[/path].
	Endpoint string `yaml:"endpoint"`
	// SecurityPolicy of the secure channel: None, Basic256Sha256,
	// Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss. Defaults to None.
	SecurityPolicy string `yaml:"security_policy,omitempty"`
	// SecurityMode of the secure channel: None, Sign or SignAndEncrypt.
	// Defaults to None with policy None, else to SignAndEncrypt.
	SecurityMode string `yaml:"security_mode,omitempty"`
	// User is the session's user identity. Defaults to anonymous.
	User UserIdentity `yaml:"user,omitempty"`
	// Optional stations (an off-line rework bay) are visited only by some cars.
	Optional bool `yaml:"optional"`
	// Parts, Joints and Tests are the result block's slot counts.
	Parts  int `yaml:"parts"`
	Joints int `yaml:"joints"`
	Tests  int `yaml:"tests"`
	// Manifest is the framing station's count of manifest slots: the
	// next cars' build data the MES downloads (0: none).
	Manifest int `yaml:"manifest,omitempty"`
	// MaxNodesPerRead caps the nodes in one Read. Defaults to the server's
	// own limit, or 100 when the server does not say.
	MaxNodesPerRead int `yaml:"max_nodes_per_read"`
	// NodePattern overrides the line's node_pattern for this station.
	NodePattern string `yaml:"node_pattern,omitempty"`
	// Nodes maps each logical tag (docs/plc-tags.md) to where its value
	// comes from: a node id, or a Tag mapping (a node with an array
	// index, a value map or a scale; a constant; absent). An optional tag
	// left out (and not given by a node pattern) is absent.
	Nodes map[string]Tag `yaml:"nodes"`
	// Controllers are the station's tightening controllers, reached over
	// the Open Protocol (torque.go, docs/torque.md). Optional.
	Controllers []Controller `yaml:"controllers,omitempty"`

	line int // line in the config file
}

// Line is the config file line the station starts on (0 when made in code).
func (st *Station) Line() int { return st.line }

// UserIdentity is the user an agent's session runs as. A password is never
// written in the config: it comes from an environment variable or a file,
// read by Config.ResolvePasswords.
type UserIdentity struct {
	// Type is anonymous, username or certificate. Defaults to anonymous.
	Type string `yaml:"type,omitempty"`
	// Name is the user name (type username).
	Name string `yaml:"name,omitempty"`
	// PasswordEnv names the environment variable holding the password
	// (type username; this or PasswordFile).
	PasswordEnv string `yaml:"password_env,omitempty"`
	// PasswordFile is a file whose first line is the password (type
	// username; this or PasswordEnv).
	PasswordFile string `yaml:"password_file,omitempty"`
	// Certificate and PrivateKey are the user certificate (DER or PEM) and
	// its RSA key (PEM) for type certificate. Default to the agent's
	// application instance certificate and key.
	Certificate string `yaml:"certificate,omitempty"`
	PrivateKey  string `yaml:"private_key,omitempty"`

	password *secret // resolved by ResolvePasswords; a pointer, so %v never prints it
}

// secret holds a password. It prints as [redacted].
type secret struct{ s string }

func (s *secret) String() string   { return "[redacted]" }
func (s *secret) GoString() string { return "[redacted]" }

// Problem is one thing wrong in a line config.
type Problem struct {
	// Line in the config file; 0 when not known.
	Line int
	// Station is the station's id (or "stations[i]" when it has none);
	// empty for line-level fields.
	Station string
	// Field is the YAML field, e.g. "security_mode" or "nodes.CycleCounter".
	Field string
	// Message says what is wrong and what is allowed.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Station != "" {
		fmt.Fprintf(&b, "station %s: ", p.Station)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, "%s: ", p.Field)
	}
	b.WriteString(p.Message)
	return b.String()
}

// ConfigError lists every problem found in a line config.
type ConfigError struct {
	Path     string
	Problems []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line config %s: %d problem(s):", e.Path, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: ", e.Path, p.Line)
			p.Line = 0
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Load reads and validates the line config at path. A *ConfigError
// lists every problem with its line.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("line config: %w", err)
	}
	return Parse(path, b)
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse parses and validates a line config; path names it in errors
// and relative paths in it are resolved against path's directory. Every
// problem is reported at once in a *ConfigError: YAML that does not parse,
// values of the wrong type, unknown fields and failed validation.
func Parse(path string, b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &ConfigError{Path: path, Problems: []Problem{yamlProblem(err.Error())}}
	}
	var cfg Config
	var typeErrs []string
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &ConfigError{Path: path, Problems: []Problem{yamlProblem(err.Error())}}
		}
		typeErrs = te.Errors
	}
	cfg.path = path
	cfg.dir = filepath.Dir(path)
	cfg.lines = map[string]int{}
	var probs []Problem
	if len(root.Content) == 1 {
		doc := root.Content[0]
		indexLines(doc, "", cfg.lines)
		probs = append(probs, unknownFields(doc, reflect.TypeFor[Config](), "", &cfg)...)
	}
	for _, e := range typeErrs {
		p := yamlProblem(e)
		if path := cfg.pathAt(p.Line); path != "" {
			q := cfg.problemAt(path, p.Line)
			q.Message = p.Message
			p = q
		}
		probs = append(probs, p)
	}
	for i := range cfg.Stations {
		cfg.Stations[i].line = cfg.lines[fmt.Sprintf("stations.%d", i)]
	}
	err := cfg.Validate()
	var ce *ConfigError
	if errors.As(err, &ce) {
		probs = append(probs, ce.Problems...)
	} else if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &ConfigError{Path: path, Problems: probs}
	}
	return &cfg, nil
}

// yamlProblem turns a YAML error message ("line 7: cannot unmarshal ...")
// into a Problem with its line.
func yamlProblem(msg string) Problem {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Message: m[2]}
	}
	return Problem{Message: strings.TrimPrefix(msg, "yaml: ")}
}

// indexLines records the line of every mapping key and sequence item under
// n, by dotted path ("stations.0.nodes.CycleCounter").
func indexLines(n *yaml.Node, path string, lines map[string]int) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(n.Content[i].Value)
			lines[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := join(strconv.Itoa(i))
			lines[p] = c.Line
			indexLines(c, p, lines)
		}
	}
}

// pathAt returns the deepest YAML path whose key is on line, or "".
func (c *Config) pathAt(line int) string {
	best := ""
	for p, l := range c.lines {
		if l == line && (len(p) > len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

// unknownFields reports the keys of mapping n that type t has no field
// for, recursing into nested structs and lists of structs.
func unknownFields(n *yaml.Node, t reflect.Type, path string, c *Config) []Problem {
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	var probs []Problem
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := key.Value
		if path != "" {
			p = path + "." + key.Value
		}
		ft, ok := fields[key.Value]
		if !ok {
			prob := c.problemAt(p, key.Line)
			if t == reflect.TypeFor[UserIdentity]() && strings.Contains(strings.ToLower(key.Value), "password") {
				prob.Message = "a password is never written in the config: set password_env (an environment variable) or password_file (a file holding it)"
			} else {
				prob.Message = fmt.Sprintf("unknown field; allowed: %s", strings.Join(names, ", "))
			}
			probs = append(probs, prob)
			continue
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]():
			probs = append(probs, unknownFields(val, ft, p, c)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && val.Kind == yaml.SequenceNode:
			for j, item := range val.Content {
				probs = append(probs, unknownFields(item, ft.Elem(), fmt.Sprintf("%s.%d", p, j), c)...)
			}
		}
	}
	return probs
}

// problemAt makes a Problem for the YAML path p ("stations.2.user.name"):
// the station it belongs to, the field within it and the line.
func (c *Config) problemAt(p string, line int) Problem {
	prob := Problem{Line: line, Field: p}
	if rest, ok := strings.CutPrefix(p, "stations."); ok {
		idx, field, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); err == nil {
			prob.Station = fmt.Sprintf("stations[%d]", i)
			if i >= 0 && i < len(c.Stations) && token(c.Stations[i].ID) {
				prob.Station = c.Stations[i].ID
			}
			prob.Field = field
		}
	}
	if prob.Line == 0 {
		// The nearest enclosing path with a known line.
		for q := p; q != ""; {
			if l, ok := c.lines[q]; ok {
				prob.Line = l
				break
			}
			i := strings.LastIndexByte(q, '.')
			if i < 0 {
				break
			}
			q = q[:i]
		}
	}
	return prob
}

// Validate checks the config and fills defaults. It reports every problem
// at once in a *ConfigError, naming the field, the station, its line (when
// the config came from a file) and the values allowed.
func (c *Config) Validate() error {
	var probs []Problem
	add := func(path, format string, a ...any) {
		p := c.problemAt(path, 0)
		p.Message = fmt.Sprintf(format, a...)
		probs = append(probs, p)
	}
	if c.Version == 0 {
		add("version", "missing; write version: %d", ConfigVersion)
	} else if c.Version != ConfigVersion {
		add("version", "%d is not supported; allowed: %d", c.Version, ConfigVersion)
	}
	if !token(c.Plant) {
		add("plant", "%q must be a non-empty word without dots or spaces", c.Plant)
	}
	if !token(c.Line) {
		add("line", "%q must be a non-empty word without dots or spaces", c.Line)
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	} else if c.PollInterval < PollIntervalMin {
		add("poll_interval", "%s is below the minimum %s", c.PollInterval, PollIntervalMin)
	}
	if (c.PKI.Certificate == "") != (c.PKI.PrivateKey == "") {
		add("pki", "certificate and private_key go together: set both or neither")
	}
	if len(c.Stations) == 0 {
		add("stations", "none configured")
	}
	seen, controllers := map[string]bool{}, map[string]bool{}
	for i := range c.Stations {
		st := &c.Stations[i]
		at := func(field string) string { return fmt.Sprintf("stations.%d.%s", i, field) }
		if !token(st.ID) {
			add(at("id"), "%q must be a non-empty word without dots or spaces", st.ID)
		} else if seen[st.ID] {
			add(at("id"), "%q is used twice", st.ID)
		}
		seen[st.ID] = true
		if st.Zone != "" && !slices.Contains(Zones, st.Zone) {
			add(at("zone"), "%q is not allowed; allowed: %s (or none)", st.Zone, strings.Join(Zones, ", "))
		}
		if !strings.HasPrefix(st.Endpoint, "opc.tcp://") {
			add(at("endpoint"), "%q must start with opc.tcp://", st.Endpoint)
		}
		for _, f := range []struct {
			name string
			n    int
		}{{"parts", st.Parts}, {"joints", st.Joints}, {"tests", st.Tests}} {
			if f.n < 0 || f.n > SlotsMax {
				add(at(f.name), "%d outside 0..%d", f.n, SlotsMax)
			}
		}
		if st.Manifest < 0 || st.Manifest > ManifestSlotsMax {
			add(at("manifest"), "%d outside 0..%d", st.Manifest, ManifestSlotsMax)
		}
		if st.MaxNodesPerRead < 0 {
			add(at("max_nodes_per_read"), "%d must be 0 (ask the server) or more", st.MaxNodesPerRead)
		}
		c.validateSecurity(st, at, add)
		c.validateNodes(st, at, add)
		c.validateControllers(st, at, add, controllers)
		known := map[string]bool{}
		for _, tag := range st.Tags() {
			known[tag] = true
		}
		var extra []string
		for tag := range st.Nodes {
			if !known[tag] {
				extra = append(extra, tag)
			}
		}
		slices.Sort(extra)
		for _, tag := range extra {
			add(at("nodes."+tag), "not a station tag (see docs/plc-tags.md), or its slot is beyond the slot counts (parts %d, joints %d, tests %d, manifest %d)", st.Parts, st.Joints, st.Tests, st.Manifest)
		}
	}
	if c.Identity == "" {
		c.Identity = event.IdentityVIN
	} else if p, err := event.ParseIdentityPolicy(string(c.Identity)); err != nil {
		add("identity", "%v", err)
	} else {
		c.Identity = p
	}
	c.validateProducts(add)
	c.validateSPC(add)
	c.validateShifts(add)
	c.validatePeople(add)
	if len(probs) > 0 {
		return &ConfigError{Path: c.path, Problems: probs}
	}
	return nil
}

// validateNodes fills a station's tag map from the node patterns and with
// absent optional tags, and checks every tag: a required tag left out, a
// tag in the wrong form, a car identity that cannot be read.
func (c *Config) validateNodes(st *Station, at func(string) string, add func(string, string, ...any)) {
	if st.Nodes == nil {
		st.Nodes = map[string]Tag{}
	}
	pattern := st.NodePattern
	if pattern == "" {
		pattern = c.NodePattern
	}
	if pattern != "" && !strings.Contains(pattern, "{tag}") {
		add(at("node_pattern"), "%q must contain {tag}", pattern)
		pattern = ""
	}
	var unmapped []string
	for _, tag := range st.Tags() {
		t, ok := st.Nodes[tag]
		switch {
		case ok:
		case pattern != "":
			t = NodeTag(strings.NewReplacer("{station}", st.ID, "{tag}", tag).Replace(pattern))
		default:
			if _, optional := OptionalTag(tag); !optional {
				unmapped = append(unmapped, tag)
				continue
			}
			t = AbsentTag()
		}
		validateTag(tag, &t, func(format string, a ...any) { add(at("nodes."+tag), format, a...) })
		st.Nodes[tag] = t
	}
	switch {
	case len(unmapped) == 1:
		add(at("nodes"), "tag %s is not mapped", unmapped[0])
	case len(unmapped) > 1:
		add(at("nodes"), "%d tags are not mapped: %s", len(unmapped), strings.Join(unmapped, ", "))
	}
	for i := 1; i <= st.Tests; i++ {
		ok, low, high := fmt.Sprintf("Test%d.OK", i), fmt.Sprintf("Test%d.Low", i), fmt.Sprintf("Test%d.High", i)
		if st.Nodes[ok].Absent && (st.Nodes[low].Absent || st.Nodes[high].Absent) {
			add(at("nodes."+ok), "absent needs both limits (%s and %s) to judge the value by", low, high)
		}
	}
	vinTag, bodyTag := st.Nodes["Result.Vin"], st.Nodes["Result.BodyNo"]
	switch {
	case vinTag.Absent && bodyTag.Absent:
		add(at("nodes"), "the car's identity: map Result.Vin or Result.BodyNo (or both)")
	case c.Identity == event.IdentityBodyNumber && bodyTag.Absent:
		add(at("nodes.Result.BodyNo"), "identity: body-number needs every station to map Result.BodyNo")
	}
}

// Node returns the node id tag is read from, or "" for a constant or
// absent tag.
func (st *Station) Node(tag string) string {
	t := st.Nodes[tag]
	if !t.IsRead() {
		return ""
	}
	return t.Node
}

// validateSecurity checks and defaults a station's security policy, mode
// and user.
func (c *Config) validateSecurity(st *Station, at func(string) string, add func(string, string, ...any)) {
	policyOK := true
	if st.SecurityPolicy == "" {
		st.SecurityPolicy = PolicyNone
	} else if p, ok := canonical(SecurityPolicies, st.SecurityPolicy); ok {
		st.SecurityPolicy = p
	} else {
		policyOK = false
		add(at("security_policy"), "%q is not allowed; allowed: %s", st.SecurityPolicy, strings.Join(SecurityPolicies, ", "))
	}
	switch {
	case st.SecurityMode == "":
		if st.SecurityPolicy == PolicyNone {
			st.SecurityMode = ModeNone
		} else {
			st.SecurityMode = ModeSignAndEncrypt
		}
	default:
		m, ok := canonical(SecurityModes, st.SecurityMode)
		if !ok {
			add(at("security_mode"), "%q is not allowed; allowed: %s", st.SecurityMode, strings.Join(SecurityModes, ", "))
			break
		}
		st.SecurityMode = m
		if policyOK && (m == ModeNone) != (st.SecurityPolicy == PolicyNone) {
			if m == ModeNone {
				add(at("security_mode"), "None does not go with security_policy %s; allowed: Sign, SignAndEncrypt", st.SecurityPolicy)
			} else {
				add(at("security_mode"), "%s needs a security_policy other than None; allowed policies: %s", m, strings.Join(SecurityPolicies[1:], ", "))
			}
		}
	}

	u := &st.User
	if u.Type == "" {
		u.Type = UserAnonymous
	} else if t, ok := canonical(UserTypes, u.Type); ok {
		u.Type = t
	} else {
		add(at("user.type"), "%q is not allowed; allowed: %s", u.Type, strings.Join(UserTypes, ", "))
		return
	}
	notFor := func(field, value string) {
		if value != "" {
			add(at("user."+field), "not used with user type %s", u.Type)
		}
	}
	switch u.Type {
	case UserAnonymous:
		notFor("name", u.Name)
		notFor("password_env", u.PasswordEnv)
		notFor("password_file", u.PasswordFile)
		notFor("certificate", u.Certificate)
		notFor("private_key", u.PrivateKey)
	case UserUsername:
		if u.Name == "" {
			add(at("user.name"), "required for user type username")
		}
		switch {
		case u.PasswordEnv == "" && u.PasswordFile == "":
			add(at("user"), "user type username needs password_env (an environment variable) or password_file (a file holding the password)")
		case u.PasswordEnv != "" && u.PasswordFile != "":
			add(at("user"), "password_env and password_file both set; allowed: one of them")
		case u.PasswordEnv != "" && !envName.MatchString(u.PasswordEnv):
			add(at("user.password_env"), "%q is not an environment variable name (letters, digits and _, not starting with a digit)", u.PasswordEnv)
		}
		notFor("certificate", u.Certificate)
		notFor("private_key", u.PrivateKey)
	case UserCertificate:
		notFor("name", u.Name)
		notFor("password_env", u.PasswordEnv)
		notFor("password_file", u.PasswordFile)
		if (u.Certificate == "") != (u.PrivateKey == "") {
			add(at("user"), "certificate and private_key go together: set both, or neither to use the agent's own certificate")
		}
	}
}

// ValidateStationSecurity checks and defaults only the security policy,
// mode and user of st, for tools that reach a PLC without a full station
// (keiline plc browse). Problems are reported like Validate's.
func (c *Config) ValidateStationSecurity(st *Station) error {
	var probs []Problem
	add := func(path, format string, a ...any) {
		p := Problem{Station: st.ID, Field: strings.TrimPrefix(path, "station."), Message: fmt.Sprintf(format, a...)}
		probs = append(probs, p)
	}
	c.validateSecurity(st, func(f string) string { return "station." + f }, add)
	if len(probs) > 0 {
		return &ConfigError{Path: c.path, Problems: probs}
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// canonical returns the allowed value that v names, ignoring case.
func canonical(allowed []string, v string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a, true
		}
	}
	return "", false
}

// ResolvePasswords reads the password of every station with a username
// user: from the environment variable its password_env names (looked up
// with lookupEnv, so only cmd/ touches the environment) or the first line
// of its password_file. It reports every missing or unreadable password at
// once in a *ConfigError; a password never appears in an error or a log.
func (c *Config) ResolvePasswords(lookupEnv func(string) (string, bool)) error {
	var probs []Problem
	for i := range c.Stations {
		u := &c.Stations[i].User
		if u.Type != UserUsername {
			continue
		}
		switch {
		case u.PasswordEnv != "":
			v, ok := lookupEnv(u.PasswordEnv)
			if !ok || v == "" {
				p := c.problemAt(fmt.Sprintf("stations.%d.user.password_env", i), 0)
				p.Message = fmt.Sprintf("environment variable %s is not set", u.PasswordEnv)
				probs = append(probs, p)
				continue
			}
			u.password = &secret{v}
		case u.PasswordFile != "":
			b, err := os.ReadFile(c.Resolve(u.PasswordFile))
			if err == nil && len(bytes.TrimSpace(b)) == 0 {
				err = errors.New("the file is empty")
			}
			if err != nil {
				p := c.problemAt(fmt.Sprintf("stations.%d.user.password_file", i), 0)
				p.Message = fmt.Sprintf("cannot read the password: %v", err)
				probs = append(probs, p)
				continue
			}
			first, _, _ := strings.Cut(string(b), "\n")
			u.password = &secret{strings.TrimRight(first, "\r")}
		}
	}
	if len(probs) > 0 {
		return &ConfigError{Path: c.path, Problems: probs}
	}
	return nil
}

// Password returns the password ResolvePasswords read, and whether there
// is one. It is for the OPC UA session only: never log it.
func (u *UserIdentity) Password() (string, bool) {
	if u.password == nil {
		return "", false
	}
	return u.password.s, true
}

// PasswordSource says where the password comes from, for messages.
func (u *UserIdentity) PasswordSource() string {
	if u.PasswordEnv != "" {
		return "environment variable " + u.PasswordEnv
	}
	if u.PasswordFile != "" {
		return "password file " + u.PasswordFile
	}
	return "no source"
}

// Resolve returns path relative to the config file's directory (absolute
// paths are returned as they are).
func (c *Config) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || c.dir == "" {
		return path
	}
	return filepath.Join(c.dir, path)
}

// Path is the file the config was read from ("" when made in code).
func (c *Config) Path() string { return c.path }

// SetDir sets the directory relative paths are resolved against, for
// configs made in code. Parse sets it to the config file's directory.
func (c *Config) SetDir(dir string) { c.dir = dir }

// Tags returns every logical tag the station must map, station tags first,
// then its part, joint and test slots.
func (st *Station) Tags() []string {
	tags := append([]string(nil), StationTags...)
	for _, s := range []struct {
		prefix string
		n      int
		tags   []string
	}{{"Part", st.Parts, PartTags}, {"Joint", st.Joints, JointTags}, {"Test", st.Tests, TestTags}} {
		for i := 1; i <= s.n; i++ {
			for _, t := range s.tags {
				tags = append(tags, fmt.Sprintf("%s%d.%s", s.prefix, i, t))
			}
		}
	}
	if st.Manifest > 0 {
		tags = append(tags, ManifestLastSeq)
		for i := 1; i <= st.Manifest; i++ {
			for _, t := range ManifestTags {
				tags = append(tags, fmt.Sprintf("Manifest%d.%s", i, t))
			}
		}
	}
	return tags
}

// Station returns the station with id, or false.
func (c *Config) Station(id string) (*Station, bool) {
	for i := range c.Stations {
		if c.Stations[i].ID == id {
			return &c.Stations[i], true
		}
	}
	return nil, false
}

// Marshal writes the config as YAML.
func (c *Config) Marshal() ([]byte, error) {
	if c.Version == 0 {
		c.Version = ConfigVersion
	}
	return yaml.Marshal(c)
}

func token(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}
