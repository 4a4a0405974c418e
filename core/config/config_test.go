package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/ebbscale/ebb/sdk"
)

func TestLoadGood(t *testing.T) {
	t.Setenv("EBB_TEST_AMS_URL", "")
	t.Setenv("EBB_TEST_API_KEY", "k3y")
	r := newFakeResolver()
	cfg, diags := Load("testdata/good.hcl", nil, r)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", FormatDiagnostics(diags))
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}

	if cfg.PluginDir != filepath.Join(dir, "plugins") || r.dir != cfg.PluginDir {
		t.Errorf("plugin dir = %q, resolver got %q; want %q", cfg.PluginDir, r.dir, filepath.Join(dir, "plugins"))
	}
	if want := filepath.Join(dir, "state", "ebb.db"); cfg.StatePath != want {
		t.Errorf("state path = %q, want %q", cfg.StatePath, want)
	}
	if cfg.HTTPAddress != "0.0.0.0:9000" || cfg.LogLevel != "debug" || !cfg.LogJSON {
		t.Errorf("settings = %q %q %v", cfg.HTTPAddress, cfg.LogLevel, cfg.LogJSON)
	}

	ams := cfg.Collectors["ams"]
	if ams == nil || ams.Plugin != "collector-ams" || ams.Timeout != 10*time.Second || ams.Kind != sdk.KindCollector {
		t.Fatalf("collector ams = %+v", ams)
	}
	assertJSON(t, "ams config", ams.Config, `{"api-key":"k3y","groups":["a","b"],"headers":{"X-Team":"data"},"insecure":false,
		"metrics-url":"http://ams:19090/metrics","page-size":5000000,"request-timeout":"5s","url":"http://ams:19090"}`)
	if got := ams.Redacted()["api-key"]; got != "(sensitive)" {
		t.Errorf("redacted api-key = %v", got)
	}
	if got := ams.Redacted()["url"]; got != "http://ams:19090" {
		t.Errorf("redacted url = %v", got)
	}
	if got := cfg.Evaluators["dra"].SHA256; got != goodSum {
		t.Errorf("sha256 = %q, want lower-case %q", got, goodSum)
	}
	assertJSON(t, "k8s config", cfg.Realizers["k8s"].Config, `{"kubeconfig":"/secret/kubeconfig","mode":"unit","namespace":"amoro-prod"}`)
	assertJSON(t, "process config", cfg.Realizers["process"].Config, `{"command":["optimizer.sh","start"]}`)

	if len(cfg.Chains) != 2 {
		t.Fatalf("chains = %d, want 2", len(cfg.Chains))
	}
	amoro, local := cfg.Chains[0], cfg.Chains[1]
	if amoro.Name != "amoro" || local.Name != "local" || cfg.Chain("local") != local {
		t.Fatalf("chain order = %q, %q", amoro.Name, local.Name)
	}
	wantChain := func(c *Chain, collectors, evaluators, realizer string, interval, jitter, timeout, age time.Duration, enabled bool) {
		t.Helper()
		got := fmt.Sprintf("%s|%s|%s|%s|%v|%v|%v|%v|%v", strings.Join(c.Collectors, ","), strings.Join(c.Evaluators, ","), c.Realizer, c.Target,
			c.Interval, c.Jitter, c.Timeout, c.MaxSnapshotAge, c.Enabled)
		want := fmt.Sprintf("%s|%s|%s|%s|%v|%v|%v|%v|%v", collectors, evaluators, realizer, "group-a", interval, jitter, timeout, age, enabled)
		if got != want {
			t.Errorf("chain %s = %s, want %s", c.Name, got, want)
		}
	}
	wantChain(amoro, "ams,prom", "dra,guard", "k8s", 20*time.Second, 2*time.Second, 15*time.Second, time.Minute, true)
	// Defaults: interval 30s, timeout = interval, max age = 2 x interval.
	wantChain(local, "ams", "dra", "process", 30*time.Second, 3*time.Second, 30*time.Second, time.Minute, false)

	assertJSON(t, "dra policy", amoro.Policy["dra"], `{"auto-restart":{"enabled":true,"grace-period":"5m","max-retries":3},
		"boot-timeout":"3m","drain-timeout":"15m","executor-idle-timeout":"10m","executor-parallelism":0.5,
		"max-parallelism":32,"min-parallelism":4,"scale-down-cooldown":"1m","scale-up-cooldown":"30s",
		"scheduler-backlog-timeout":"1m","sustained-backlog-timeout":"30s"}`)
	assertJSON(t, "guard policy", amoro.Policy["guard"], `{"max-parallelism":32,"max-step":2}`)
	if len(r.policies["evaluator-dra"]) != 2 || len(r.policies["evaluator-guard"]) != 1 {
		t.Errorf("ValidatePolicy calls = %d dra, %d guard; want 2 and 1", len(r.policies["evaluator-dra"]), len(r.policies["evaluator-guard"]))
	}

	if got := strings.Join(cfg.Realizers["k8s"].UsedBy, ","); got != "amoro" {
		t.Errorf("k8s used by %q", got)
	}
	if got := strings.Join(cfg.Collectors["ams"].UsedBy, ","); got != "amoro,local" {
		t.Errorf("ams used by %q", got)
	}
	if amoro.Fingerprint == "" || amoro.Fingerprint == local.Fingerprint {
		t.Errorf("fingerprints %q %q", amoro.Fingerprint, local.Fingerprint)
	}
	if amoro.Range.Start.Line != 73 || cfg.Collectors["prom"].Range.Start.Line != 42 {
		t.Errorf("ranges: chain at %v, prom at %v", amoro.Range, cfg.Collectors["prom"].Range)
	}
}

// A -var changes exactly the chains whose definition depends on it, and
// moving text around in the file changes none.
func TestFingerprint(t *testing.T) {
	src, err := os.ReadFile("testdata/good.hcl")
	if err != nil {
		t.Fatal(err)
	}
	load := func(src []byte, vars map[string]string) map[string]string {
		t.Helper()
		cfg, diags := Parse(src, "good.hcl", vars, newFakeResolver())
		if diags.HasErrors() {
			t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
		}
		out := map[string]string{}
		for _, c := range cfg.Chains {
			out[c.Name] = c.Fingerprint
		}
		return out
	}
	base := load(src, nil)
	tests := []struct {
		name         string
		src          []byte
		vars         map[string]string
		amoro, local bool // changed?
	}{
		{"same", src, nil, false, false},
		{"moved", append([]byte("# a comment\n\n\n"), src...), nil, false, false},
		{"policy var", src, map[string]string{"max": "64"}, true, false},
		{"realizer var", src, map[string]string{"which": "k8s", "cluster": "dev"}, true, true},
		{"plugin config", []byte(strings.Replace(string(src), `"optimizer.sh", "start"`, `"optimizer.sh", "run"`, 1)), nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := load(tt.src, tt.vars)
			if (got["amoro"] != base["amoro"]) != tt.amoro || (got["local"] != base["local"]) != tt.local {
				t.Errorf("changed: amoro %v local %v; want %v %v", got["amoro"] != base["amoro"], got["local"] != base["local"], tt.amoro, tt.local)
			}
		})
	}
}

func TestVariables(t *testing.T) {
	tests := []struct {
		name  string
		vars  map[string]string
		check func(t *testing.T, cfg *Config)
	}{
		{"number override", map[string]string{"max": "64"}, func(t *testing.T, cfg *Config) {
			assertJSON(t, "guard policy", cfg.Chains[0].Policy["guard"], `{"max-parallelism":64,"max-step":2}`)
		}},
		{"conditional realizer", map[string]string{"cluster": "dev", "which": "k8s"}, func(t *testing.T, cfg *Config) {
			if cfg.Chains[0].Realizer != "process" || cfg.Chains[1].Realizer != "k8s" {
				t.Errorf("realizers = %s, %s", cfg.Chains[0].Realizer, cfg.Chains[1].Realizer)
			}
			assertJSON(t, "k8s config", cfg.Realizers["k8s"].Config, `{"kubeconfig":"/secret/kubeconfig","mode":"unit","namespace":"amoro-dev"}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Load("testdata/good.hcl", tt.vars, newFakeResolver())
			if len(diags) > 0 {
				t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
			}
			tt.check(t, cfg)
		})
	}
}

// TestBad asserts each error's exact position and the gist of its message.
// Each want is "LINE:COL: text"; a want without a position is a diagnostic
// with no source (an -var).
func TestBad(t *testing.T) {
	tests := []struct {
		file string
		vars map[string]string
		want []string
	}{
		{"bad_top.hcl", nil, []string{
			`1:1: Unsupported argument: An argument named "plugin_directory" is not expected here. Did you mean "plugin_dir"?`,
			`4:13: Invalid HTTP address: address "localhost" must be host:port`,
			`5:3: An argument named "port" is not expected here`,
			`9:11: Invalid log level: level "loud"`,
			`12:1: Blocks of type "metrics" are not expected here`,
		}},
		{"bad_config.hcl", nil, []string{
			`5:5: An argument named "colour" is not expected here`,
			`13:17: page-size: a number is required, got string`,
			`14:17: groups: a list of strings is required, got string`,
			`15:17: insecure: a bool is required, got string`,
			`21:3: The argument "url" is required (AMS base URL)`,
			`26:1: The argument "url" is required`,
			`32:13: timeout: duration "-1s" must not be negative`,
			`35:23: request-timeout: invalid duration "5 secondz"`,
			`41:13: timeout must be greater than zero`,
			`44:23: request-timeout: duration "-5s" must not be negative`,
		}},
		{"bad_policy.hcl", nil, []string{
			`26:5: An argument named "max-paralelism" is not expected here. Did you mean "max-parallelism"?`,
			`28:7: An argument named "retries" is not expected here`,
			`39:25: max-parallelism: a number is required, got string`,
			`40:25: scale-up-cooldown: invalid duration "30"`,
			`41:25: drain-timeout: invalid duration "15"`,
			`43:17: auto-restart.enabled: a bool is required`,
			`45:5: Duplicate auto-restart block`,
			`55:3: The argument "max-parallelism" is required`,
			`60:1: The argument "max-parallelism" is required`,
		}},
		{"bad_chain.hcl", nil, []string{
			`24:32: Reference to undefined collector: No collector "amz" is defined`,
			`26:16: Wrong kind of block: realizer must reference realizer blocks, but collector.ams is a collector`,
			`34:17: collectors must reference collector blocks, such as [collector.NAME, ...]; got a string`,
			`35:32: Duplicate reference: evaluator.dra is already listed at testdata/bad_chain.hcl:35:17`,
			`37:16: target must not be empty`,
			`48:22: interval must be greater than zero`,
			`49:22: timeout: duration "-10s" must not be negative`,
			`50:22: max_snapshot_age: invalid duration "soon"`,
			`62:16: jitter "150%" must be a percentage`,
			`68:1: Chain "incomplete" needs realizer = realizer.NAME`,
			`68:1: Chain "incomplete" needs target = "NAME"`,
			`69:16: collectors must list at least one collector`,
			`70:16: policy key "max-parallelism" is a number for evaluator "dra" but a string for evaluator "clash"`,
			`72:5: "max-parallelism" is a policy key of evaluators "dra" and "clash", so this one value would configure all of them`,
		}},
		{"bad_duplicates.hcl", nil, []string{
			`8:11: Duplicate collector "ams": A collector named "ams" is already defined at testdata/bad_duplicates.hcl:1:1`,
			`30:1: Duplicate state block`,
			`48:16: Target realized twice: Chain "second" realizes target "group-a" with realizer "k8s", as chain "first" already does at testdata/bad_duplicates.hcl:38:16`,
			`54:7: Duplicate chain "first": A chain named "first" is already defined at testdata/bad_duplicates.hcl:34:1`,
		}},
		{"bad_vars.hcl", map[string]string{"max": "lots", "nope": "1"}, []string{
			`Undeclared variable "nope": -var nope=...`,
			`1:1: Invalid value for variable "max": -var max="lots": want a number`,
			`5:1: No value for variable "token"`,
			`16:15: Reference to undeclared variable: No variable "endpoint" is declared`,
			`43:13: Variables not allowed`,
		}},
		{"bad_plugins.hcl", nil, []string{
			`2:12: Unknown plugin: collector "unknown": plugin "collector-nope"`,
			`7:12: Plugin checksum mismatch: evaluator "pinned"`,
			`12:12: sha256 must be 64 hexadecimal digits, got "abc"`,
			`16:12: Cannot start plugin: realizer "broken": plugin "realizer-broken": starting realizer-broken: exec: permission denied`,
			`20:12: Wrong plugin kind: plugin "realizer-k8s" is a realizer, but it is used in a collector block`,
			`23:1: realizer "noplugin" needs plugin = "NAME"`,
		}},
		{"bad_problems.hcl", nil, []string{
			`24:3: Invalid policy: policy is unreasonably large (evaluator "dra")`,
			`25:5: Invalid policy: min-parallelism: must not exceed max-parallelism (evaluator "dra")`,
			`27:5: boot-timeout: must be positive`,
			`29:7: auto-restart.max-retries: must be at most 100`,
		}},
		// Printing these would take forever; they are refused unevaluated.
		{"bad_numbers.hcl", nil, []string{
			`4:31: Number out of range`,
			`5:17: Number out of range`,
		}},
		{"bad_syntax.hcl", nil, []string{
			`4:11: Invalid expression`,
		}},
		// Switching chain "local" to k8s makes it a second writer of group-a.
		{"good.hcl", map[string]string{"which": "k8s"}, []string{
			`103:16: Target realized twice: Chain "local" realizes target "group-a" with realizer "k8s", as chain "amoro" already does at testdata/good.hcl:77:22`,
		}},
		{"good.hcl", map[string]string{"which": "nomad"}, []string{
			`102:25: Reference to undefined realizer: No realizer "nomad" is defined`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			cfg, diags := Load(path, tt.vars, newFakeResolver())
			if cfg != nil {
				t.Errorf("got a config despite errors")
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(FormatDiagnostics(diags)), "\n") {
				if !strings.Contains(line, "warning:") {
					got = append(got, strings.TrimPrefix(line, path+":"))
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				pos, text, _ := strings.Cut(w, ": ")
				if !strings.Contains(w, ": ") || strings.Count(pos, ":") != 1 {
					pos, text = "", w
				}
				if !strings.HasPrefix(got[i], pos) || !strings.Contains(got[i], text) {
					t.Errorf("error %d = %q\nwant at %q containing %q", i, got[i], pos, text)
				}
			}
			for _, d := range diags {
				if d.Subject != nil && d.Subject.Filename != path {
					t.Errorf("diagnostic %q names file %q, want %q", d.Summary, d.Subject.Filename, path)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	src := `
collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams"
  }
}

collector "spare" {
  plugin = "collector-prom"
  config {
    address = "http://prom"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    namespace = "n"
  }
}

chain "c" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "t"
  policy {
    max-parallelism = 1
  }
}
`
	cfg, diags := Parse([]byte(src), "w.hcl", nil, newFakeResolver())
	if cfg == nil {
		t.Fatalf("no config:\n%s", FormatDiagnostics(diags))
	}
	want := "w.hcl:9:1: warning: Unused collector: collector \"spare\" is not referenced by any chain.\n"
	if got := FormatDiagnostics(diags); got != want {
		t.Errorf("diagnostics = %q, want %q", got, want)
	}
}

func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ns.txt"), []byte("  team-ns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EBB_TEST_IMAGE", "img:1")
	tests := []struct {
		name, expr, want, err string
	}{
		{"env set", `env("EBB_TEST_IMAGE")`, "img:1", ""},
		{"env unset", `env("EBB_TEST_UNSET_VARIABLE")`, "", ""},
		{"env default", `env("EBB_TEST_UNSET_VARIABLE", "dflt")`, "dflt", ""},
		{"file relative", `trimspace(file("ns.txt"))`, "team-ns", ""},
		{"file missing", `file("nope.txt")`, "", "4:13: Error in function call"},
		{"file not regular", `file(".")`, "", "is not a regular file"},
		{"unknown function", `nope("x")`, "", "4:13: Call to unknown function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("realizer \"k8s\" {\n  plugin = \"realizer-k8s\"\n  config {\n    image = %s\n    namespace = \"n\"\n  }\n}\n", tt.expr)
			cfg, diags := Parse([]byte(src), filepath.Join(dir, "f.hcl"), nil, newFakeResolver())
			if tt.err != "" {
				if got := FormatDiagnostics(diags); !strings.Contains(got, tt.err) {
					t.Fatalf("diagnostics = %q, want %q", got, tt.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
			}
			var obj map[string]any
			if err := json.Unmarshal(cfg.Realizers["k8s"].Config, &obj); err != nil {
				t.Fatal(err)
			}
			if obj["image"] != tt.want {
				t.Errorf("image = %q, want %q", obj["image"], tt.want)
			}
		})
	}
}

func TestConvertOverride(t *testing.T) {
	tests := []struct {
		name, def, raw, want, err string
	}{
		{"string", `"a"`, "b c", `"b c"`, ""},
		{"number", `5`, "12", `12`, ""},
		{"number bad", `5`, "12x", "", "want a number"},
		{"number huge", `5`, "1e999999999", "", "out of range"},
		{"number huge in list", `[5]`, "[1e999999999]", "", "out of range"},
		{"bool", `false`, "true", `true`, ""},
		{"bool bad", `false`, "yes", "", "want a bool"},
		{"list", `["a"]`, `["b", "c"]`, `["b","c"]`, ""},
		{"list bad", `["a"]`, `{b = 1}`, "", "want a tuple"},
		{"map", `{a = "x"}`, `{b = "y"}`, `{"b":"y"}`, ""},
		{"syntax", `{a = "x"}`, `{b = `, "", "want an HCL object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &loader{filename: "v.hcl", dir: ".", cfg: &Config{}}
			file, diags := hclsyntax.ParseConfig([]byte(fmt.Sprintf("variable \"v\" {\n  default = %s\n}\n", tt.def)), "v.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			body := file.Body
			content, _ := body.Content(topSchema)
			vals, diags := l.variables(content.Blocks.OfType("variable"), map[string]string{"v": tt.raw})
			got := FormatDiagnostics(diags)
			if tt.err != "" {
				if !strings.Contains(got, tt.err) || !strings.Contains(got, `variable "v"`) {
					t.Fatalf("diagnostics = %q, want %q", got, tt.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(got)
			}
			js, err := ctyjson.Marshal(vals["v"], vals["v"].Type())
			if err != nil {
				t.Fatal(err)
			}
			if string(js) != tt.want {
				t.Errorf("value = %s, want %s", js, tt.want)
			}
		})
	}
}

func assertJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("%s =\n%s\nwant\n%s", what, gb, wb)
	}
	if strings.Contains(string(got), "e+") {
		t.Errorf("%s: integers must not use exponents: %s", what, got)
	}
}
