package sim_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/sim"
)

func TestParseTraceErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "t.csv:1: empty trace"},
		{"submit\n1\n", `t.csv:1: missing required column "duration"`},
		{"submit,duration,tabel\n", `t.csv:1: unknown column "tabel"`},
		{"submit,duration\n", "t.csv:2: trace has a header but no rows"},
		{"submit,duration\n1,2\nx,2\n", `t.csv:3: submit: "x" is not a number of seconds`},
		{"submit,duration\n1,2\n1,-2\n", `t.csv:3: duration: "-2" must be between 0 and 1e9 seconds`},
		{"submit,duration\n1,2\n1,2,3\n", "t.csv:3: wrong number of fields"},
		{"submit,duration,table,quota\n1,2,a,0\n", `t.csv:2: quota: "0" must be a number above 0`},
		{"submit,duration,table,quota\n1,2,,1\n", "t.csv:2: quota: a quota needs a table"},
		{"submit,duration,table,quota\n1,2,a,1\n1,2,a,3\n", "t.csv:3: quota: table a already has quota 1"},
		{"submit,duration,table\n1,2,a..b\n", `t.csv:2: table: "a..b" has an empty part`},
	} {
		_, err := sim.ParseTrace("t.csv", strings.NewReader(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to start with %q", tc.in, err, tc.want)
		}
	}
}

func TestTraceRoundTrip(t *testing.T) {
	rows, err := sim.Generate("storm", 1, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rows[0].Quota = 2
	for i := range rows {
		if rows[i].Table == rows[0].Table {
			rows[i].Quota = 2
		}
	}
	var b bytes.Buffer
	if err := sim.WriteTrace(&b, rows); err != nil {
		t.Fatal(err)
	}
	back, err := sim.ParseTrace("x", &b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, back) {
		t.Error("rows differ after writing and reading back")
	}
}

func TestGenerateIsSeeded(t *testing.T) {
	for _, shape := range sim.ShapeNames() {
		a, err := sim.Generate(shape, 5, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sim.Generate(shape, 5, 0)
		c, _ := sim.Generate(shape, 6, 0)
		if len(a) == 0 || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: empty, or two runs of seed 5 differ", shape)
		}
		if reflect.DeepEqual(a, c) {
			t.Errorf("%s: seeds 5 and 6 give the same trace", shape)
		}
	}
}

// FuzzParseTrace: any input gives rows or an error naming the file, never a
// panic, and rows always come back sorted with sane values.
func FuzzParseTrace(f *testing.F) {
	for _, s := range []string{
		"submit,duration\n0,1\n",
		"submit,duration,table,quota\n0,1,a,2\n5,0.5,db.b,\n",
		"\ufeffSubmit, Duration ,Table\n1e3,2,c.d.e\n",
		"submit,duration\n\"1\",\"2\n",
		"duration,submit\n1,NaN\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := sim.ParseTrace("f.csv", strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.csv:") {
				t.Fatalf("error without the place: %v", err)
			}
			return
		}
		for i, r := range rows {
			if r.Submit < 0 || r.Duration < 0 || (i > 0 && r.Submit < rows[i-1].Submit) {
				t.Fatalf("row %d: %+v", i, r)
			}
		}
	})
}
