package line

import (
	_ "embed"
	"fmt"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultPath names the default line in messages.
const DefaultPath = "line/default.yaml"

// Default returns the default line (../shared/LINE.md, line/default.yaml):
// the stations, slots and tag map of keiline's simulated plant, its
// products, sequencing rules and JIS suppliers. Its endpoints are
// placeholders: SetEndpoints puts in the plant's. Each call returns a new
// config.
func Default() *Config {
	c, err := Parse(DefaultPath, defaultYAML)
	if err != nil {
		panic(fmt.Sprintf("the embedded default line is invalid: %v", err)) // TestDefaultLine keeps it valid
	}
	return c
}

// DefaultYAML is the default line's file, for tools that write it out.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// SetEndpoints sets each station's endpoint from endpoints (by station id)
// and reports a station without one.
func (c *Config) SetEndpoints(endpoints map[string]string) error {
	for i := range c.Stations {
		st := &c.Stations[i]
		ep, ok := endpoints[st.ID]
		if !ok {
			return fmt.Errorf("line %s: station %s has no endpoint", c.Line, st.ID)
		}
		st.Endpoint = ep
	}
	return nil
}
