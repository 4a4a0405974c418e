package process

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/sdk"
)

// The test binary doubles as the stand-in optimizer.sh's "java": with
// standinEnv set it is an optimizer JVM, not a test run.
const (
	standinEnv     = "EBB_TEST_STANDIN_JVM"
	standinVersion = "EBB_TEST_STANDIN_VERSION"
)

func TestMain(m *testing.M) {
	if os.Getenv(standinEnv) != "" {
		os.Exit(standinJVM(os.Args[1:]))
	}
	os.Exit(m.Run())
}

var xmx = regexp.MustCompile(`^-Xmx([0-9]+)m$`)

// standinJVM is what `java -Xmx<heap>m -D… StandaloneOptimizer <args>`
// does with its arguments: the JVM refuses a heap that is not a size, the
// optimizer's args4j parser refuses an option its version lacks (main
// throws, exit 1), and otherwise an emulated optimizer runs until SIGTERM,
// reporting its heap as its memory, as StandaloneOptimizer does.
func standinJVM(args []string) int {
	if len(args) == 0 || !xmx.MatchString(args[0]) {
		fmt.Fprintf(os.Stderr, "Invalid maximum heap size: %q\nError: Could not create the Java Virtual Machine.\n", args[:min(1, len(args))])
		return 1
	}
	heap := xmx.FindStringSubmatch(args[0])[1]
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-D") {
		i++
	}
	if i >= len(args) || args[i] != "org.apache.amoro.optimizer.standalone.StandaloneOptimizer" {
		fmt.Fprintf(os.Stderr, "Error: Could not find or load main class %q\n", args[i:])
		return 1
	}
	version := os.Getenv(standinVersion)
	if version == "" {
		version = "0.9"
	}
	opt := append(args[i+1:], ams.FlagOptimizerVersion, version, ams.FlagMemoryMB, heap, ams.FlagPoll, "100ms")
	o, _, err := ams.ParseOptimizerArgs(opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Exception in thread \"main\" org.kohsuke.args4j.CmdLineException: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	o.Logf = func(format string, a ...any) { fmt.Printf(format+"\n", a...) }
	if err := ams.RunOptimizer(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("optimizer stopped")
	return 0
}

// exampleProcessConfig is the config block of realizer "process" in the
// repository's config.hcl, as JSON.
func exampleProcessConfig(t *testing.T) map[string]any {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCLFile(filepath.Join("..", "..", "config.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "realizer" || len(b.Labels) != 1 || b.Labels[0] != "process" {
			continue
		}
		for _, c := range b.Body.Blocks {
			if c.Type != "config" {
				continue
			}
			out := map[string]any{}
			// The real optimizer's path through the example's variables.
			vars := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{
				"optimizer": cty.StringVal("amoro"),
				"ams_url":   cty.StringVal("http://127.0.0.1:19090"),
			})}}
			for name, attr := range c.Body.Attributes {
				v, diags := attr.Expr.Value(vars)
				if diags.HasErrors() {
					t.Fatalf("config.hcl realizer \"process\" %s: %v", name, diags)
				}
				js, err := ctyjson.Marshal(v, v.Type())
				if err != nil {
					t.Fatal(err)
				}
				var x any
				if err := json.Unmarshal(js, &x); err != nil {
					t.Fatal(err)
				}
				out[name] = x
			}
			return out
		}
	}
	t.Fatal(`config.hcl has no realizer "process" with a config block`)
	return nil
}

type optimizerInfo struct {
	JobID      *string `json:"jobId"`
	CoreNumber int     `json:"coreNumber"`
	Memory     int     `json:"memory"`
}

func listOptimizers(t *testing.T, base, group string) []optimizerInfo {
	t.Helper()
	resp, err := http.Get(base + ams.APIPrefix + "/optimize/optimizerGroups/" + group + "/optimizers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Result struct {
			List []optimizerInfo `json:"list"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Result.List
}

// The example config's command starts a real-shaped optimizer: only the
// script's location differs (a stand-in that reads its arguments as
// optimizer.sh does) and the AMS address (the emulator's). The optimizer
// registers under the unit id with the unit's threads and heap, and a drain
// stops it.
func TestExampleConfigStartsTheOptimizer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs optimizer processes")
	}
	emu, err := ams.New(ams.Options{Groups: []ams.GroupConfig{{Name: target.Name}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STANDIN_JAVA", self)
	t.Setenv(standinEnv, "1")
	script, err := filepath.Abs(filepath.Join("testdata", "optimizer.sh"))
	if err != nil {
		t.Fatal(err)
	}

	base := exampleProcessConfig(t)
	command, _ := base["command"].([]any)
	if len(command) < 3 || command[1] != "start-foreground" || command[2] != "{heap}" {
		t.Fatalf("config.hcl's command %v is not `optimizer.sh start-foreground {heap} …`", command)
	}
	memPerThread, _ := base["memory-per-thread-mb"].(float64)
	// run starts unit u-1 with cmd; a unit that exited at once is
	// returned with its log, which outlives it.
	run := func(t *testing.T, cmd []any, version string) (*Realizer, sdk.Unit) {
		t.Helper()
		t.Setenv(standinVersion, version)
		cfg := map[string]any{}
		for k, v := range base {
			cfg[k] = v
		}
		cfg["command"] = append([]any{script}, cmd[1:]...)
		cfg["vars"] = map[string]any{"ams": srv.URL}
		dir := t.TempDir()
		killUnits(t, dir)
		cfg["state-dir"] = dir
		raw, _ := json.Marshal(cfg)
		r, _ := configured(t, raw)
		realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}}})
		u := sdk.Unit{ID: "u-1", Labels: map[string]string{"log": filepath.Join(dir, unitKey(target, "u-1")+".log")}}
		if got, ok := inventory(t, r, target)["u-1"]; ok {
			u = got
		}
		return r, u
	}

	t.Run("0.9", func(t *testing.T) {
		r, u := run(t, command, "0.9")
		eventually(t, "u-1 registers with AMS", func() bool {
			for _, o := range listOptimizers(t, srv.URL, target.Name) {
				if o.JobID != nil && *o.JobID == "u-1" && o.CoreNumber == 2 && o.Memory == int(2*memPerThread) {
					return true
				}
			}
			return false
		})
		if !running(pidOf(t, u)) {
			t.Fatalf("u-1 is not running:\n%s", logOf(t, u))
		}
		mustContain(t, realize(t, r, "drain", sdk.Decision{Drain: []string{"u-1"}}), "u-1: draining (SIGTERM")
		eventually(t, "u-1 stops on SIGTERM", func() bool { _, ok := inventory(t, r, target)["u-1"]; return !ok })
		if !strings.Contains(logOf(t, u), "optimizer stopped") {
			t.Errorf("u-1 did not stop cleanly:\n%s", logOf(t, u))

		}
	})

	// What the example used to say: optimizer.sh takes "-a" for its
	// command, prints usage and exits; the unit is gone at once.
	t.Run("old form", func(t *testing.T) {
		old := []any{"optimizer.sh", "-a", "{ams}", "-p", "{threads}", "-g", "{group}", "-id", "{unit}"}
		r, u := run(t, old, "0.9")
		eventually(t, "the unit exits", func() bool { _, ok := inventory(t, r, target)["u-1"]; return !ok })
		mustContain(t, logOf(t, u), "Usage: ")
	})

	// -st is 0.9's: an 0.8 optimizer refuses it and exits.
	t.Run("0.8 refuses -st", func(t *testing.T) {
		r, u := run(t, append(append([]any{}, command...), "-st", strconv.Itoa(int((15*time.Minute).Milliseconds()))), "0.8.1")
		eventually(t, "the unit exits", func() bool { _, ok := inventory(t, r, target)["u-1"]; return !ok })
		mustContain(t, logOf(t, u), `"-st" is not a valid option`)
	})
}
