package runner

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// ready adapts Runner.Ready to waitFor.
func ready(r *Runner) func() bool {
	return func() bool { ok, _ := r.Ready(); return ok }
}

// hangScript is a plugin that never finishes its start: its child sleeps
// and holds the output pipes after the script itself is killed.
const hangScript = "#!/bin/sh\nsleep 100000 &\nwait\n"

// replace swaps a plugin_dir entry for a file with content, or for the
// test plugin binary when content is empty.
func (e *env) replace(name, content string) {
	e.t.Helper()
	p := filepath.Join(e.pluginDir, name)
	tmp := p + ".new"
	var err error
	if content == "" {
		err = os.Symlink(sdktest.Build(e.t, "github.com/ebbscale/ebb/core/testdata/testplugin"), tmp)
	} else {
		err = os.WriteFile(tmp, []byte(content), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func chainStatus(r *Runner, name string) ChainStatus {
	for _, c := range r.Chains() {
		if c.Name == name {
			return c
		}
	}
	return ChainStatus{}
}

func TestChainWhosePluginHangsInItsStartIsFailedAndRecovers(t *testing.T) {
	e := newEnv(t)
	e.host = host.New(host.Options{Metrics: e.metrics, StartTimeout: 300 * time.Millisecond,
		Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	t.Cleanup(e.host.Close)
	r, stop := e.running(e.load(e.chainHCL("a", "t1", "30ms", "")), nil, nil)
	defer stop()
	waitFor(t, "first evaluation", ready(r))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	// The collector's binary is replaced by one that hangs, and its
	// process dies: the restart cannot finish.
	e.replace("test-collector", hangScript)
	inst := instanceOf(r, "collector")
	if err := syscall.Kill(inst.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "chain failed", func() bool { return chainStatus(r, "a").Status == "failed" })
	if s := chainStatus(r, "a"); !strings.Contains(s.Reason, "did not finish its start") {
		t.Errorf("reason %q does not say the plugin did not start", s.Reason)
	}
	_, list := getJSON(t, srv.URL+"/v1/chains")
	if c := list["chains"].([]any)[0].(map[string]any); c["status"] != "failed" || c["reason"] == "" {
		t.Errorf("/v1/chains: %v", c)
	}
	_, one := getJSON(t, srv.URL+"/v1/chains/a")
	if c := one["chain"].(map[string]any); c["status"] != "failed" {
		t.Errorf("/v1/chains/a: %v", c)
	}
	code, rd := getJSON(t, srv.URL+"/v1/ready")
	if failed, _ := rd["failed"].(map[string]any); code != http.StatusServiceUnavailable || failed["a"] == nil {
		t.Errorf("/v1/ready: %d %v", code, rd)
	}
	// Behind a token, a probe without one learns that something failed,
	// not what.
	guarded := httptest.NewServer(NewGuard(r.Handler(), GuardSettings{Token: "t0k"}))
	defer guarded.Close()
	code, rd = getJSON(t, guarded.URL+"/v1/ready")
	if code != http.StatusServiceUnavailable || rd["status"] != "failed" || rd["failed"] != nil {
		t.Errorf("/v1/ready without the token: %d %v", code, rd)
	}

	// Putting the real binary back recovers the chain at the next retry.
	e.replace("test-collector", "")
	waitFor(t, "chain running again", func() bool { return chainStatus(r, "a").Status == "running" })
	if code, rd := getJSON(t, srv.URL+"/v1/ready"); code != http.StatusOK {
		t.Errorf("/v1/ready after recovery: %d %v", code, rd)
	}
}

func TestShutdownAbandonsAPluginStart(t *testing.T) {
	e := newEnv(t)
	// A start timeout far beyond the test: only cancellation can end it.
	e.host = host.New(host.Options{Metrics: e.metrics, StartTimeout: time.Hour})
	t.Cleanup(e.host.Close)
	r, stop := e.running(e.load(e.chainHCL("a", "t1", "30ms", "")), nil, nil)
	waitFor(t, "first evaluation", ready(r))
	e.replace("test-collector", hangScript)
	if err := syscall.Kill(instanceOf(r, "collector").Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait until the restart is under way: the hanging script runs.
	waitFor(t, "the hanging plugin started", func() bool { return scriptRunning(filepath.Join(e.pluginDir, "test-collector")) })
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("shutdown waits for a plugin that hangs in its start")
	}
}

// scriptRunning reports whether a shell runs the script at path.
func scriptRunning(path string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err == nil && strings.HasSuffix(string(b), "sh\x00"+path+"\x00") {
			return true
		}
	}
	return false
}

func TestPluginRejectingItsConfigMarksTheChainFailedAndBacksOff(t *testing.T) {
	e := newEnv(t)
	// The realizer's directory cannot be created: its Configure fails at
	// run time, after the config loaded fine.
	blocker := filepath.Join(e.dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.units = filepath.Join(blocker, "units")
	var mu sync.Mutex
	var errs []error
	r, stop := e.running(e.load(e.chainHCL("a", "t1", "10ms", "")), nil, func(_ *Evaluation, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	})
	defer stop()
	waitFor(t, "a retry refused by the backoff", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			var bo *host.ErrBackingOff
			if errors.As(err, &bo) {
				return true
			}
		}
		return false
	})
	s := chainStatus(r, "a")
	if s.Status != "failed" || !strings.Contains(s.Reason, "rejected its configuration") {
		t.Fatalf("status %q, reason %q", s.Status, s.Reason)
	}
}
