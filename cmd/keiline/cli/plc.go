package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/stations"
)

const plcUsage = `keiline plc — the PLC integrator's tools

Usage: keiline plc <command> [flags]

  browse ENDPOINT    walk a PLC's address space: nodes, data types, access levels
                     (--emit-station ID writes a station's tag map skeleton)
  check              check every configured node of every PLC: exists, data type, access
  watch              live tag values of one station, with its handshake state decoded
  cert               make the agent's application instance certificate; list and trust PLC certificates

Run 'keiline plc <command> -h' for a command's flags.
`

// runPLC runs the plc tools.
func runPLC(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, plcUsage)
		return errors.New("plc: no command given")
	}
	switch args[0] {
	case "browse":
		return plcBrowse(ctx, args[1:], os.Stdout)
	case "check":
		return plcCheck(ctx, args[1:], os.Stdout)
	case "watch":
		return plcWatch(ctx, args[1:], os.Stdout)
	case "cert":
		return plcCert(args[1:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, plcUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, plcUsage)
	return fmt.Errorf("plc: unknown command %q", args[0])
}

// loadLine loads a line config and reads its passwords from the
// environment or the files it names.
func loadLine(path string) (*line.Config, error) {
	lc, err := line.Load(path)
	if err != nil {
		return nil, err
	}
	if err := lc.ResolvePasswords(os.LookupEnv); err != nil {
		return nil, err
	}
	return lc, nil
}

// needsCertificate reports whether station st uses the agent's
// certificate.
func needsCertificate(st *line.Station) bool {
	return st.SecurityPolicy != line.PolicyNone || st.User.Type != line.UserAnonymous
}

// ensureCertificate makes the agent's certificate when a station needs it
// and it does not exist yet, and says so on w.
func ensureCertificate(lc *line.Config, sts []*line.Station, w io.Writer) error {
	for _, st := range sts {
		if !needsCertificate(st) {
			continue
		}
		pki := stations.PKIOf(lc)
		made, err := pki.EnsureCertificate()
		if err != nil {
			return err
		}
		if made {
			info, err := pki.Describe()
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "made the agent's application instance certificate %s (URI %s, thumbprint %s); trust it on the PLCs\n", info.File, info.URI, info.Thumbprint)
		}
		return nil
	}
	return nil
}

// plcBrowse walks a PLC's address space.
func plcBrowse(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("plc browse")
	depth := fs.Int("depth", stations.BrowseDepthDefault, "levels below the root to walk")
	maxNodes := fs.Int("max-nodes", stations.BrowseNodesDefault, "most nodes to list")
	timeout := fs.Duration("timeout", 30*time.Second, "time limit of the walk")
	root := fs.String("root", "", "node id to start from (default: the Objects folder)")
	all := fs.Bool("all-namespaces", false, "also walk below the server's own objects (namespace 0)")
	emit := fs.String("emit-station", "", "write a line config item for station `ID`, matching node names to the handshake's tags")
	out := fs.String("out", "", "write --emit-station's output to this file instead of stdout")
	config := fs.String("config", "", "line config to take the PKI and, with --station, the endpoint and security from")
	station := fs.String("station", "", "station of --config whose endpoint and security to use")
	policy := fs.String("policy", line.PolicyNone, "security policy: "+strings.Join(line.SecurityPolicies, ", "))
	mode := fs.String("mode", "", "security mode: None, Sign, SignAndEncrypt (default: SignAndEncrypt with a policy)")
	user := fs.String("user", "", "user name (default: anonymous)")
	passEnv := fs.String("password-env", "", "environment variable holding the user's password")
	passFile := fs.String("password-file", "", "file holding the user's password")
	pkiDir := fs.String("pki", line.PKIDirDefault, "PKI directory (without --config)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var conn stations.Connection
	switch {
	case *config != "" && *station != "":
		lc, err := loadLine(*config)
		if err != nil {
			return err
		}
		st, ok := lc.Station(*station)
		if !ok {
			return fmt.Errorf("plc browse: station %q is not in %s", *station, *config)
		}
		if err := ensureCertificate(lc, []*line.Station{st}, os.Stderr); err != nil {
			return err
		}
		conn = stations.ConnectionOf(lc, st)
		conn.MaxNodesPerRead = 0
		if len(pos) > 0 {
			conn.Endpoint = pos[0]
		}
	default:
		if len(pos) != 1 {
			return errors.New("plc browse: give one ENDPOINT (opc.tcp://host:port), or --config and --station")
		}
		st := line.Station{ID: "browse", Endpoint: pos[0], SecurityPolicy: *policy, SecurityMode: *mode}
		if *user != "" {
			st.User = line.UserIdentity{Type: line.UserUsername, Name: *user, PasswordEnv: *passEnv, PasswordFile: *passFile}
		}
		lc := &line.Config{PKI: line.PKIConfig{Dir: *pkiDir}}
		if *config != "" {
			if lc, err = line.Load(*config); err != nil {
				return err
			}
		}
		lc.Stations = []line.Station{st}
		if err := lc.ValidateStationSecurity(&lc.Stations[0]); err != nil {
			return err
		}
		if err := lc.ResolvePasswords(os.LookupEnv); err != nil {
			return err
		}
		if err := ensureCertificate(lc, []*line.Station{&lc.Stations[0]}, os.Stderr); err != nil {
			return err
		}
		conn = stations.ConnectionOf(lc, &lc.Stations[0])
		conn.Station = ""
	}
	opts := stations.BrowseOptions{MaxDepth: *depth, MaxNodes: *maxNodes, AllNamespaces: *all}
	if *root != "" {
		if opts.Root, err = ua.ParseNodeID(*root); err != nil {
			return fmt.Errorf("plc browse: --root %q: %w", *root, err)
		}
	}
	bctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	plc, err := stations.DialPLC(bctx, conn)
	if err != nil {
		return err
	}
	defer plc.Close(ctx)
	res, err := stations.Browse(bctx, plc, opts)
	if err != nil {
		return err
	}
	if *emit == "" {
		return stations.PrintBrowse(stdout, res)
	}
	st, matches := stations.MatchStation(res, *emit, conn.Endpoint)
	var buf bytes.Buffer
	if err := stations.EmitStation(&buf, st, matches); err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plc browse: %w", err)
	}
	found, absent := 0, 0
	for _, m := range matches {
		switch {
		case m.Node != nil:
			found++
		case m.Spec.Absent:
			absent++
		}
	}
	fmt.Fprintf(stdout, "station %s: %d of %d tags matched, %d absent, %d to write; written to %s\n", *emit, found, len(matches), absent, len(matches)-found-absent, *out)
	return nil
}

// plcCheck checks the configured PLCs and exits non-zero on any problem.
func plcCheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("plc check")
	config := fs.String("config", "line.yaml", "line config")
	only := fs.String("station", "", "comma-separated station ids (default: every station)")
	timeout := fs.Duration("timeout", 2*time.Minute, "time limit of the whole check")
	verbose := fs.Bool("v", false, "also list each station's absent tags and what keiline does instead")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	lc, err := loadLine(*config)
	if err != nil {
		return err
	}
	var ids []string
	if *only != "" {
		ids = strings.Split(*only, ",")
	}
	var sts []*line.Station
	for i := range lc.Stations {
		sts = append(sts, &lc.Stations[i])
	}
	if err := ensureCertificate(lc, sts, stdout); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	probs, err := stations.CheckLine(cctx, lc, ids)
	if err != nil {
		return err
	}
	checked, nodes := len(ids), 0
	if checked == 0 {
		checked = len(lc.Stations)
	}
	bad := map[string]bool{}
	for _, p := range probs {
		fmt.Fprintln(stdout, p)
		bad[p.Station] = true
	}
	absent := 0
	for i := range lc.Stations {
		st := &lc.Stations[i]
		if len(ids) != 0 && !contains(ids, st.ID) {
			continue
		}
		for _, tag := range st.Tags() {
			if st.Nodes[tag].IsRead() {
				nodes++
			}
		}
		for _, a := range stations.AbsentTags(st) {
			absent++
			if *verbose {
				fmt.Fprintf(stdout, "station %s: absent %s\n", st.ID, a)
			}
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("plc check: %d problem(s) in %d of %d station(s)", len(probs), len(bad), checked)
	}
	fmt.Fprintf(stdout, "plc check: %d station(s), %d nodes: all exist with a data type their tags convert from and the access the agent needs; %d tags absent (-v lists them)\n", checked, nodes, absent)
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// plcWatch shows one station's tags live.
func plcWatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("plc watch")
	config := fs.String("config", "line.yaml", "line config")
	station := fs.String("station", "", "station id (required)")
	interval := fs.Duration("interval", stations.WatchIntervalDefault, "how often to read the PLC")
	once := fs.Bool("once", false, "show one screen and exit (non-zero when the PLC cannot be read)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *station == "" {
		return errors.New("plc watch: --station is required")
	}
	lc, err := loadLine(*config)
	if err != nil {
		return err
	}
	st, ok := lc.Station(*station)
	if !ok {
		return fmt.Errorf("plc watch: station %q is not in %s", *station, *config)
	}
	if *once {
		w := stations.NewWatcher(lc, st, *interval)
		defer w.Close(ctx)
		f := w.Frame(ctx, time.Now())
		fmt.Fprint(stdout, stations.RenderWatch(f))
		if f.Err != "" {
			return fmt.Errorf("plc watch: station %s cannot be read", st.ID)
		}
		return nil
	}
	clear := isTerminal(stdout)
	return stations.Watch(ctx, lc, st, *interval, func(f stations.WatchFrame) {
		if clear {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J")
		} else {
			fmt.Fprintln(stdout, "----")
		}
		fmt.Fprint(stdout, stations.RenderWatch(f))
	})
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// plcCert makes the agent's certificate and manages the trust lists.
func plcCert(args []string, stdout io.Writer) error {
	fs := newFlags("plc cert")
	config := fs.String("config", "", "line config whose pki section to use")
	pkiDir := fs.String("pki", line.PKIDirDefault, "PKI directory (without --config)")
	uri := fs.String("uri", "", "application URI of a new certificate (default urn:<host>:keiline:agent)")
	list := fs.Bool("list", false, "list the trusted and rejected PLC certificates")
	trust := fs.String("trust", "", "trust the rejected certificate with this `thumbprint` (or file name): move it to trusted/")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	pki := stations.PKIIn(*pkiDir)
	if *config != "" {
		lc, err := line.Load(*config)
		if err != nil {
			return err
		}
		pki = stations.PKIOf(lc)
	}
	if *uri != "" {
		pki.ApplicationURI = *uri
	}
	switch {
	case *trust != "":
		to, err := pki.Trust(*trust)
		if err != nil {
			return fmt.Errorf("plc cert: %w", err)
		}
		fmt.Fprintf(stdout, "trusted: %s\n", to)
		return nil
	case *list:
		for _, d := range []struct{ name, dir string }{{"trusted", pki.TrustedDir}, {"rejected", pki.RejectedDir}} {
			certs, err := stations.ListCertificates(d.dir)
			if err != nil {
				return fmt.Errorf("plc cert: %w", err)
			}
			fmt.Fprintf(stdout, "%s (%s): %d\n", d.name, d.dir, len(certs))
			for _, c := range certs {
				fmt.Fprintf(stdout, "  %s  %s  valid until %s  %s\n", c.Thumbprint, c.Subject, c.NotAfter.Format(time.DateOnly), c.URI)
			}
		}
		return nil
	}
	made, err := pki.EnsureCertificate()
	if err != nil {
		return fmt.Errorf("plc cert: %w", err)
	}
	info, err := pki.Describe()
	if err != nil {
		return fmt.Errorf("plc cert: %w", err)
	}
	verb := "exists"
	if made {
		verb = "made"
	}
	fmt.Fprintf(stdout, "application instance certificate %s: %s\n  URI %s\n  thumbprint %s\n  valid until %s\n  key %s\ntrust it on each secure PLC; trust each PLC's certificate by moving it from %s to %s\n",
		verb, info.File, info.URI, info.Thumbprint, info.NotAfter.Format(time.DateOnly), pki.PrivateKey, pki.RejectedDir, pki.TrustedDir)
	return nil
}
