package process

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	tests := []struct {
		name string
		cfg  string
		want string // error substring; empty: accepted
	}{
		{"minimal", `{"command":["sh","-c","echo {unit} {threads} {group} {target} {chain}"],"state-dir":%q}`, ""},
		{"vars and env", `{"command":["sh","-c","echo {ams-url}"],"vars":{"ams-url":"thrift://x"},"env":{"ID":"{unit}"},"state-dir":%q,"drain-timeout":"1m","boot-time":"5s"}`, ""},
		{"literal braces", `{"command":["sh","-c","echo {{unit}} ${{HOME}} {\"a\":1}"],"state-dir":%q}`, ""},
		{"empty command", `{"command":[],"state-dir":%q}`, "command is empty"},
		{"blank program", `{"command":[" "],"state-dir":%q}`, "command is empty"},
		{"unknown placeholder", `{"command":["sh","-c","echo {nope}"],"state-dir":%q}`, "unknown placeholder {nope}"},
		{"shell variable", `{"command":["sh","-c","echo ${HOME}"],"state-dir":%q}`, "unknown placeholder {HOME}"},
		{"unknown placeholder in env", `{"command":["sh"],"env":{"X":"{nope}"},"state-dir":%q}`, "env X: unknown placeholder {nope}"},
		{"var shadows a built-in", `{"command":["sh"],"vars":{"unit":"x"},"state-dir":%q}`, `"unit" is a built-in placeholder`},
		{"var shadows heap", `{"command":["sh"],"vars":{"heap":"x"},"state-dir":%q}`, `"heap" is a built-in placeholder`},
		{"memory", `{"command":["sh"],"memory-per-thread-mb":0,"state-dir":%q}`, "memory-per-thread-mb 0"},
		{"bad var name", `{"command":["sh"],"vars":{"a b":"x"},"state-dir":%q}`, `"a b" cannot be a placeholder name`},
		{"bad env name", `{"command":["sh"],"env":{"A=B":"x"},"state-dir":%q}`, `"A=B" is not a valid variable name`},
		{"missing program", `{"command":["no-such-program-ebb"],"state-dir":%q}`, `command "no-such-program-ebb"`},
		{"program not executable", `{"command":[` + jsonString(file) + `],"state-dir":%q}`, "not an executable file"},
		{"unknown key", `{"command":["sh"],"state-dir":%q,"comand":["x"]}`, `unknown field "comand"`},
		{"bad duration", `{"command":["sh"],"state-dir":%q,"drain-timeout":"soon"}`, `invalid duration "soon"`},
		{"no state dir", `{"command":["sh"]}`, "state-dir is required"},
		{"unwritable state dir", `{"command":["sh"],"state-dir":%q}`, "state-dir: cannot create"},
		{"bad workdir", `{"command":["sh"],"state-dir":%q,"workdir":"/no/such/dir"}`, "workdir /no/such/dir is not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sd := state
			if tc.name == "unwritable state dir" {
				sd = filepath.Join(file, "state") // under a regular file: even root cannot create it
			}
			raw := json.RawMessage(strings.Replace(tc.cfg, "%q", jsonString(sd), 1))
			err := New().Configure(ctxT(t), raw)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Configure(%s): %v", raw, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Configure(%s) = %v, want an error containing %q", raw, err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := parseConfig([]byte(`{"command":["sh"],"state-dir":` + jsonString(dir) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DrainTimeout.D() != 15*time.Minute || c.BootTime.D() != 0 || c.LogDir != dir {
		t.Errorf("defaults: drain-timeout %v, boot-time %v, log-dir %q", c.DrainTimeout.D(), c.BootTime.D(), c.LogDir)
	}
	// The published schema says the same.
	for name, want := range map[string]any{"drain-timeout": "15m", "boot-time": "0s"} {
		if a, ok := ConfigSchema().Attr(name); !ok || a.Default != want {
			t.Errorf("schema default of %s = %v, want %v", name, a.Default, want)
		}
	}
}

func TestExpand(t *testing.T) {
	vals := placeholderValues(sdk.Target{Chain: "c", Name: "g"}, "u-1", 4, 512, map[string]string{"ams-url": "thrift://a", "mem": "1g"}, map[string]string{"mem": "2g", "stray": "x"})
	tests := []struct {
		in, want, err string
	}{
		{"-id {unit}", "-id u-1", ""},
		{"{threads}/{group}/{target}/{chain}", "4/g/g/c", ""},
		{"-a {ams-url} -m {mem}", "-a thrift://a -m 2g", ""},
		{"start-foreground {heap}", "start-foreground 2048", ""},
		{"{{unit}} {{{unit}}}", "{unit} {u-1}", ""},
		{`{"k": 1}`, `{"k": 1}`, ""},
		{"{ unit }", "{ unit }", ""},
		{"{", "{", ""},
		{"}", "}", ""},
		{"{stray}", "", "unknown placeholder {stray}"},
		{"{a} {b}", "", "unknown placeholder {a}, {b}"},
	}
	for _, tc := range tests {
		got, err := expand(tc.in, vals)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expand(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		in    string
		want  procStat
		isErr bool
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000", procStat{State: 'S', Pgrp: 42, StartTicks: 98765}, false},
		{"42 (a) b (c) Z 7 9 9 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000", procStat{State: 'Z', Pgrp: 9, StartTicks: 98765}, false},
		{"42 sleep S 1", procStat{}, true},
		{"42 (sleep) S 1 42", procStat{}, true},
		{"42 (sleep) S 1 x 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000", procStat{}, true},
	}
	for _, tc := range tests {
		got, err := parseStat([]byte(tc.in))
		if (err != nil) != tc.isErr || got != tc.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.isErr)
		}
	}
	// And on a real process: this one.
	st, err := readStat(os.Getpid())
	if err != nil || st.StartTicks == 0 || st.State == 'Z' {
		t.Errorf("readStat(self) = %+v, %v", st, err)
	}
}

func TestUnitKey(t *testing.T) {
	keys := map[string]bool{}
	for _, tc := range []struct{ chain, target, unit string }{
		{"a", "b", "c"}, {"a_b", "", "c"}, {"a", "b_c", ""}, {"a", "b", "../c"}, {"a", "b", "c d"},
		{"a", "b", strings.Repeat("x", 300)}, {"a", "b", strings.Repeat("x", 301)},
	} {
		k := unitKey(sdk.Target{Chain: tc.chain, Name: tc.target}, tc.unit)
		if keys[k] || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") || len(k) > 200 {
			t.Errorf("unitKey(%v) = %q: duplicate or unsafe", tc, k)
		}
		keys[k] = true
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
