package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebbscale/ebb/core/kstate"
	"github.com/ebbscale/ebb/core/shard"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/emulator/ams"
	dra "github.com/ebbscale/ebb/plugins/evaluator-dra"
)

// The replicas scenario's numbers: short leases so that every hand-over
// plays out in seconds.
const (
	haChains        = 100
	haShards        = 32
	haInterval      = 2 * time.Second
	haLeaseDuration = 5 * time.Second
	haRenewDeadline = 3 * time.Second
)

// haConfig: 100 chains over collector-ams, evaluator-dra and
// realizer-process, whose units are plain sleeps: they never register with
// AMS, so evaluator-dra restarts each one every grace period and its state
// counts the restarts, the state a failover must not lose. All replicas
// share the realizer's state directory, as replicas share a cluster.
const haConfig = `
log {
  level = "debug"
  json  = true
}

state {
  backend        = "kubernetes"
  namespace      = "{{.NS}}"
  kubeconfig     = "{{.Kubeconfig}}"
  shards         = {{.Shards}}
  lease_duration = "5s"
  renew_deadline = "3s"
  retry_period   = "750ms"
  keep_decisions = 20
}

collector "ams" {
  plugin = "collector-ams"
  config {
    url               = "{{.AMS}}"
    metrics-url       = "{{.AMS}}/metrics"
    heartbeat-timeout = "5s"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "local" {
  plugin = "realizer-process"
  config {
    command       = ["/bin/sh", "-c", "echo {unit} $$ >> {{.Starts}}; exec {{.Sleep}} 600"]
    state-dir     = "{{.Units}}"
    drain-timeout = "2s"
  }
}
{{range .Groups}}
chain "{{.}}" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.local
  target     = "{{.}}"
  interval   = "2s"
  jitter     = "10%"
  policy {
    min-parallelism      = 1
    max-parallelism      = 1
    executor-parallelism = 1
    boot-timeout         = "1s"
    auto-restart {
      enabled     = true
      max-retries = 1000
      grace-period = "4s"
    }
  }
}
{{end}}
`

// TestReplicasShareChains is issue 19's failover story on a real API
// server: three `ebb run` replicas share 100 chains through shard Leases
// and keep their state in ConfigMaps. Every chain is evaluated; one replica
// is SIGKILLed and the others take its chains over with their state; the
// API server is stopped and restarted and nobody acts meanwhile; a replica
// frozen past its lease (SIGSTOP) acts on nothing it lost when it wakes.
// Throughout, each replica's log is its realize log: every committed round
// (the write that precedes realizing) with its replica, shard epoch and
// time, and every shard acquired and given up; no two replicas' holdings of
// a shard overlap, and no replica commits a round outside its holding.
func TestReplicasShareChains(t *testing.T) {
	long(t)
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep: %v", err)
	}
	c := startCluster(t)
	bin := ebbBinary(t)
	dir := t.TempDir()
	units := filepath.Join(dir, "units")
	startsFile := filepath.Join(dir, "starts")
	var groups []ams.GroupConfig
	var names []string
	for i := range haChains {
		name := fmt.Sprintf("g-%03d", i)
		names = append(names, name)
		groups = append(groups, ams.GroupConfig{Name: name})
	}
	emu, err := ams.New(ams.Options{Groups: groups, HeartbeatTimeout: amsHeartbeatTimeout})
	if err != nil {
		t.Fatal(err)
	}
	amsURL := serveAMS(t, emu)
	t.Cleanup(func() { killUnits(t, units) })

	kubeconfig := c.roleKubeconfig(t, dir, "runner-state-role.yaml",
		authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases"})
	cfg := render(t, haConfig, map[string]any{"NS": c.ns, "Kubeconfig": kubeconfig, "Shards": haShards,
		"AMS": amsURL, "Sleep": sleepBin, "Units": units, "Groups": names, "Starts": startsFile})
	ids := []string{"r1", "r2", "r3"}
	reps := map[string]*ebbRunner{}
	for _, id := range ids {
		rdir := filepath.Join(dir, id)
		if err := os.MkdirAll(rdir, 0o755); err != nil {
			t.Fatal(err)
		}
		r := newRunner(t, bin, rdir, cfg)
		r.extraEnv = []string{"POD_NAME=" + id}
		reps[id] = r
	}
	h := &haView{t: t, c: c, chains: names}
	killedAt := map[string]time.Time{}
	defer func() {
		if !t.Failed() {
			return
		}
		t.Logf("chain objects: %s", h.describe())
		// EBB_E2E_KEEP=DIR keeps the replicas' whole logs for a post-mortem.
		if keep := os.Getenv("EBB_E2E_KEEP"); keep != "" {
			for _, id := range ids {
				if b, err := os.ReadFile(reps[id].logPath); err == nil {
					_ = os.WriteFile(filepath.Join(keep, id+".log"), b, 0o644)
				}
			}
		}
	}()
	// Started together: loading 100 chains' policies takes a while on a
	// busy machine, and the replicas' leases sort themselves out anyway.
	for _, id := range ids {
		reps[id].launch()
	}
	for _, id := range ids {
		reps[id].awaitReady(2 * time.Minute)
	}

	// Every chain evaluated, the shards spread evenly (ceil(32/3) = 11 at
	// most each), and every replica's /v1/chains naming each chain's owner.
	waitFor(t, 60*time.Second, "every chain evaluated and the shards spread over three replicas", func() bool {
		docs := h.read()
		for _, name := range names {
			if d := docs[name]; d == nil || d.Seq < 2 {
				return false
			}
		}
		return h.balanced(reps, ids, 10, 11)
	}, func() string { return h.shardsOwned(reps, ids) })
	for _, id := range ids {
		var v struct {
			Chains []struct {
				Name, Owner string
			} `json:"chains"`
		}
		if err := reps[id].getJSON("/v1/chains", &v); err != nil {
			t.Fatal(err)
		}
		for _, ch := range v.Chains {
			if _, ok := reps[ch.Owner]; !ok {
				t.Errorf("%s: /v1/chains says chain %s is owned by %q", id, ch.Name, ch.Owner)
			}
		}
	}
	for _, id := range ids {
		if v, _, _ := reps[id].metric("ebb_shard_ownership_changes_total", map[string]string{"change": "acquired"}); v < 1 {
			t.Errorf("%s: ebb_shard_ownership_changes_total{change=acquired} = %v", id, v)
		}
	}

	// Let evaluator-dra restart every unit at least once, so that the
	// restart counts the takeover must keep are not all zero.
	waitFor(t, 40*time.Second, "every unit restarted at least once", func() bool {
		for _, d := range h.read() {
			if d.restarts() < 1 {
				return false
			}
		}
		return true
	}, nil)

	// SIGKILL r3: its chains go to r1 and r2 within a lease duration and an
	// interval (plus the lease round and the API calls), with their state.
	before := map[string]*haDoc{}
	for name, d := range h.read() {
		if d.Fence.Owner == "r3" {
			before[name] = d
		}
	}
	if len(before) == 0 {
		t.Fatal("r3 owns no chain")
	}
	killedAt["r3"] = time.Now()
	reps["r3"].kill()
	// The bound is generous for a busy machine: a replica sees the lease
	// expire a retry period late at worst, then claims and ticks.
	waitFor(t, haLeaseDuration+haInterval+15*time.Second, fmt.Sprintf("r3's %d chains taken over", len(before)), func() bool {
		docs := h.read()
		for name, b := range before {
			d := docs[name]
			if d.Fence.Owner == "r3" || d.Seq <= b.Seq {
				return false
			}
		}
		return true
	}, func() string { return h.shardsOwned(reps, ids[:2]) })
	kept := 0
	for name, b := range before {
		d := h.read()[name]
		was, now := b.dra(t), d.dra(t)
		// The evaluator may have replaced a unit meanwhile (next unit up by
		// one); a lost state would start over from unit 1 and no restarts.
		if now.NextSeq < was.NextSeq || len(now.Units) != 1 {
			t.Errorf("chain %s after takeover by %s: next unit %d, %d units; before: %d, %d (state lost?)", name, d.Fence.Owner, now.NextSeq, len(now.Units), was.NextSeq, len(was.Units))
		}
		for id, u := range was.Units {
			if n := now.Units[id]; n != nil && (n.Restarts < u.Restarts || !n.SeenAt.Equal(u.SeenAt)) {
				t.Errorf("chain %s unit %s after takeover: %+v; before: %+v (restart count or timers lost)", name, id, n, u)
			}
		}
		if now.Units[firstUnit(was)] != nil {
			kept++
		}
	}
	if kept < len(before)/2 {
		t.Errorf("only %d of r3's %d chains kept their unit through the takeover", kept, len(before))
	}

	// Stop the API server: once their renew deadline passes, nobody even
	// starts an evaluation, until it is back and the leases are taken anew.
	alive := []string{"r1", "r2"}
	stoppedAt := time.Now()
	if err := c.env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, haRenewDeadline+5*time.Second, "both replicas to give up their shards", func() bool {
		return h.owned(reps, alive) == 0
	}, func() string { return h.shardsOwned(reps, alive) })
	// Hold the API server down past a whole lease duration, so that any
	// replica still acting would show in the logs.
	time.Sleep(time.Until(stoppedAt.Add(haLeaseDuration + time.Second)))
	upAt := time.Now()
	if err := c.env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	quietFrom := stoppedAt.Add(haRenewDeadline + time.Second)
	for _, id := range alive {
		for _, e := range readLog(t, reps[id].logPath) {
			if (e.Msg == "decision" || e.Msg == "evaluation failed" || e.Msg == "round committed") && e.time().After(quietFrom) && e.time().Before(upAt) {
				t.Errorf("%s acted while the API server was down: %s at %s (stopped %s, renew deadline %s)", id, e.Msg, e.time().Format(time.StampMilli), stoppedAt.Format(time.StampMilli), haRenewDeadline)
			}
		}
	}
	seqs := map[string]uint64{}
	for name, d := range h.read() {
		seqs[name] = d.Seq
	}
	waitFor(t, 30*time.Second, "every chain evaluated again after the API server restart", func() bool {
		docs := h.read()
		for _, name := range names {
			if d := docs[name]; d == nil || d.Seq <= seqs[name] {
				return false
			}
		}
		return h.owned(reps, alive) == haShards
	}, func() string { return h.shardsOwned(reps, alive) })

	// Freeze r1 past its lease: r2 takes every shard. When r1 wakes, its
	// leases have lapsed on its own clock and the chains were claimed with a
	// newer epoch: it acts on none of them until it takes shards anew.
	pid := reps["r1"].pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := true
	defer func() {
		if frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	waitFor(t, 20*time.Second, "r2 to take all shards from the frozen r1", func() bool {
		return h.owned(reps, []string{"r2"}) == haShards
	}, func() string { return h.shardsOwned(reps, []string{"r2"}) })
	wokeAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen = false
	waitFor(t, 40*time.Second, "r1 to notice its lost shards and the two replicas to share them again", func() bool {
		lost := false
		for _, e := range readLog(t, reps["r1"].logPath) {
			lost = lost || (e.Msg == "shard lost" && e.time().After(wokeAt))
		}
		return lost && h.balanced(reps, alive, 16, 16)
	}, func() string { return h.shardsOwned(reps, alive) })
	if v, _, _ := reps["r2"].metric("ebb_shard_ownership_changes_total", map[string]string{"change": "released"}); v < 1 {
		t.Errorf("r2 handed no shard back when r1 returned (ebb_shard_ownership_changes_total{change=released} = %v)", v)
	}

	// Which units run, from the starts file (the units write one line each
	// to it when they start). evaluator-dra restarts every unit each grace
	// period, and a restart kills the old process before it starts the new
	// one, so a scan may find a unit between the two: scan until every unit
	// runs. Two processes of one unit at once, in any scan, is a unit
	// created twice.
	var starts map[string]int
	var running map[string][]string // unit -> pids of its processes still running
	twice := map[string]bool{}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		starts, running = map[string]int{}, map[string][]string{}
		if b, err := os.ReadFile(startsFile); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				u, pid, _ := strings.Cut(line, " ")
				starts[u]++
				// The shell execs sleep, so the pid it wrote is the unit's.
				if cmd, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil && strings.Contains(string(cmd), "sleep") {
					running[u] = append(running[u], pid)
				}
			}
		}
		for u, pids := range running {
			if len(pids) > 1 && !twice[u] {
				twice[u] = true
				t.Errorf("unit %s runs as %d processes at once (pids %v): created twice", u, len(pids), pids)
			}
		}
		if len(running) >= haChains || time.Now().After(deadline) {
			break
		}
	}
	if len(running) < haChains {
		t.Errorf("%d units run at the end, want one per chain (%d)", len(running), haChains)
	}

	// The realize logs, read after the starts (a start's round is logged
	// before it is realized): holdings never overlap, every commit inside
	// its replica's holding.
	logs := map[string][]logEvent{}
	for _, id := range ids {
		logs[id] = readLog(t, reps[id].logPath)
	}
	commits := checkExclusive(t, logs, killedAt, haShards)
	for _, id := range ids {
		if commits[id] == 0 {
			t.Errorf("%s committed no round", id)
		}
	}

	// No unit created twice: every start of a unit's process (the units
	// write one line each to the starts file) is an add or a restart of it
	// that a committed round decided (and checkExclusive put every commit
	// inside its replica's holding); and each chain ends with the one unit
	// its floor wants, in the evaluator's state and on the platform (the pid
	// files). An add is repeated while the unit is not in the inventory
	// yet, so it may permit a start that the realizer then does not make.
	decided := map[string]int{}
	for _, id := range ids {
		for _, e := range logs[id] {
			// Committed is logged before realizing: a replica killed
			// while realizing has still logged its round.
			if e.Msg == "round committed" {
				for _, u := range decidedStarts(e.Summary) {
					decided[u]++
				}
			}
		}
	}
	if len(starts) < haChains {
		t.Errorf("the starts file names %d units, want at least %d", len(starts), haChains)
	}
	for u, n := range starts {
		if n > decided[u] {
			t.Errorf("unit %s started %d times, with %d adds and restarts decided: created twice", u, n, decided[u])
		}
	}
	docs := h.read()
	for _, name := range names {
		if d := docs[name].dra(t); len(d.Units) != 1 {
			t.Errorf("chain %s: evaluator holds %d units; want exactly one", name, len(d.Units))
		}
	}
	perChain := map[string]map[string]bool{}
	for _, u := range pidFiles(t, units) {
		if perChain[u.Chain] == nil {
			perChain[u.Chain] = map[string]bool{}
		}
		perChain[u.Chain][u.Unit] = true
	}
	for _, name := range names {
		if len(perChain[name]) != 1 {
			t.Errorf("chain %s: realizer-process has units %v; want exactly one", name, perChain[name])
		}
	}
}

// serveAMS serves an emulator over real HTTP, as startAMS does for one group.
func serveAMS(t *testing.T, emu *ams.Emulator) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/metrics", emu.MetricsHandler())
	mux.Handle("/", emu.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// --- the chains' objects, read as an operator would ---

type haView struct {
	t      *testing.T
	c      *cluster
	chains []string
}

// haDoc is a chain's ConfigMap decoded.
type haDoc struct {
	Fence kstate.Token
	Seq   uint64
	State state.ChainState
}

// dra decodes the chain's evaluator-dra state (binary since its 0.2.0)
// with the evaluator's own decoder.
func (d *haDoc) dra(t *testing.T) *dra.State {
	if d == nil || len(d.State["dra"]) == 0 {
		return &dra.State{}
	}
	s, err := dra.DecodeState(d.State["dra"])
	if err != nil {
		t.Fatalf("evaluator state: %v", err)
	}
	return s
}

func firstUnit(s *dra.State) string {
	for id := range s.Units {
		return id
	}
	return ""
}

func (d *haDoc) restarts() int64 {
	if len(d.State["dra"]) == 0 {
		return 0
	}
	s, err := dra.DecodeState(d.State["dra"])
	if err != nil {
		return 0
	}
	var n int64
	for _, u := range s.Units {
		n += u.Restarts
	}
	return n
}

// read lists the chains' ConfigMaps; a chain without one is missing. An
// API server that does not answer reads as nothing.
func (h *haView) read() map[string]*haDoc {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := h.c.kube.CoreV1().ConfigMaps(h.c.ns).List(ctx, metav1.ListOptions{
		LabelSelector: kstate.LabelRole + "=" + kstate.RoleChainState})
	out := map[string]*haDoc{}
	if err != nil {
		return out
	}
	for _, cm := range list.Items {
		d := &haDoc{}
		if err := json.Unmarshal([]byte(cm.Data["fence"]), &d.Fence); err != nil {
			h.t.Fatalf("%s: fence: %v", cm.Name, err)
		}
		if err := json.Unmarshal([]byte(cm.Data["state"]), &d.State); err != nil {
			h.t.Fatalf("%s: state: %v", cm.Name, err)
		}
		d.Seq, _ = strconv.ParseUint(cm.Data["seq"], 10, 64)
		out[cm.Data["chain"]] = d
	}
	return out
}

func (h *haView) describe() string {
	var b strings.Builder
	for name, d := range h.read() {
		fmt.Fprintf(&b, "\n  %s: %+v seq %d restarts %d", name, d.Fence, d.Seq, d.restarts())
	}
	return b.String()
}

// owned sums ebb_shards_owned over the replicas.
func (h *haView) owned(reps map[string]*ebbRunner, ids []string) int {
	n := 0
	for _, id := range ids {
		v, _, _ := reps[id].metric("ebb_shards_owned", nil)
		n += int(v)
	}
	return n
}

// balanced is true when the replicas hold all shards, each from lo to hi.
func (h *haView) balanced(reps map[string]*ebbRunner, ids []string, lo, hi int) bool {
	total := 0
	for _, id := range ids {
		v, ok, err := reps[id].metric("ebb_shards_owned", nil)
		if err != nil || !ok || int(v) < lo || int(v) > hi {
			return false
		}
		total += int(v)
	}
	return total == haShards
}

func (h *haView) shardsOwned(reps map[string]*ebbRunner, ids []string) string {
	var parts []string
	for _, id := range ids {
		v, _, err := reps[id].metric("ebb_shards_owned", nil)
		parts = append(parts, fmt.Sprintf("%s owns %v shards (%v)", id, v, err))
	}
	return strings.Join(parts, ", ")
}

// --- the realize logs ---

// logEvent is one JSON line of a runner's log.
type logEvent struct {
	Msg   string `json:"@message"`
	TS    string `json:"@timestamp"`
	Chain string `json:"chain"`
	Shard *int   `json:"shard"`
	Epoch int64  `json:"epoch"`
	Owner string `json:"owner"`
	At    string `json:"at"`
	Until string `json:"until"`
	// Summary is a committed round's decision.
	Summary string `json:"summary"`
}

// decidedStarts lists the units a decision's summary (sdk.Decision.Summary)
// adds or restarts: "+2 units (u-1,u-2); restart u-3,u-4".
func decidedStarts(summary string) []string {
	var out []string
	for _, m := range decidedUnits.FindAllStringSubmatch(summary, -1) {
		out = append(out, strings.Split(m[1]+m[2], ",")...)
	}
	return out
}

var decidedUnits = regexp.MustCompile(`\+\d+ units? \(([^)]+)\)|restart ([^ ;]+)`)

func (e logEvent) time() time.Time {
	ts, _ := time.Parse(time.RFC3339Nano, e.TS)
	return ts
}

func parseAt(s string) time.Time {
	ts, _ := time.Parse(time.RFC3339Nano, s)
	return ts
}

// readLog reads a runner's JSON log; other lines (the harness's) are skipped.
func readLog(t *testing.T, path string) []logEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []logEvent
	for _, line := range strings.Split(string(b), "\n") {
		var e logEvent
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		out = append(out, e)
	}
	return out
}

type holding struct {
	id         string
	from, till time.Time
	epoch      int64
}

// checkExclusive checks the replicas' logs: for every shard, the holdings
// (from "shard acquired" to the "until" of its release or loss; a killed
// replica's open ones end when it was killed) of different replicas do not
// overlap, and every round a replica committed lies within its holding of
// the chain's shard. It returns the commits per replica.
func checkExclusive(t *testing.T, logs map[string][]logEvent, killedAt map[string]time.Time, shards int) map[string]int {
	t.Helper()
	now := time.Now()
	held := map[int][]holding{}
	commits := map[string]int{}
	for id, events := range logs {
		open := map[int]*holding{}
		for _, e := range events {
			switch e.Msg {
			case "shard acquired":
				open[*e.Shard] = &holding{id: id, from: parseAt(e.At), epoch: e.Epoch}
			case "shard released", "shard lost":
				if h := open[*e.Shard]; h != nil {
					h.till = parseAt(e.Until)
					held[*e.Shard] = append(held[*e.Shard], *h)
					delete(open, *e.Shard)
				}
			}
		}
		end := now
		if k, ok := killedAt[id]; ok {
			end = k
		}
		for s, h := range open {
			h.till = end
			held[s] = append(held[s], *h)
		}
	}
	for s, hs := range held {
		for i, a := range hs {
			for _, b := range hs[i+1:] {
				if a.id != b.id && a.from.Before(b.till) && b.from.Before(a.till) {
					t.Errorf("shard %d held by %s (epoch %d, %s to %s) and %s (epoch %d, %s to %s) at once", s,
						a.id, a.epoch, a.from.Format(time.StampMilli), a.till.Format(time.StampMilli),
						b.id, b.epoch, b.from.Format(time.StampMilli), b.till.Format(time.StampMilli))
				}
			}
		}
	}
	for id, events := range logs {
		for _, e := range events {
			if e.Msg != "round committed" {
				continue
			}
			commits[id]++
			s, at := shard.Of(e.Chain, shards), parseAt(e.At)
			inside := false
			for _, h := range held[s] {
				inside = inside || (h.id == id && h.epoch == e.Epoch && !at.Before(h.from) && at.Before(h.till))
			}
			if !inside {
				t.Errorf("%s committed a round of chain %s (shard %d, epoch %d) at %s outside its holding of the shard", id, e.Chain, s, e.Epoch, at.Format(time.StampMilli))
			}
		}
	}
	return commits
}

// --- the units ---

type pidFile struct {
	Unit  string `json:"unit"`
	Chain string `json:"chain"`
	Pid   int    `json:"pid"`
}

func pidFiles(t *testing.T, dir string) []pidFile {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "units", "*.json"))
	var out []pidFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var u pidFile
		if json.Unmarshal(b, &u) == nil {
			out = append(out, u)
		}
	}
	return out
}

// killUnits ends the units' process groups, which outlive the runners by
// design.
func killUnits(t *testing.T, dir string) {
	for _, u := range pidFiles(t, dir) {
		if u.Pid > 1 {
			_ = syscall.Kill(-u.Pid, syscall.SIGKILL)
		}
	}
}

func TestDecidedStarts(t *testing.T) {
	for summary, want := range map[string]string{
		"+1 unit (g-010-1)":                   "g-010-1",
		"+2 units (u-1,u-2); restart u-3,u-4": "u-1 u-2 u-3 u-4",
		"drain u-1; restart u-2":              "u-2",
		"no action":                           "",
	} {
		if got := strings.Join(decidedStarts(summary), " "); got != want {
			t.Errorf("decidedStarts(%q) = %q, want %q", summary, got, want)
		}
	}
}
