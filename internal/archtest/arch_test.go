package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/keiline/keiline/"

// rule forbids the packages under from (and from itself) to depend, even
// indirectly, on any package matching a forbidden prefix.
type rule struct {
	why      string
	from     string
	forbid   []string
	allowOwn bool // from's own subpackages may depend on each other
}

var rules = []rule{
	{why: "the plant is a plant: it knows nothing of the MES, and is reached only over OPC UA and Open Protocol",
		from: "simulator", forbid: []string{"stations", "pipeline", "schema", "line", "dashboard", "traceweb", "web", "chaos", "cmd", "github.com/jackc/", "github.com/nats-io/"}},
	{why: "agents sit next to the PLCs: they never touch the database nor the simulator",
		from: "stations", forbid: []string{"schema", "simulator", "pipeline/broker", "dashboard", "traceweb", "web", "github.com/jackc/", "github.com/pressly/goose"}},
	{why: "the record knows nothing of NATS, OPC UA, the agents or the simulator",
		from: "schema", forbid: []string{"stations", "simulator", "pipeline/streams", "pipeline/broker", "github.com/nats-io/", "github.com/gopcua/"}, allowOwn: true},
	{why: "the event contract is a leaf: no transport, no database",
		from: "pipeline/event", forbid: []string{"schema", "stations", "simulator", "line", "github.com/nats-io/", "github.com/jackc/", "github.com/gopcua/"}},
	{why: "the line definition is a leaf every MES part imports",
		from: "line", forbid: []string{"schema", "stations", "simulator", "pipeline/streams", "pipeline/broker", "dashboard", "github.com/nats-io/", "github.com/jackc/"}},
	{why: "the station terminal reaches the record only through the event stream (a Publisher it is given): it talks to no PLC and applies no rule itself",
		from: "terminal", forbid: []string{"stations", "simulator", "pipeline/rules", "pipeline/broker", "pipeline/streams", "github.com/nats-io/"}},
	{why: "the statistics are pure computation",
		from: "spc", forbid: []string{"schema", "stations", "simulator", "pipeline", "line", "github.com/nats-io/", "github.com/jackc/"}},
}

// deps lists every non-test package of the module with its dependencies:
// the module's packages it imports, directly or not, and the outside
// packages any of those import. It reads the sources itself (not go
// list), so the test's cached result goes stale when a file changes.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	direct := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := module + filepath.ToSlash(rel)
		for _, im := range f.Imports {
			direct[pkg] = append(direct[pkg], strings.Trim(im.Path.Value, `"`))
		}
		if _, ok := direct[pkg]; !ok {
			direct[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string][]string{}
	for pkg := range direct {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, d := range direct[p] {
				if seen[d] {
					continue
				}
				seen[d] = true
				if strings.HasPrefix(d, module) {
					walk(d)
				}
			}
		}
		walk(pkg)
		for d := range seen {
			all[pkg] = append(all[pkg], d)
		}
	}
	return all
}

func under(pkg, dir string) bool {
	return pkg == module+dir || strings.HasPrefix(pkg, module+dir+"/")
}

func forbidden(dep, prefix string) bool {
	if strings.Contains(prefix, ".") { // a module path
		return strings.HasPrefix(dep, prefix)
	}
	return under(dep, prefix)
}

// TestImports: each part of keiline depends only on what its place in the
// data path allows (docs/architecture.md), and nothing imports cmd/.
func TestImports(t *testing.T) {
	all := deps(t)
	if len(all) < 10 {
		t.Fatalf("go list found %d packages: is the test run inside the module?", len(all))
	}
	checked := 0
	for pkg, ds := range all {
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			checked++
			for _, d := range ds {
				for _, f := range r.forbid {
					if forbidden(d, f) && !(r.allowOwn && under(d, r.from)) {
						t.Errorf("%s depends on %s: %s", strings.TrimPrefix(pkg, module), strings.TrimPrefix(d, module), r.why)
					}
				}
			}
		}
		for _, d := range ds {
			if under(d, "cmd") && !under(pkg, "cmd") {
				t.Errorf("%s imports %s: cmd/ only wires packages together, nothing imports it", pkg, d)
			}
		}
	}
	if checked < 6 {
		t.Fatalf("the rules matched only %d packages", checked)
	}
}

// TestImportRuleCatchesAViolation: the check would see a forbidden
// dependency (stations importing the record, as it once did).
func TestImportRuleCatchesAViolation(t *testing.T) {
	r := rules[1]
	if !forbidden(module+"schema", r.forbid[0]) || !forbidden("github.com/jackc/pgx/v5", "github.com/jackc/") || forbidden(module+"schemas", "schema") {
		t.Fatal("the prefix match is wrong")
	}
}
