package optargs

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		err  bool
	}{
		{in: "0.8", want: Version{0, 8, 0}},
		{in: "0.8.1", want: Version{0, 8, 1}},
		{in: "v0.9.0", want: Version{0, 9, 0}},
		{in: "0.8.1-incubating", want: Version{0, 8, 1}},
		{in: "0.9.0-incubating", want: Version{0, 9, 0}},
		{in: "0.9.0-rc4", want: Version{0, 8, 999}},
		{in: "0.9.0-SNAPSHOT", want: Version{0, 8, 999}},
		{in: "1.0.0-rc1", want: Version{0, 999, 999}},
		{in: "0.10.1", want: Version{0, 10, 1}},
		{in: "latest", err: true},
		{in: "0.9.x", err: true},
		{in: "09.1", err: true},
		{in: "1", err: true},
		{in: "", err: true},
	} {
		got, err := ParseVersion(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFromImage(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  Version
		ok    bool
	}{
		{"apache/amoro:0.8.1-incubating", Version{0, 8, 1}, true},
		{"apache/amoro:0.9.0", Version{0, 9, 0}, true},
		{"registry.local:5000/amoro:0.9.1", Version{0, 9, 1}, true},
		{"apache/amoro:0.9.0@sha256:abcd", Version{0, 9, 0}, true},
		{"registry.local:5000/amoro", Version{}, false},
		{"apache/amoro:latest", Version{}, false},
		{"apache/amoro@sha256:abcd", Version{}, false},
		{"apache/amoro", Version{}, false},
	} {
		got, ok := FromImage(tc.image)
		if ok != tc.ok || got != tc.want {
			t.Errorf("FromImage(%q) = %v, %v; want %v, %v", tc.image, got, ok, tc.want, tc.ok)
		}
	}
}

// The command lines Amoro's own containers build
// (AbstractOptimizerContainer.buildOptimizerStartupArgsString), against the
// option sets of the versions that accept or reject them.
func TestParse(t *testing.T) {
	v081 := Version{0, 8, 1}
	for _, tc := range []struct {
		name string
		v    Version
		args string
		err  string
		want map[string]string
	}{
		{name: "0.8 standard", v: v081, args: "-a thrift://ams:1261 -p 4 -g g1 -id u1",
			want: map[string]string{"-a": "thrift://ams:1261", "-p": "4", "-g": "g1", "-id": "u1"}},
		{name: "0.9 full", v: V09, args: "-a thrift://ams:1261 -p 4 -g g1 -hb 1000 -st 900000 -eds -dsp /tmp -msz 512 -ce -cmts 128mb -id u1 -msm",
			want: map[string]string{"-hb": "1000", "-st": "900000", "-eds": "true", "-dsp": "/tmp", "-ce": "true", "-cmts": "128mb", "-msm": "true"}},
		{name: "long names and key=value", v: V09, args: "--ams-optimizing-uri=thrift://a:1 --execution-parallel 2 -g=g --resource-id u",
			want: map[string]string{"-a": "thrift://a:1", "-p": "2", "-g": "g", "-id": "u"}},
		{name: "last value wins", v: V09, args: "-a x -p 1 -p 3 -g g", want: map[string]string{"-p": "3"}},
		{name: "-st unknown to 0.8", v: v081, args: "-a x -p 1 -g g -st 900000", err: `"-st" is not a valid option`},
		{name: "-msm unknown to 0.8", v: v081, args: "-a x -p 1 -g g -msm", err: `"-msm" is not a valid option`},
		{name: "-st unknown to an rc", v: mustVersion(t, "0.9.0-rc3"), args: "-a x -p 1 -g g -st 1", err: `"-st" is not a valid option`},
		{name: "missing -g", v: V09, args: "-a x -p 1", err: `option "-g (--group-name)" is required`},
		{name: "no operand", v: V09, args: "-a x -g g -p", err: `option "-p (--execution-parallel)" takes an operand`},
		{name: "not a number", v: V09, args: "-a x -g g -p four", err: `"four" is not a valid value for "-p (--execution-parallel)"`},
		{name: "int overflow", v: V09, args: "-a x -g g -p 9999999999", err: `not a valid value`},
		{name: "bare argument", v: V09, args: "-a x -p 1 -g g 2048", err: "no argument is allowed: 2048"},
		{name: "flag with a value", v: V09, args: "-a x -p 1 -g g -msm=true", err: "takes no value"},
		{name: "go-style flag", v: V09, args: "-a x -p 1 -g g --id u1", err: `"--id" is not a valid option`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.v, strings.Fields(tc.args), nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%s) error %v, want %q", tc.args, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s): %v", tc.args, err)
			}
			for k, v := range tc.want {
				if got, _ := p.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestParseExtra(t *testing.T) {
	extra := func(args []string) int {
		if args[0] == "--poll" && len(args) > 1 {
			return 2
		}
		return 0
	}
	p, err := Parse(V09, strings.Fields("-a x --poll 200ms -p 1 -g g"), extra)
	if err != nil || strings.Join(p.Rest, " ") != "--poll 200ms" || p.Values["-p"] != "1" {
		t.Fatalf("Parse with extra: %+v, %v", p, err)
	}
	if _, err := Parse(V09, strings.Fields("-a x -p 1 -g g --bogus"), extra); err == nil {
		t.Fatal("an option neither the optimizer nor extra knows was accepted")
	}
}

func mustVersion(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzParse: no panic, and an accepted command line has every required
// option with a value the optimizer could read.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-a x -p 1 -g g", "-a x -p 1 -g g -st 10 -msm", "--group-name=g -p=2 -a", "-p 1 -p", "-eds -dsp"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, line string, newest bool) {
		v := Version{0, 8, 1}
		if newest {
			v = V09
		}
		p, err := Parse(v, strings.Fields(line), nil)
		if err != nil {
			return
		}
		for _, o := range Options(v) {
			if _, ok := p.Values[o.Name]; o.Required && !ok {
				t.Fatalf("accepted %q without %s", line, o.Name)
			}
		}
		for k := range p.Values {
			if !Accepts(v, k) {
				t.Fatalf("accepted unknown %s in %q", k, line)
			}
		}
	})
}
