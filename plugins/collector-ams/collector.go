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
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
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
	// DefaultPageSize: AMS builds the optimizer listing in memory and pages
	// it there (PageResult.of), and pages tables in the DB, so a large page
	// is cheap for it; 5,000 optimizers are 10 calls, not 50.
	DefaultPageSize = 500
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
	// groups remembers each group's last resource-group entry, so that one
	// failed listing does not hide that AMS scales the group itself.
	groups map[string]resourceGroup
}

// New returns an unconfigured collector on the wall clock.
func New() *Collector { return NewWithClock(time.Now) }

// NewWithClock returns a collector that stamps snapshots with now(), for the
// simulator's virtual clock.
func NewWithClock(now func() time.Time) *Collector {
	return &Collector{now: now, lastBusy: map[string]map[string]time.Time{}, groups: map[string]resourceGroup{}}
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
	client := newHTTPClient(tr, cfg.Timeout.D())

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
	c.conflict(s)
	c.finishWorkers(s)
	snap := s.snap
	snap.Conflict = api.redact(snap.Conflict)
	snap.Complete = len(snap.IncompleteReasons) == 0
	for i, r := range snap.IncompleteReasons {
		snap.IncompleteReasons[i] = api.redact(r)
	}
	return snap, nil
}
