package stations

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func validStation(id string) Station {
	st := Station{ID: id, Endpoint: "opc.tcp://127.0.0.1:4840", Parts: 1, Joints: 1, Tests: 1, Nodes: map[string]string{}}
	for _, tag := range st.Tags() {
		st.Nodes[tag] = "ns=1;s=" + id + "." + tag
	}
	return st
}

func TestConfigRoundTrip(t *testing.T) {
	cfg := &LineConfig{Version: 1, Plant: "US1", Line: "L1", Stations: []Station{validStation("W01"), validStation("W02")}}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig("line.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.PollInterval != PollIntervalDefault {
		t.Errorf("poll interval = %s, want the default %s", got.PollInterval, PollIntervalDefault)
	}
	if len(got.Stations) != 2 || got.Stations[1].Nodes["Joint1.TorqueNm"] != "ns=1;s=W02.Joint1.TorqueNm" {
		t.Errorf("stations did not survive the round trip: %+v", got.Stations)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	yaml := `version: 1
plant: US1
line: L1
stations:
  - id: W01
    endpoint: http://wrong
    nodes:
      Heartbeat: "ns=1;s=W01.Heartbeat"
      CycleCounter: "not a node id ;;"
      Bogus: "ns=1;s=x"
  - id: W01
    endpoint: opc.tcp://127.0.0.1:1
`
	_, err := ParseConfig("line.yaml", []byte(yaml))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("ParseConfig = %v, want a *ConfigError", err)
	}
	for _, want := range []string{
		"station W01 (line 5): endpoint \"http://wrong\" must start with opc.tcp://",
		"station W01 (line 5): nodes: CycleCounter: node id \"not a node id ;;\"",
		"station W01 (line 5): nodes: tag DataReady is not mapped",
		"station W01 (line 5): nodes: tag Bogus is not a station tag",
		"station W01 (line 11): id \"W01\" is used twice",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "line config line.yaml:") {
		t.Errorf("error does not name the file: %v", err)
	}
}

func TestConfigRejectsBadYAML(t *testing.T) {
	_, err := ParseConfig("broken.yaml", []byte("version: [1\nplant"))
	if err == nil || !strings.Contains(err.Error(), "broken.yaml") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("ParseConfig(broken) = %v, want an error naming the file and line", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	cfg := &LineConfig{Version: 1, Plant: "US1", Line: "L1", Stations: []Station{validStation("W01")}}
	b, _ := cfg.Marshal()
	f.Add(b)
	f.Add([]byte("version: 1\nstations: [{id: W01}]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseConfig("fuzz.yaml", b)
		if err != nil {
			return
		}
		// Whatever is accepted is fully usable by an agent.
		if got.Version != ConfigVersion || got.PollInterval < PollIntervalMin || len(got.Stations) == 0 {
			t.Fatalf("accepted an unusable config: %+v", got)
		}
		for _, st := range got.Stations {
			if _, err := newPoller(AgentConfig{Line: got, Logger: slog.Default()}, &st, nil); err != nil {
				t.Fatalf("accepted config, but poller fails: %v", err)
			}
		}
	})
}
