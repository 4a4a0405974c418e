// Package sdktest is the conformance harness for ebb plugins. A plugin author
// runs it from go test against their plugin, in process over a real gRPC
// connection and as a real subprocess, exactly as the runner talks to it:
//
//	func TestConformance(t *testing.T) {
//		bin := sdktest.Build(t, "example.com/me/myplugin/cmd/myplugin")
//		sdktest.Run(t, myplugin.New(), bin, sdktest.Case{Config: json.RawMessage(`{}`)})
//	}
package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/ebbscale/ebb/sdk"
)

// Case is what the harness feeds a plugin.
type Case struct {
	// Config is the decoded config block, as the runner would send it.
	Config json.RawMessage
	Target sdk.Target
	// Policy (evaluators) is used for requests that carry none.
	Policy json.RawMessage
	// Requests (evaluators) are sample inputs; each is evaluated twice to
	// check purity, then again with the state it returned.
	Requests []sdk.EvaluateRequest
	// Decision (realizers), when set, is realized twice with the same request
	// id; the second time must change nothing.
	Decision *sdk.Decision
}

// Timeout bounds every call the harness makes.
var Timeout = 30 * time.Second

var built sync.Map // package path -> binary path, once per test process

// Build compiles a plugin's main package with the go command and returns the
// binary's path. The binary is built once per test process, into a directory
// that is removed when the process exits.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if p, ok := built.Load(pkg); ok {
		return p.(string)
	}
	dir, err := binDir()
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	// One subdirectory per package, so two main packages with the same last
	// element do not overwrite each other.
	sub, err := os.MkdirTemp(dir, "pkg-")
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	bin := filepath.Join(sub, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out.String())
	}
	built.Store(pkg, bin)
	return bin
}

var bins struct {
	once sync.Once
	dir  string
	err  error
}

// binDir is this process's directory of built binaries. Binaries outlive the
// test that built them (later tests reuse them), and go test offers a
// package no hook after its last test, so the directory is removed by a
// watcher that outlives the process instead.
func binDir() (string, error) {
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "ebb-sdktest-")
		if bins.err != nil {
			return
		}
		if bins.err = removeAtExit(bins.dir); bins.err != nil {
			os.RemoveAll(bins.dir)
		}
	})
	return bins.dir, bins.err
}

// Start runs bin (with args) as a plugin subprocess and returns it; it is
// killed when the test ends.
func Start(t testing.TB, bin string, kind sdk.Kind, args ...string) *sdk.Process {
	t.Helper()
	p, err := sdk.Launch(exec.Command(bin, args...), sdk.LaunchOptions{Kind: kind, StartTimeout: Timeout})
	if err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(p.Kill)
	return p
}

// InProcess serves impl over a real gRPC connection inside the test process
// and returns the runner's side of it.
func InProcess(t testing.TB, impl sdk.Plugin) sdk.Plugin {
	t.Helper()
	client, _ := goplugin.TestPluginGRPCConn(t, false, sdk.PluginSet(impl))
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(sdk.KindOf(impl).String())
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return raw.(sdk.Plugin)
}

// Run checks impl in process and the binary bin as a subprocess.
func Run(t *testing.T, impl sdk.Plugin, bin string, c Case) {
	t.Run("in-process", func(t *testing.T) { Conformance(t, InProcess(t, impl), c) })
	t.Run("subprocess", func(t *testing.T) {
		p := Start(t, bin, sdk.KindOf(impl))
		Conformance(t, p.Plugin, c)
		CheckBatch(t, p, c)
	})
}

// Conformance checks one plugin client against the contract.
func Conformance(t *testing.T, p sdk.Plugin, c Case) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	info, err := p.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	CheckInfo(t, info, sdk.KindOf(p))
	config, c := withDefaults(t, info, c)
	if err := p.Configure(ctx, config); err != nil {
		t.Fatalf("Configure(%s): %v", config, err)
	}
	switch p := p.(type) {
	case sdk.Evaluator:
		checkEvaluator(ctx, t, p, c)
	case sdk.Collector:
		checkCollector(ctx, t, p, c)
	case sdk.Realizer:
		checkRealizer(ctx, t, p, c)
	}
}

// withDefaults fills in schema defaults, as the runner does before a plugin
// sees its config or policy, with the same code.
func withDefaults(t *testing.T, info sdk.Info, c Case) (json.RawMessage, Case) {
	t.Helper()
	config, err := info.ConfigSchema.WithDefaults(c.Config)
	if err != nil {
		t.Fatalf("Case.Config %s: %v", c.Config, err)
	}
	if c.Policy, err = info.PolicySchema.WithDefaults(c.Policy); err != nil {
		t.Fatalf("Case.Policy %s: %v", c.Policy, err)
	}
	c.Requests = slices.Clone(c.Requests)
	for i, req := range c.Requests {
		if req.Target == (sdk.Target{}) {
			c.Requests[i].Target = c.Target
		}
		if req.Policy == nil {
			c.Requests[i].Policy = c.Policy
			continue
		}
		if c.Requests[i].Policy, err = info.PolicySchema.WithDefaults(req.Policy); err != nil {
			t.Fatalf("Case.Requests[%d].Policy %s: %v", i, req.Policy, err)
		}
	}
	return config, c
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// CheckInfo checks a plugin's info and schemas.
func CheckInfo(t testing.TB, info sdk.Info, kind sdk.Kind) {
	t.Helper()
	if info.Name == "" {
		t.Errorf("Info: empty name")
	}
	if info.Version == "" {
		t.Errorf("Info: empty version")
	}
	if info.Kind != kind {
		t.Errorf("Info: kind %v, but the plugin implements %v", info.Kind, kind)
	}
	if info.ProtocolVersion != sdk.ProtocolVersion {
		t.Errorf("Info: protocol version %d, want %d", info.ProtocolVersion, sdk.ProtocolVersion)
	}
	checkSchema(t, "config", info.ConfigSchema)
	checkSchema(t, "policy", info.PolicySchema)
	if kind != sdk.KindEvaluator && !info.PolicySchema.Empty() {
		t.Errorf("Info: only evaluators have a policy schema")
	}
}

func checkSchema(t testing.TB, where string, s sdk.Schema) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range s.Attributes {
		if !identifier.MatchString(a.Name) {
			t.Errorf("%s schema: %q is not a valid HCL attribute name", where, a.Name)
		}
		if seen[a.Name] {
			t.Errorf("%s schema: %q declared twice", where, a.Name)
		}
		seen[a.Name] = true
		if a.Type <= sdk.TypeUnknown || a.Type > sdk.TypeMapString {
			t.Errorf("%s schema: %q has unknown type %d", where, a.Name, a.Type)
		}
		if a.Required && a.Default != nil {
			t.Errorf("%s schema: %q is required and has a default", where, a.Name)
		}
		if a.Default != nil && !defaultFits(a) {
			t.Errorf("%s schema: default %#v of %q is not a %v", where, a.Default, a.Name, a.Type)
		}
	}
	for _, b := range s.Blocks {
		if !identifier.MatchString(b.Name) || seen[b.Name] {
			t.Errorf("%s schema: block name %q invalid or declared twice", where, b.Name)
		}
		seen[b.Name] = true
		checkSchema(t, where+"."+b.Name, b.Schema)
	}
}

func defaultFits(a sdk.Attribute) bool {
	// Defaults travel as JSON, so compare against JSON's types.
	b, err := json.Marshal(a.Default)
	if err != nil {
		return false
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return false
	}
	switch a.Type {
	case sdk.TypeString:
		_, ok := v.(string)
		return ok
	case sdk.TypeDuration:
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := sdk.ParseDuration(s)
		return err == nil
	case sdk.TypeNumber:
		_, ok := v.(float64)
		return ok
	case sdk.TypeBool:
		_, ok := v.(bool)
		return ok
	case sdk.TypeListString:
		l, ok := v.([]any)
		for _, e := range l {
			if _, isStr := e.(string); !isStr {
				return false
			}
		}
		return ok
	case sdk.TypeMapString:
		m, ok := v.(map[string]any)
		for _, e := range m {
			if _, isStr := e.(string); !isStr {
				return false
			}
		}
		return ok
	}
	return false
}

func checkEvaluator(ctx context.Context, t *testing.T, e sdk.Evaluator, c Case) {
	t.Helper()
	problems, err := e.ValidatePolicy(ctx, c.Policy)
	if err != nil || len(problems) > 0 {
		t.Errorf("ValidatePolicy(%s): problems %v, err %v", c.Policy, problems, err)
	}
	if len(c.Requests) == 0 {
		t.Errorf("evaluator case has no Requests to evaluate")
	}
	for i, req := range c.Requests {
		first, err := e.Evaluate(ctx, req)
		if err != nil {
			t.Errorf("request %d: Evaluate: %v", i, err)
			continue
		}
		again, err := e.Evaluate(ctx, req)
		if err != nil {
			t.Errorf("request %d: second Evaluate: %v", i, err)
			continue
		}
		if !reflect.DeepEqual(first, again) {
			t.Errorf("request %d: not pure: the same request gave\n%+v\nthen\n%+v", i, first, again)
		}
		CheckDecision(t, req, first.Decision)
		if req.SnapshotDegraded || !req.Snapshot.Complete {
			if len(first.Decision.Drain) > 0 || len(first.Decision.Remove) > 0 {
				t.Errorf("request %d: scaled down on a degraded snapshot: %s", i, first.Decision.Summary())
			}
		}
		next := req
		next.State = first.State
		if _, err := e.Evaluate(ctx, next); err != nil {
			t.Errorf("request %d: Evaluate with the state it returned: %v", i, err)
		}
		// The runner then says what became of the decision; a later
		// evaluator's veto is the outcome every evaluator must take.
		veto := sdk.Decision{Vetoed: true, Reason: "sdktest veto"}
		rd := sdk.Round{At: req.Now, Steps: []sdk.Step{{Evaluator: "self", Decision: first.Decision}, {Evaluator: "sdktest", Decision: veto}}, Final: veto}
		o := rd.Outcome(0)
		next.Outcome = &o
		if _, err := e.Evaluate(ctx, next); err != nil {
			t.Errorf("request %d: Evaluate told its decision was vetoed: %v", i, err)
		}
	}
}

// CheckDecision checks that a decision is coherent with the request it
// answers: sizes positive, ids unique, removals refer to known units.
func CheckDecision(t testing.TB, req sdk.EvaluateRequest, d sdk.Decision) {
	t.Helper()
	known := map[string]bool{}
	for _, u := range req.Inventory {
		known[u.ID] = true
	}
	added := map[string]bool{}
	for _, a := range d.Add {
		if a.UnitID == "" || a.Size <= 0 {
			t.Errorf("decision adds unit %q of size %d", a.UnitID, a.Size)
		}
		if added[a.UnitID] || known[a.UnitID] {
			t.Errorf("decision adds unit %q that already exists or is added twice", a.UnitID)
		}
		added[a.UnitID] = true
	}
	refs := append(append([]string{}, d.Drain...), d.Restart...)
	for _, r := range d.Remove {
		refs = append(refs, r.UnitID)
	}
	for _, id := range refs {
		if !known[id] {
			t.Errorf("decision refers to unit %q, which is not in the inventory", id)
		}
	}
	if d.DesiredCapacity < 0 {
		t.Errorf("decision wants negative capacity %d", d.DesiredCapacity)
	}
	if d.HasActions() && strings.TrimSpace(d.Reason) == "" {
		t.Errorf("decision %s has no reason", d.Summary())
	}
}

func checkCollector(ctx context.Context, t *testing.T, c sdk.Collector, tc Case) {
	t.Helper()
	snap, err := c.Collect(ctx, tc.Target)
	if err != nil {
		t.Fatalf("Collect(%v): %v", tc.Target, err)
	}
	if snap.ObservedAt.IsZero() {
		t.Errorf("snapshot has no observation time")
	}
	if !snap.Complete && len(snap.IncompleteReasons) == 0 {
		t.Errorf("incomplete snapshot gives no reason")
	}
	for _, w := range snap.Workers {
		if w.Threads < 0 || w.BusyThreads < 0 || w.BusyThreads > w.Threads {
			t.Errorf("worker %q: %d busy of %d threads", w.ID, w.BusyThreads, w.Threads)
		}
	}
}

func checkRealizer(ctx context.Context, t *testing.T, r sdk.Realizer, c Case) {
	t.Helper()
	before, err := r.Inventory(ctx, c.Target)
	if err != nil {
		t.Fatalf("Inventory(%v): %v", c.Target, err)
	}
	checkUnits(t, before)
	if _, err := r.Realize(ctx, sdk.RealizeRequest{Target: c.Target, RequestID: "sdktest-noop"}); err != nil {
		t.Errorf("Realize of an empty decision: %v", err)
	}
	if c.Decision == nil {
		return
	}
	req := sdk.RealizeRequest{Target: c.Target, Decision: *c.Decision, RequestID: "sdktest-1"}
	if _, err := r.Realize(ctx, req); err != nil {
		t.Fatalf("Realize: %v", err)
	}
	once, err := r.Inventory(ctx, c.Target)
	if err != nil {
		t.Fatalf("Inventory after Realize: %v", err)
	}
	if _, err := r.Realize(ctx, req); err != nil {
		t.Fatalf("Realize retried: %v", err)
	}
	twice, err := r.Inventory(ctx, c.Target)
	if err != nil {
		t.Fatalf("Inventory after retry: %v", err)
	}
	checkUnits(t, twice)
	if ids(once) != ids(twice) {
		t.Errorf("a retried Realize changed the inventory: %s -> %s", ids(once), ids(twice))
	}
	for _, a := range c.Decision.Add {
		if !strings.Contains(","+ids(twice)+",", ","+a.UnitID+",") {
			t.Errorf("unit %q was added but is not in the inventory %s", a.UnitID, ids(twice))
		}
	}
}

func checkUnits(t testing.TB, units []sdk.Unit) {
	t.Helper()
	seen := map[string]bool{}
	for _, u := range units {
		if u.ID == "" || seen[u.ID] {
			t.Errorf("inventory unit id %q empty or listed twice", u.ID)
		}
		seen[u.ID] = true
		if u.Phase == sdk.PhaseUnknown {
			t.Errorf("inventory unit %q has no phase", u.ID)
		}
	}
}

func ids(units []sdk.Unit) string {
	s := make([]string, len(units))
	for i, u := range units {
		s[i] = u.ID
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}
