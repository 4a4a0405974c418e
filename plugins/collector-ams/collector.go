// Package collectorams is ebb's collector for Apache Amoro's management
// service (AMS). For one optimizer group it reports the task and table demand
// (the amoro_optimizer_group_* gauges, and the REST task lists where they are
// more exact), the registered optimizers with heartbeat staleness, and
// per-optimizer busy threads from the task lists of running processes.
//
// Every endpoint, field and rule used here comes from
// shared/reference/amoro.md; comments name the section and the Amoro source
// file it cites. A failure anywhere marks the snapshot incomplete with a
// reason naming the endpoint; it never turns into zeros.
package collectorams

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Name and Version identify the plugin.
const (
	Name    = "collector-ams"
	Version = "0.1.0"
)

// Auth types: AMS's http-server.rest-auth-type values for API clients
// (amoro.md §4.3), plus none for an AMS (or emulator) without auth.
const (
	AuthNone  = "none"
	AuthToken = "token"
	AuthBasic = "basic"
)

// Config is the plugin block's config. Secrets (secret, password) should
// come from env() in HCL; they never appear in logs, errors or snapshots.
type Config struct {
	URL               string       `json:"url"`
	Group             string       `json:"group"`
	AuthType          string       `json:"auth-type"`
	APIKey            string       `json:"api-key"`
	Secret            string       `json:"secret"`
	Username          string       `json:"username"`
	Password          string       `json:"password"`
	SignatureTimezone string       `json:"signature-timezone"`
	MetricsURL        string       `json:"metrics-url"`
	Timeout           sdk.Duration `json:"timeout"`
	HeartbeatTimeout  sdk.Duration `json:"heartbeat-timeout"`
	TLSInsecure       bool         `json:"tls-insecure-skip-verify"`
	CAFile            string       `json:"ca-file"`
	MaxTaskCalls      *int         `json:"max-task-calls"`
	PageSize          int          `json:"page-size"`
}

// Defaults.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxTaskCalls = 50
	DefaultPageSize     = 100
	// DefaultHeartbeatTimeout is AMS's optimizer.heart-beat-timeout (amoro.md §1.2).
	DefaultHeartbeatTimeout = time.Minute
)

// Collector implements sdk.Collector. It remembers, per group, when each
// optimizer was last seen busy, because AMS exposes no per-optimizer idle
// time (amoro.md §8.2, §8.4).
type Collector struct {
	now func() time.Time

	mu       sync.Mutex
	cfg      *Config
	loc      *time.Location
	client   *http.Client
	lastBusy map[string]map[string]time.Time // group -> worker id -> time
}

// New returns an unconfigured collector on the wall clock.
func New() *Collector { return NewWithClock(time.Now) }

// NewWithClock returns a collector that stamps snapshots with now(), for the
// simulator's virtual clock.
func NewWithClock(now func() time.Time) *Collector {
	return &Collector{now: now, lastBusy: map[string]map[string]time.Time{}}
}

var _ sdk.Collector = (*Collector)(nil)

// Info publishes the config schema.
func (c *Collector) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name: Name, Kind: sdk.KindCollector, Version: Version, ProtocolVersion: sdk.ProtocolVersion,
		ConfigSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "url", Type: sdk.TypeString, Required: true, Description: "AMS REST base URL, e.g. http://ams:19090 (http-server.bind-port)"},
			{Name: "group", Type: sdk.TypeString, Description: "optimizer group; defaults to the chain's target name"},
			{Name: "auth-type", Type: sdk.TypeString, Default: AuthNone, Description: "none, token (apiKey + signature) or basic"},
			{Name: "api-key", Type: sdk.TypeString, Description: "API key for auth-type token"},
			{Name: "secret", Type: sdk.TypeString, Sensitive: true, Description: "API secret for auth-type token; use env()"},
			{Name: "username", Type: sdk.TypeString, Description: "user for auth-type basic"},
			{Name: "password", Type: sdk.TypeString, Sensitive: true, Description: "password for auth-type basic; use env()"},
			{Name: "signature-timezone", Type: sdk.TypeString, Default: "UTC", Description: "AMS's time zone, for the date signed on requests without parameters"},
			{Name: "metrics-url", Type: sdk.TypeString, Description: "Prometheus exporter URL, e.g. http://ams:7001/metrics; empty skips the gauges"},
			{Name: "timeout", Type: sdk.TypeDuration, Default: DefaultTimeout.String(), Description: "per-request timeout"},
			{Name: "heartbeat-timeout", Type: sdk.TypeDuration, Default: DefaultHeartbeatTimeout.String(), Description: "AMS optimizer.heart-beat-timeout: an optimizer not heard from for longer is stale"},
			{Name: "tls-insecure-skip-verify", Type: sdk.TypeBool, Default: false, Description: "skip TLS certificate verification"},
			{Name: "ca-file", Type: sdk.TypeString, Description: "PEM file of CA certificates to trust"},
			{Name: "max-task-calls", Type: sdk.TypeNumber, Default: DefaultMaxTaskCalls, Description: "most REST calls per collection spent on task lists; beyond it busy threads are reported unknown"},
			{Name: "page-size", Type: sdk.TypeNumber, Default: DefaultPageSize, Description: "page size for AMS list endpoints"},
		}},
	}, nil
}

// Configure validates and applies the config.
func (c *Collector) Configure(_ context.Context, raw json.RawMessage) error {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return err
	}
	if cfg.AuthType == "" {
		cfg.AuthType = AuthNone
	}
	if cfg.SignatureTimezone == "" {
		cfg.SignatureTimezone = "UTC"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = sdk.Duration(DefaultTimeout)
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = sdk.Duration(DefaultHeartbeatTimeout)
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxTaskCalls == nil {
		n := DefaultMaxTaskCalls
		cfg.MaxTaskCalls = &n
	}
	if err := checkURL("url", cfg.URL, true); err != nil {
		return err
	}
	if err := checkURL("metrics-url", cfg.MetricsURL, false); err != nil {
		return err
	}
	switch cfg.AuthType {
	case AuthNone:
	case AuthToken:
		if cfg.APIKey == "" || cfg.Secret == "" {
			return errors.New("auth-type token needs api-key and secret")
		}
	case AuthBasic:
		if cfg.Username == "" || cfg.Password == "" {
			return errors.New("auth-type basic needs username and password")
		}
	default:
		return fmt.Errorf("auth-type %q: want none, token or basic", cfg.AuthType)
	}
	if *cfg.MaxTaskCalls < 0 {
		return fmt.Errorf("max-task-calls must not be negative, got %d", *cfg.MaxTaskCalls)
	}
	if cfg.PageSize < 1 || cfg.PageSize > 10000 {
		return fmt.Errorf("page-size must be between 1 and 10000, got %d", cfg.PageSize)
	}
	loc, err := time.LoadLocation(cfg.SignatureTimezone)
	if err != nil {
		return fmt.Errorf("signature-timezone %q: %w", cfg.SignatureTimezone, err)
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: cfg.TLSInsecure} //nolint:gosec // the user asked for it
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return fmt.Errorf("ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca-file %s: no PEM certificates found", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout.D()}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg, c.loc, c.client = &cfg, loc, client
	return nil
}

func checkURL(attr, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is required", attr)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q: want an http or https URL", attr, s)
	}
	if u.User != nil {
		return fmt.Errorf("%s: credentials in the URL are not allowed; use username/password or api-key/secret", attr)
	}
	return nil
}

// Collect observes one optimizer group. It returns an error only when the
// collector is not configured; every observation failure is an incomplete
// snapshot with reasons.
func (c *Collector) Collect(ctx context.Context, target sdk.Target) (sdk.Snapshot, error) {
	c.mu.Lock()
	cfg, loc, client := c.cfg, c.loc, c.client
	c.mu.Unlock()
	if cfg == nil {
		return sdk.Snapshot{}, errors.New("collector-ams: not configured")
	}
	group := cfg.Group
	if group == "" {
		group = target.Name
	}
	if group == "" {
		return sdk.Snapshot{}, errors.New("collector-ams: no optimizer group: set config group or the chain target")
	}
	api := &amsAPI{cfg: cfg, loc: loc, client: client, now: c.now}
	s := &collection{api: api, group: group, snap: sdk.Snapshot{ObservedAt: c.now(), Metrics: map[string]float64{}}}
	s.run(ctx)
	c.finishWorkers(s)
	snap := s.snap
	snap.Complete = len(snap.IncompleteReasons) == 0
	for i, r := range snap.IncompleteReasons {
		snap.IncompleteReasons[i] = api.redact(r)
	}
	return snap, nil
}

// collection is the work of one Collect call.
type collection struct {
	api   *amsAPI
	group string
	snap  sdk.Snapshot

	optimizers []optimizerInfo
	amsNow     time.Time // AMS's clock, from the Date header
	walk       taskWalk
	gauges     map[string]float64
}

func (s *collection) fail(format string, args ...any) {
	s.snap.IncompleteReasons = append(s.snap.IncompleteReasons, fmt.Sprintf(format, args...))
}

func (s *collection) run(ctx context.Context) {
	g := url.PathEscape(s.group)

	// The group must exist: an unknown group would otherwise read as a
	// group with nothing to do.
	if res, _, err := s.api.get(ctx, "/optimize/optimizerGroups", nil); err != nil {
		s.fail("GET /optimize/optimizerGroups: %v", err)
	} else {
		var groups []groupName
		if err := json.Unmarshal(res, &groups); err != nil {
			s.fail("GET /optimize/optimizerGroups: malformed result: %v", err)
		} else if !hasGroup(groups, s.group) {
			s.fail("optimizer group %q not found in AMS", s.group)
		}
	}

	// Registered optimizers (amoro.md §4.2, §8.2 "Instance inventory").
	opts, date, err := fetchAll[optimizerInfo](ctx, s.api, "/optimize/optimizerGroups/"+g+"/optimizers", nil, nil)
	if err != nil {
		s.fail("GET /optimize/optimizerGroups/%s/optimizers: %v", s.group, err)
	} else {
		s.optimizers = opts
		s.amsNow = date
	}

	// Gauges (amoro.md §5).
	if s.api.cfg.MetricsURL != "" {
		gauges, err := s.api.metrics(ctx, s.group)
		switch {
		case err != nil:
			s.fail("GET %s: %v", redactURL(s.api.cfg.MetricsURL), err)
		case len(gauges) == 0:
			s.fail("GET %s: no amoro_optimizer_group_* series with group=%q (reporter filter, or not the leader?)", redactURL(s.api.cfg.MetricsURL), s.group)
		default:
			s.gauges = gauges
			for k, v := range gauges {
				s.snap.Metrics[k] = v
			}
		}
	}

	// Task lists of running processes (amoro.md §8.2 "Per-optimizer idle
	// time": group tasks by optimizerToken).
	s.walk = walkTasks(ctx, s.api, s.group, *s.api.cfg.MaxTaskCalls)
	s.snap.Metrics["ams_task_list_calls"] = float64(s.walk.calls)
	if s.walk.err != nil {
		s.fail("task lists: %v", s.walk.err)
	}

	s.demand(ctx)
}

func hasGroup(groups []groupName, name string) bool {
	for _, g := range groups {
		if g.OptimizerGroupName == name {
			return true
		}
	}
	return false
}

// demand fills Demand: task counts from the task lists when they covered
// every running process (they split PLANNED from SCHEDULED, which the
// gauges cannot, amoro.md §8.2), else from the gauges; table counts from
// the gauges, else from the REST table list.
func (s *collection) demand(ctx context.Context) {
	d := &s.snap.Demand
	switch {
	case s.walk.complete:
		d.PlannedTasks, d.ScheduledTasks, d.RunningTasks = s.walk.planned, s.walk.scheduled, s.walk.acked
	case s.gauges != nil && hasAll(s.gauges, "amoro_optimizer_group_pending_tasks", "amoro_optimizer_group_executing_tasks"):
		// pending_tasks counts PLANNED + SCHEDULED (amoro.md §5.1); the
		// split is unknown, so all of it is reported as planned.
		d.PlannedTasks = int64(s.gauges["amoro_optimizer_group_pending_tasks"])
		d.RunningTasks = int64(s.gauges["amoro_optimizer_group_executing_tasks"])
	default:
		s.fail("task demand unknown: task lists incomplete and no optimizer-group gauges")
	}
	if s.gauges != nil && hasAll(s.gauges, "amoro_optimizer_group_pending_tables", "amoro_optimizer_group_planing_tables") {
		d.PendingTables = int64(s.gauges["amoro_optimizer_group_pending_tables"])
		d.PlanningTables = int64(s.gauges["amoro_optimizer_group_planing_tables"])
		return
	}
	// No gauges: count via the table list's `total` (amoro.md §8.2
	// "Cold-start / future demand").
	g := url.PathEscape(s.group)
	for _, x := range []struct {
		action string
		into   *int64
	}{{"pending", &d.PendingTables}, {"planning", &d.PlanningTables}} {
		n, err := countTables(ctx, s.api, g, x.action)
		if err != nil {
			s.fail("GET /optimize/optimizerGroups/%s/tables?actions[]=%s: %v", s.group, x.action, err)
			continue
		}
		*x.into = n
	}
}

func hasAll(m map[string]float64, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

// WorkerID derives a worker's id from its AMS token. The token is the
// optimizer's credential for the optimizing service (amoro.md §4.2 notes the
// REST list exposes it), so it never leaves the collector: ids are a hash.
func WorkerID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "opt-" + hex.EncodeToString(sum[:6])
}

func (c *Collector) finishWorkers(s *collection) {
	if s.optimizers == nil {
		return
	}
	ref := s.amsNow
	if ref.IsZero() {
		ref = s.snap.ObservedAt
	}
	hbTimeout := s.api.cfg.HeartbeatTimeout.D()
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := c.lastBusy[s.group]
	if seen == nil {
		seen = map[string]time.Time{}
	}
	next := map[string]time.Time{}
	stale := 0
	for _, o := range s.optimizers {
		id := WorkerID(o.Token)
		w := sdk.Worker{
			ID: id, Threads: int64(o.CoreNumber), State: sdk.WorkerRegistered,
			RegisteredAt: msTime(int64(o.StartTime)),
		}
		if o.JobID != nil {
			w.UnitID = *o.JobID
		}
		// OptimizerKeeper expires an optimizer heartbeat-timeout after its
		// last touch (amoro.md §2.4); until it does, the REST list still
		// shows it, so judge by touchTime against AMS's clock.
		if ref.Sub(msTime(int64(o.TouchTime))) > hbTimeout {
			w.State = sdk.WorkerStale
			stale++
		}
		last := seen[id]
		if t := s.walk.lastEnd[o.Token]; t.After(last) {
			last = t
		}
		if s.walk.complete {
			w.BusyKnown = true
		}
		w.BusyThreads = s.walk.busy[o.Token]
		if w.BusyThreads > 0 {
			last = s.snap.ObservedAt
		}
		w.LastBusyAt = last
		if !last.IsZero() {
			next[id] = last
		}
		s.snap.Workers = append(s.snap.Workers, w)
	}
	sort.Slice(s.snap.Workers, func(i, j int) bool { return s.snap.Workers[i].ID < s.snap.Workers[j].ID })
	c.lastBusy[s.group] = next
	s.snap.Metrics["ams_stale_optimizers"] = float64(stale)
}

func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
