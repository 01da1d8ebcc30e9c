package line

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func validStation(id string) Station {
	st := Station{ID: id, Endpoint: "opc.tcp://127.0.0.1:4840", Parts: 1, Joints: 1, Tests: 1, Nodes: map[string]Tag{}}
	for _, tag := range st.Tags() {
		st.Nodes[tag] = NodeTag("ns=1;s=" + id + "." + tag)
	}
	return st
}

func TestConfigRoundTrip(t *testing.T) {
	cfg := &Config{Version: 1, Plant: "US1", Line: "L1", Stations: []Station{validStation("W01"), validStation("W02")}}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("line.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.PollInterval != PollIntervalDefault {
		t.Errorf("poll interval = %s, want the default %s", got.PollInterval, PollIntervalDefault)
	}
	if len(got.Stations) != 2 || got.Stations[1].Nodes["Joint1.TorqueNm"].Node != "ns=1;s=W02.Joint1.TorqueNm" {
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
	_, err := Parse("line.yaml", []byte(yaml))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Parse = %v, want a *ConfigError", err)
	}
	for _, want := range []string{
		"line.yaml:6: station W01: endpoint: \"http://wrong\" must start with opc.tcp://",
		"line.yaml:9: station W01: nodes.CycleCounter: node id \"not a node id ;;\"",
		"line.yaml:7: station W01: nodes: 3 tags are not mapped: State, DataReady, AckCounter",
		"line.yaml:7: station W01: nodes: the car's identity: map Result.Vin or Result.BodyNo (or both)",
		"line.yaml:10: station W01: nodes.Bogus: not a station tag",
		"line.yaml:11: station W01: id: \"W01\" is used twice",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "line config line.yaml:") {
		t.Errorf("error does not name the file: %v", err)
	}
}

// stationYAML is a valid one-station config with extra station fields.
func stationYAML(extra string) string {
	st := validStation("W01")
	var b strings.Builder
	b.WriteString("version: 1\nplant: US1\nline: L1\nstations:\n  - id: W01\n    endpoint: opc.tcp://127.0.0.1:4840\n    parts: 1\n    joints: 1\n    tests: 1\n")
	b.WriteString(extra)
	b.WriteString("    nodes:\n")
	for _, tag := range st.Tags() {
		fmt.Fprintf(&b, "      %s: %q\n", tag, st.Nodes[tag].Node)
	}
	return b.String()
}

func TestConfigSecurityAndUser(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  []string // problems, each with its line; none means valid
		check func(t *testing.T, st *Station)
	}{
		{name: "defaults are None and anonymous", check: func(t *testing.T, st *Station) {
			if st.SecurityPolicy != PolicyNone || st.SecurityMode != ModeNone || st.User.Type != UserAnonymous {
				t.Errorf("defaults = %s/%s/%s", st.SecurityPolicy, st.SecurityMode, st.User.Type)
			}
		}},
		{name: "a policy defaults to SignAndEncrypt", extra: "    security_policy: aes256_sha256_rsapss\n", check: func(t *testing.T, st *Station) {
			if st.SecurityPolicy != PolicyAes256Sha256RsaPss || st.SecurityMode != ModeSignAndEncrypt {
				t.Errorf("got %s/%s", st.SecurityPolicy, st.SecurityMode)
			}
		}},
		{name: "username with a password from the environment", extra: "    security_policy: Basic256Sha256\n    security_mode: Sign\n    user:\n      type: username\n      name: mes\n      password_env: PLC_W01_PASSWORD\n"},
		{name: "unknown policy names the allowed ones", extra: "    security_policy: Basic128Rsa15\n",
			want: []string{`line.yaml:10: station W01: security_policy: "Basic128Rsa15" is not allowed; allowed: None, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss`}},
		{name: "unknown mode", extra: "    security_mode: Encrypt\n",
			want: []string{`line.yaml:10: station W01: security_mode: "Encrypt" is not allowed; allowed: None, Sign, SignAndEncrypt`}},
		{name: "mode None with a policy", extra: "    security_policy: Basic256Sha256\n    security_mode: None\n",
			want: []string{"line.yaml:11: station W01: security_mode: None does not go with security_policy Basic256Sha256; allowed: Sign, SignAndEncrypt"}},
		{name: "Sign without a policy", extra: "    security_mode: Sign\n",
			want: []string{"line.yaml:10: station W01: security_mode: Sign needs a security_policy other than None"}},
		{name: "a plain password is refused", extra: "    user:\n      type: username\n      name: mes\n      password: hunter2\n",
			want: []string{
				"line.yaml:13: station W01: user.password: a password is never written in the config: set password_env",
				"line.yaml:10: station W01: user: user type username needs password_env",
			}},
		{name: "username needs a name", extra: "    user:\n      type: username\n      password_file: w01.pass\n",
			want: []string{"line.yaml:10: station W01: user.name: required for user type username"}},
		{name: "both password sources", extra: "    user:\n      type: username\n      name: a\n      password_file: f\n      password_env: E\n",
			want: []string{"station W01: user: password_env and password_file both set; allowed: one of them"}},
		{name: "bad environment variable name", extra: "    user:\n      type: username\n      name: a\n      password_env: 1-X\n",
			want: []string{`line.yaml:13: station W01: user.password_env: "1-X" is not an environment variable name`}},
		{name: "unknown user type", extra: "    user:\n      type: kerberos\n",
			want: []string{`line.yaml:11: station W01: user.type: "kerberos" is not allowed; allowed: anonymous, username, certificate`}},
		{name: "fields of another user type", extra: "    user:\n      name: mes\n",
			want: []string{"line.yaml:11: station W01: user.name: not used with user type anonymous"}},
		{name: "certificate user with half a key pair", extra: "    user:\n      type: certificate\n      certificate: u.der\n",
			want: []string{"station W01: user: certificate and private_key go together"}},
		{name: "unknown field names the allowed ones", extra: "    securty_policy: Basic256Sha256\n",
			want: []string{"line.yaml:10: station W01: securty_policy: unknown field; allowed: id, name, zone, endpoint, security_policy, security_mode, user, optional,"}},
		{name: "unknown zone", extra: "    zone: qualty\n",
			want: []string{`line.yaml:10: station W01: zone: "qualty" is not allowed; allowed: body, paint, trim, chassis, final, quality, rework, ship (or none)`}},
		{name: "wrong type names the field", extra: "    max_nodes_per_read: many\n",
			want: []string{"line.yaml:10: station W01: max_nodes_per_read: cannot unmarshal !!str `many` into int"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("line.yaml", []byte(stationYAML(tt.extra)))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil {
					tt.check(t, &cfg.Stations[0])
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a *ConfigError", err)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password:\n%v", err)
			}
		})
	}
}

func TestConfigUnknownLineFieldAndPKI(t *testing.T) {
	y := strings.Replace(stationYAML(""), "line: L1\n", "line: L1\npoll_intervall: 1s\npki:\n  dir: certs\n  certificate: own.der\n", 1)
	_, err := Parse("line.yaml", []byte(y))
	for _, want := range []string{
		"line.yaml:4: poll_intervall: unknown field; allowed: version, plant, line, poll_interval, identity, node_pattern, pki, stations",
		"line.yaml:5: pki: certificate and private_key go together",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestResolvePasswords(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w02.pass"), []byte("s3cret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Version: 1, Plant: "US1", Line: "L1", Stations: []Station{validStation("W01"), validStation("W02"), validStation("W03"), validStation("W04")}}
	cfg.SetDir(dir)
	cfg.Stations[0].User = UserIdentity{Type: UserUsername, Name: "mes", PasswordEnv: "W01_PW"}
	cfg.Stations[1].User = UserIdentity{Type: UserUsername, Name: "mes", PasswordFile: "w02.pass"}
	cfg.Stations[2].User = UserIdentity{Type: UserUsername, Name: "mes", PasswordEnv: "UNSET_PW"}
	cfg.Stations[3].User = UserIdentity{Type: UserUsername, Name: "mes", PasswordFile: "missing.pass"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"W01_PW": "s3cret-env"}
	err := cfg.ResolvePasswords(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	for _, want := range []string{
		"station W03: user.password_env: environment variable UNSET_PW is not set",
		"station W04: user.password_file: cannot read the password:",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if got := cfg.Stations[0].User.password; got == nil || got.s != "s3cret-env" {
		t.Errorf("W01 password not resolved from the environment")
	}
	if got := cfg.Stations[1].User.password; got == nil || got.s != "s3cret-file" {
		t.Errorf("W02 password not resolved from its file")
	}
	// A resolved password does not show when the config is printed or
	// written out again.
	b, _ := cfg.Marshal()
	for _, s := range []string{fmt.Sprintf("%v", cfg.Stations[0]), fmt.Sprintf("%+v", cfg.Stations[1]), fmt.Sprintf("%#v", cfg.Stations[0].User), string(b)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("a password shows: %s", s)
		}
	}
}

func TestConfigRejectsBadYAML(t *testing.T) {
	_, err := Parse("broken.yaml", []byte("version: [1\nplant"))
	if err == nil || !strings.Contains(err.Error(), "broken.yaml") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("Parse(broken) = %v, want an error naming the file and line", err)
	}
}

func FuzzParse(f *testing.F) {
	cfg := &Config{Version: 1, Plant: "US1", Line: "L1", Stations: []Station{validStation("W01")}}
	b, _ := cfg.Marshal()
	f.Add(b)
	f.Add([]byte("version: 1\nstations: [{id: W01}]\n"))
	f.Add([]byte(stationYAML("    security_policy: Aes256_Sha256_RsaPss\n    user:\n      type: username\n      name: mes\n      password_env: PW\n")))
	f.Add([]byte(stationYAML("    zone: body\n    user:\n      type: certificate\n      certificate: u.der\n      private_key: u.pem\n")))
	f.Add([]byte(controllerYAML("      - {id: W01-NR1, address: \"10.1.4.21:4545\", joints: [{name: \"lug_{n}\", count: 4, class: A}], psets: [{model: KT, pset: 2}], pset_default: 1, batch_sizes: {2: 3}}\n")))
	if ex, err := os.ReadFile("../docs/examples/torque-wheels.yaml"); err == nil {
		f.Add(ex)
	}
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Parse("fuzz.yaml", b)
		if err != nil {
			return
		}
		// Whatever is accepted is fully usable by an agent.
		if got.Version != ConfigVersion || got.PollInterval < PollIntervalMin || len(got.Stations) == 0 {
			t.Fatalf("accepted an unusable config: %+v", got)
		}
		for _, st := range got.Stations {
			if !slices.Contains(SecurityPolicies, st.SecurityPolicy) || !slices.Contains(SecurityModes, st.SecurityMode) ||
				(st.SecurityPolicy == PolicyNone) != (st.SecurityMode == ModeNone) || !slices.Contains(UserTypes, st.User.Type) {
				t.Fatalf("accepted inconsistent security: %s/%s, user %q", st.SecurityPolicy, st.SecurityMode, st.User.Type)
			}
			if st.User.Type == UserUsername && (st.User.Name == "" || (st.User.PasswordEnv == "") == (st.User.PasswordFile == "")) {
				t.Fatalf("accepted a username user without a name or one password source: %+v", st.User)
			}
			for _, tag := range st.Tags() {
				tg, ok := st.Nodes[tag]
				if !ok {
					t.Fatalf("accepted config, but station %s has no entry for tag %s", st.ID, tag)
				}
				if _, _, read := tg.ReadID(); tg.IsRead() && !read {
					t.Fatalf("accepted config, but station %s tag %s has node id %q", st.ID, tag, tg.Node)
				}
				if _, optional := OptionalTag(tag); tg.Absent && !optional {
					t.Fatalf("accepted config, but required tag %s of station %s is absent", tag, st.ID)
				}
			}
			// A controller accepted has joints, a parameter set and a batch
			// within its joints for every pset it can select.
			for _, ct := range st.Controllers {
				if len(ct.JointList()) == 0 || ct.Revision.Min < 1 || ct.Revision.Min > ct.Revision.Max || ct.KeepAlive < KeepAliveMin {
					t.Fatalf("accepted an unusable controller: %+v", ct)
				}
				for _, r := range append(ct.Psets, PsetRule{Pset: ct.PsetDefault}) {
					if n := ct.BatchSize(r.Pset); r.Pset > 0 && (n < 1 || n > len(ct.JointList())) {
						t.Fatalf("controller %s: pset %d has a batch of %d for %d joints", ct.ID, r.Pset, n, len(ct.JointList()))
					}
				}
			}
		}
	})
}

// TestExampleConfigs: the line configs in docs/examples are valid, and the
// S7 example's tags are what its comments say.
func TestExampleConfigs(t *testing.T) {
	paths, err := filepath.Glob("../docs/examples/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, p := range paths {
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	lc, err := Load("../docs/examples/s7-wheel-nuts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nr, _ := lc.Station("NR")
	if !nr.Nodes["Result.Vin"].Absent || nr.Node("Result.BodyNo") != `ns=3;s="DB200"."BodyNo"` {
		t.Errorf("NR identity tags: %+v %+v", nr.Nodes["Result.Vin"], nr.Nodes["Result.BodyNo"])
	}
	j3 := nr.Nodes["Joint3.AngleDeg"]
	if j3.Node != `ns=3;s="DB201"."Angle"` || j3.Index == nil || *j3.Index != 2 || j3.Scale != 0.1 || j3.Line() == 0 {
		t.Errorf("NR Joint3.AngleDeg = %+v, want element 2 of the Angle array in tenths, with its line", j3)
	}
	if lc.Identity != "vin" {
		t.Errorf("identity %q", lc.Identity)
	}
}

func TestTagForms(t *testing.T) {
	base := stationYAML("")
	tests := []struct {
		name, tag, value, want string // want "" = valid
	}{
		{name: "node id", tag: "Heartbeat", value: `"ns=3;s=\"DB1\".\"Life\""`},
		{name: "array element", tag: "Joint1.AngleDeg", value: `{node: "ns=3;s=A", index: 2, scale: 0.1}`},
		{name: "code map", tag: "State", value: `{node: "ns=3;s=S", map: {0: starved, 1: running}}`},
		{name: "map to a state that is none", tag: "State", value: `{node: "ns=3;s=S", map: {0: idle}}`, want: `map 0: "idle" is not a station state`},
		{name: "const", tag: "Joint1.Name", value: `{const: wheel nut 1}`},
		{name: "const of the wrong kind", tag: "Test1.Low", value: `{const: low}`, want: `const: "low" is not a number`},
		{name: "absent optional", tag: "Andon", value: `{absent: true}`},
		{name: "absent required", tag: "AckCounter", value: `{absent: true}`, want: "cannot be absent"},
		{name: "two sources", tag: "Andon", value: `{node: "ns=1;s=A", const: "true"}`, want: "exactly one of node, const and absent (2 given)"},
		{name: "scale on text", tag: "Result.Model", value: `{node: "ns=1;s=M", scale: 2}`, want: "scale and offset are for number tags"},
		{name: "negative index", tag: "Joint1.TorqueNm", value: `{node: "ns=1;s=T", index: -1}`, want: "index -1"},
		{name: "index not a number", tag: "Joint1.TorqueNm", value: `{node: "ns=1;s=T", index: x}`, want: "a field has the wrong type"},
		{name: "default without a map", tag: "FaultText", value: `{node: "ns=1;s=F", default: "?"}`, want: "default is the value of a code the map lacks"},
		{name: "a list", tag: "FaultText", value: `[a, b]`, want: "not a list"},
		{name: "handshake as const", tag: "DataReady", value: `{const: "true"}`, want: "must be PLC nodes"},
		{name: "ack with a map", tag: "AckCounter", value: `{node: "ns=1;s=A", map: {1: 2}}`, want: "no map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(base, "      "+tt.tag+": ", "      "+tt.tag+": "+tt.value+" #", 1)
			if y == base {
				t.Fatalf("tag %s not in the base config", tt.tag)
			}
			_, err := Parse("line.yaml", []byte(y))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Parse = %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Parse = %v, want an error saying %q", err, tt.want)
			case tt.want != "" && !regexp.MustCompile(`line\.yaml:\d+: station W01: nodes\.`+regexp.QuoteMeta(tt.tag)+`: `).MatchString(err.Error()):
				t.Fatalf("error %v does not name the file line, station and tag", err)
			}
		})
	}
}

// TestDefaultLine: the embedded default line parses, maps every tag of
// every station through its node pattern, and reads the planning half.
func TestDefaultLine(t *testing.T) {
	c := Default()
	if len(c.Stations) != 23 || c.Products == nil || c.Sequencing == nil || c.Broadcast == nil || c.Identity != "vin" {
		t.Fatalf("default line: %d stations, products %v, sequencing %v, broadcast %v, identity %q", len(c.Stations), c.Products != nil, c.Sequencing != nil, c.Broadcast != nil, c.Identity)
	}
	c04, _ := c.Station("C04")
	if c04.Joints != 16 || c04.Node("Joint16.TorqueNm") != "ns=1;s=C04.Joint16.TorqueNm" || !c04.Nodes["Result.BodyNo"].Absent {
		t.Errorf("C04: %d joints, Joint16.TorqueNm %q, BodyNo %+v", c04.Joints, c04.Node("Joint16.TorqueNm"), c04.Nodes["Result.BodyNo"])
	}
	w01, _ := c.Station("W01")
	if w01.Manifest != 8 || w01.Node("Manifest8.Seq") != "ns=1;s=W01.Manifest8.Seq" {
		t.Errorf("W01: manifest %d, Manifest8.Seq %q", w01.Manifest, w01.Node("Manifest8.Seq"))
	}
	if err := c.SetEndpoints(map[string]string{"W01": "opc.tcp://x:1"}); err == nil || !strings.Contains(err.Error(), "station W02 has no endpoint") {
		t.Errorf("SetEndpoints with one endpoint = %v", err)
	}
}
