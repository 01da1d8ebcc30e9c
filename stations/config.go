package stations

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
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
)

// Station tags every station must map (see docs/plc-tags.md).
var StationTags = []string{
	"Heartbeat", "State", "FaultCode", "FaultText", "Andon", "StateCounter",
	"VinPresent", "CycleCounter", "DataReady", "AckCounter",
	"Result.Vin", "Result.Model", "Result.Variant", "Result.Colour",
	"Result.Status", "Result.StartTime", "Result.EndTime",
}

// Slot tag suffixes, per slot kind.
var (
	PartTags  = []string{"PartNumber", "Serial", "Lot", "Supplier"}
	JointTags = []string{"Name", "Tool", "TorqueNm", "AngleDeg", "OK"}
	TestTags  = []string{"Name", "Unit", "Value", "Low", "High", "OK"}
)

// LineConfig maps a line's stations to their PLCs. It is read from YAML
// (line.yaml); `keiline simulate --emit-config` writes one for the simulator.
type LineConfig struct {
	// Version of the config format. Must be 1.
	Version int `yaml:"version"`
	// Plant code, e.g. US1. Required.
	Plant string `yaml:"plant"`
	// Line code, e.g. L1. Required.
	Line string `yaml:"line"`
	// PollInterval is how often each station's tags are read. Defaults to 100 ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Stations in line order.
	Stations []Station `yaml:"stations"`

	path string // file the config came from, for messages
}

// Station is one station PLC.
type Station struct {
	// ID is the station id, e.g. W01. Required, unique.
	ID string `yaml:"id"`
	// Name is the station's name for people.
	Name string `yaml:"name"`
	// Zone is body, paint, trim, chassis, final, quality, rework or ship.
	Zone string `yaml:"zone"`
	// Endpoint is the PLC's OPC UA endpoint, opc.tcp://host:port[/path].
	Endpoint string `yaml:"endpoint"`
	// Optional stations (an off-line rework bay) are visited only by some cars.
	Optional bool `yaml:"optional"`
	// Parts, Joints and Tests are the result block's slot counts.
	Parts  int `yaml:"parts"`
	Joints int `yaml:"joints"`
	Tests  int `yaml:"tests"`
	// MaxNodesPerRead caps the nodes in one Read. Defaults to the server's
	// own limit, or 100 when the server does not say.
	MaxNodesPerRead int `yaml:"max_nodes_per_read"`
	// Nodes maps each logical tag (docs/plc-tags.md) to the PLC's node id.
	Nodes map[string]string `yaml:"nodes"`

	line int // line in the config file
}

// ConfigError lists every problem found in a line config.
type ConfigError struct {
	Path     string
	Problems []string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("line config %s: %d problem(s):\n  %s", e.Path, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// LoadConfig reads and validates the line config at path. A *ConfigError
// lists every problem with its line.
func LoadConfig(path string) (*LineConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("line config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses and validates a line config; path names it in errors.
func ParseConfig(path string, b []byte) (*LineConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &ConfigError{Path: path, Problems: []string{err.Error()}}
	}
	var cfg LineConfig
	if err := root.Decode(&cfg); err != nil {
		return nil, &ConfigError{Path: path, Problems: []string{err.Error()}}
	}
	cfg.path = path
	// Remember each station's line for messages.
	if len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode {
		m := root.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "stations" && m.Content[i+1].Kind == yaml.SequenceNode {
				for j, st := range m.Content[i+1].Content {
					if j < len(cfg.Stations) {
						cfg.Stations[j].line = st.Line
					}
				}
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks the config and fills defaults. It reports every problem
// at once in a *ConfigError, naming the field, the station and its line.
func (c *LineConfig) Validate() error {
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	if c.Version != ConfigVersion {
		add("version: %d not supported (want %d)", c.Version, ConfigVersion)
	}
	if !token(c.Plant) {
		add("plant: %q must be a non-empty word without dots or spaces", c.Plant)
	}
	if !token(c.Line) {
		add("line: %q must be a non-empty word without dots or spaces", c.Line)
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	} else if c.PollInterval < PollIntervalMin {
		add("poll_interval: %s is below the minimum %s", c.PollInterval, PollIntervalMin)
	}
	if len(c.Stations) == 0 {
		add("stations: none configured")
	}
	seen := map[string]bool{}
	for i := range c.Stations {
		st := &c.Stations[i]
		where := fmt.Sprintf("stations[%d]", i)
		if st.ID != "" {
			where = fmt.Sprintf("station %s", st.ID)
		}
		if st.line > 0 {
			where += fmt.Sprintf(" (line %d)", st.line)
		}
		if !token(st.ID) {
			add("%s: id %q must be a non-empty word without dots or spaces", where, st.ID)
		} else if seen[st.ID] {
			add("%s: id %q is used twice", where, st.ID)
		}
		seen[st.ID] = true
		if !strings.HasPrefix(st.Endpoint, "opc.tcp://") {
			add("%s: endpoint %q must start with opc.tcp://", where, st.Endpoint)
		}
		for name, n := range map[string]int{"parts": st.Parts, "joints": st.Joints, "tests": st.Tests} {
			if n < 0 || n > SlotsMax {
				add("%s: %s %d outside 0..%d", where, name, n, SlotsMax)
			}
		}
		if st.MaxNodesPerRead < 0 {
			add("%s: max_nodes_per_read %d must be 0 (ask the server) or more", where, st.MaxNodesPerRead)
		}
		for _, tag := range st.Tags() {
			id, ok := st.Nodes[tag]
			if !ok {
				add("%s: nodes: tag %s is not mapped", where, tag)
				continue
			}
			if _, err := ua.ParseNodeID(id); err != nil {
				add("%s: nodes: %s: node id %q: %v", where, tag, id, err)
			}
		}
		known := map[string]bool{}
		for _, tag := range st.Tags() {
			known[tag] = true
		}
		for tag := range st.Nodes {
			if !known[tag] {
				add("%s: nodes: tag %s is not a station tag (see docs/plc-tags.md) or its slot is beyond the slot count", where, tag)
			}
		}
	}
	if len(probs) > 0 {
		return &ConfigError{Path: c.path, Problems: probs}
	}
	return nil
}

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
	return tags
}

// Station returns the station with id, or false.
func (c *LineConfig) Station(id string) (*Station, bool) {
	for i := range c.Stations {
		if c.Stations[i].ID == id {
			return &c.Stations[i], true
		}
	}
	return nil, false
}

// Marshal writes the config as YAML.
func (c *LineConfig) Marshal() ([]byte, error) {
	if c.Version == 0 {
		c.Version = ConfigVersion
	}
	return yaml.Marshal(c)
}

func token(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}
