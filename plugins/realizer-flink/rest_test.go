package flink

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	emu "github.com/ebbscale/ebb/emulator/flink"
	"github.com/ebbscale/ebb/sdk"
)

// flaky stands in front of the emulator like a proxy while the JobManager
// fails over: the first requests get an HTML 502, then requests pass.
type flaky struct {
	next  http.Handler
	fails atomic.Int64
	body  string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.fails.Add(-1) >= 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
		return
	}
	if f.body != "" {
		w.Write([]byte(f.body))
		return
	}
	f.next.ServeHTTP(w, r)
}

func TestTransientAndInvalidAnswers(t *testing.T) {
	e, err := emu.New(emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	fl := &flaky{next: e.Handler()}
	srv := httptest.NewServer(fl)
	t.Cleanup(srv.Close)
	r := configure(t, New(), map[string]any{"mode": "job", "rest-url": srv.URL})
	r.rc.delay = 0
	target := sdk.Target{Chain: "c", Name: "ebb-demo"}

	fl.fails.Store(3)
	mustContain(t, realize(t, r, target, "r1", sdk.Decision{DesiredCapacity: 3, Add: []sdk.UnitAdd{{UnitID: "a", Size: 1}}}), "rescaled in place")

	fl.fails.Store(100)
	_, err = r.Inventory(testCtx(t), target)
	wantErr(t, err, "HTTP 502: <html><body>502 Bad Gateway</body></html>")

	fl.fails.Store(0)
	fl.body = "not json"
	_, err = r.Inventory(testCtx(t), target)
	wantErr(t, err, "unexpected answer")
	if strings.Contains(err.Error(), "panic") {
		t.Fatal(err)
	}
}
