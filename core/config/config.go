package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/ebbscale/ebb/sdk"
)

// Defaults for the top-level settings.
const (
	DefaultHTTPAddress = "127.0.0.1:9464"
	DefaultStatePath   = "ebb.db"
	DefaultLogLevel    = "info"
	DefaultInterval    = 30 * time.Second
)

// Errors a Resolver wraps so that Load can point at the attribute at fault:
// ErrChecksumMismatch is reported at `sha256`, anything else at `plugin`.
var (
	ErrUnknownPlugin    = errors.New("unknown plugin")
	ErrChecksumMismatch = errors.New("checksum mismatch")
)

// Resolver finds the plugins a configuration names. The runner implements it
// with real plugin processes; Load needs it to learn each plugin's schemas.
type Resolver interface {
	// Info starts or looks up the plugin named in a block and returns its info. sha256 is the pin from the
	// block (hex, may be ""). Errors: unknown plugin, checksum mismatch, failed to start.
	Info(kind sdk.Kind, plugin, sha256 string) (sdk.Info, error)
	// ValidatePolicy asks an evaluator plugin to check a decoded policy.
	ValidatePolicy(plugin string, policy json.RawMessage) ([]sdk.PolicyProblem, error)
}

// PluginDirSetter is implemented by a Resolver that looks for external
// plugin binaries in the configured plugin_dir. Load calls SetPluginDir with
// the absolute directory before the first Info call, because the directory is
// itself part of the configuration being loaded. An error (the directory does
// not exist) is reported at plugin_dir.
type PluginDirSetter interface {
	SetPluginDir(dir string) error
}

// ConfigValidator is implemented by a Resolver that can ask a plugin to
// check its decoded `config { }` beyond what the schema says (the runner's
// host can). Load reports each problem at the attribute it names.
type ConfigValidator interface {
	ValidateConfig(kind sdk.Kind, plugin, sha256 string, config json.RawMessage) ([]sdk.Problem, error)
}

// Config is a loaded, fully validated configuration.
type Config struct {
	// PluginDir is absolute, or empty when plugin_dir is not set (builtin
	// plugins only).
	PluginDir string
	StatePath string
	// KeepDecisions and KeepFor bound each chain's decision log: at most
	// that many records, none older than that (state block: keep_decisions,
	// keep_for).
	KeepDecisions int
	KeepFor       time.Duration
	// State is the state backend; StatePath is the bbolt backend's file.
	State       StateBackend
	HTTPAddress string
	// HTTPToken, when set, is the bearer token the HTTP API and /metrics
	// require. Sensitive: never logged.
	HTTPToken string
	// HTTPAllowedHosts are host names, beyond IP addresses and localhost,
	// that requests may name in their Host header.
	HTTPAllowedHosts []string
	LogLevel         string
	LogJSON          bool

	Collectors, Evaluators, Realizers map[string]*PluginBlock
	// Chains are in file order.
	Chains []*Chain
	Path   string

	// byName indexes Chains once loaded: the runner looks chains up by
	// name for every block user, 10,000 of them.
	byName map[string]*Chain
}

// PluginBlock is one `collector`, `evaluator` or `realizer` block.
type PluginBlock struct {
	Kind    sdk.Kind
	Name    string
	Plugin  string
	SHA256  string
	Timeout time.Duration
	// Config is the decoded `config { }` as a JSON object, defaults filled in.
	Config json.RawMessage
	Info   sdk.Info
	Range  hcl.Range
	// UsedBy lists the chains that reference this block, in file order.
	UsedBy []string

	// configBody and configAt locate the decoded config, for the
	// plugin's own validation; configBody is nil when decoding failed.
	configBody hcl.Body
	configAt   hcl.Range
}

// Chain is one `chain` block: collectors feed evaluators, whose decision one
// realizer carries out on the target.
type Chain struct {
	Name string
	// Collectors and Evaluators are block names, in the order written.
	Collectors, Evaluators []string
	Realizer               string
	Target                 string
	Interval               time.Duration
	// Jitter is the spread of the chain's fixed phase within its interval
	// (the runner spreads over the whole interval when it is 0).
	Jitter         time.Duration
	Timeout        time.Duration
	MaxSnapshotAge time.Duration
	Enabled        bool
	// Policy maps an evaluator block name to the JSON of its own policy keys.
	Policy map[string]json.RawMessage
	// Fingerprint changes whenever anything that defines the chain changes,
	// including the config of the plugin blocks it references.
	Fingerprint string
	Range       hcl.Range
	// intervalAt is the interval attribute's value, when written.
	intervalAt hcl.Range
}

// Block returns the plugin block of the given kind and name, or nil.
func (c *Config) Block(kind sdk.Kind, name string) *PluginBlock {
	switch kind {
	case sdk.KindCollector:
		return c.Collectors[name]
	case sdk.KindEvaluator:
		return c.Evaluators[name]
	case sdk.KindRealizer:
		return c.Realizers[name]
	}
	return nil
}

// Chain returns the chain with the given name, or nil.
func (c *Config) Chain(name string) *Chain {
	if c.byName != nil && len(c.byName) == len(c.Chains) {
		return c.byName[name]
	}
	for _, ch := range c.Chains {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

// Redacted returns the decoded config with every sensitive value replaced,
// for logs and the decision log.
func (b *PluginBlock) Redacted() map[string]any {
	var obj map[string]any
	if err := json.Unmarshal(b.Config, &obj); err != nil || obj == nil {
		return map[string]any{}
	}
	return b.Info.ConfigSchema.Redact(obj)
}

// Load reads and decodes the configuration file at path. vars are the
// command line's -var overrides. The Config is nil when the diagnostics hold
// an error.
func Load(path string, vars map[string]string, r Resolver) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration",
			Detail:   fmt.Sprintf("reading %s: %v", path, err),
		}}
	}
	return Parse(src, path, vars, r)
}

// Parse decodes configuration source. filename names it in diagnostics, and
// its directory is where relative paths resolve.
func Parse(src []byte, filename string, vars map[string]string, r Resolver) (*Config, hcl.Diagnostics) {
	if r == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No plugin resolver", Detail: "config.Parse needs a Resolver to learn plugin schemas"}}
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		// A partial syntax tree yields confusing follow-on errors; the
		// syntax errors alone say what to fix.
		diags = sortDiags(diags)
		return nil, diags
	}
	if d := checkNumbers(file.Body); d.HasErrors() {
		return nil, sortDiags(d)
	}
	l := &loader{
		src:      src,
		policies: map[string]map[string]json.RawMessage{},
		filename: filename,
		dir:      filepath.Dir(filename),
		resolver: r,
		cfg: &Config{
			Path:       filename,
			Collectors: map[string]*PluginBlock{},
			Evaluators: map[string]*PluginBlock{},
			Realizers:  map[string]*PluginBlock{},
		},
	}
	diags = append(diags, l.load(file.Body, vars)...)
	diags = sortDiags(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	l.cfg.byName = make(map[string]*Chain, len(l.cfg.Chains))
	for _, ch := range l.cfg.Chains {
		l.cfg.byName[ch.Name] = ch
	}
	return l.cfg, diags
}

// loader holds the state of one Parse.
type loader struct {
	filename string
	dir      string
	resolver Resolver
	cfg      *Config
	vars     map[string]cty.Value
	// blocks keeps plugin blocks per kind in file order, for deterministic
	// iteration and warnings.
	blocks map[sdk.Kind][]*PluginBlock
	// mentioned holds the blocks some chain expression names, picked or
	// not; only the others are reported as unused.
	mentioned map[*PluginBlock]bool
	// src is the file's text; policies holds the decoded policies by
	// their text, and checks the policies to validate (policycheck.go).
	src      []byte
	policies map[string]map[string]json.RawMessage
	checks   []policyCheck
	// blockPrints are the plugin blocks' parts of chain fingerprints.
	blockPrints map[*PluginBlock]string
}

var topSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "plugin_dir"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "state"},
		{Type: "http"},
		{Type: "log"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "collector", LabelNames: []string{"name"}},
		{Type: "evaluator", LabelNames: []string{"name"}},
		{Type: "realizer", LabelNames: []string{"name"}},
		{Type: "chain", LabelNames: []string{"name"}},
	},
}

func (l *loader) load(body hcl.Body, overrides map[string]string) hcl.Diagnostics {
	content, diags := body.Content(topSchema)
	suggest(diags, topSchema)

	vars, d := l.variables(content.Blocks.OfType("variable"), overrides)
	diags = append(diags, d...)
	l.vars = vars
	ctx := l.evalContext(nil)

	diags = append(diags, l.settings(content, ctx)...)
	if ps, ok := l.resolver.(PluginDirSetter); ok && l.cfg.PluginDir != "" {
		if err := ps.SetPluginDir(l.cfg.PluginDir); err != nil {
			diags = append(diags, attrError(content.Attributes["plugin_dir"], "Invalid plugin_dir", err.Error()+"."))
		}
	}

	l.blocks = map[sdk.Kind][]*PluginBlock{}
	l.mentioned = map[*PluginBlock]bool{}
	diags = append(diags, l.pluginBlocks(content.Blocks, ctx)...)
	diags = append(diags, l.chains(content.Blocks.OfType("chain"))...)
	diags = append(diags, l.validatePolicies()...)
	diags = append(diags, l.validateConfigs()...)

	start := hcl.Range{Filename: l.filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	if len(content.Blocks) == 0 && len(content.Attributes) == 0 {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Empty configuration",
			Detail:   "The file defines nothing: ebb needs at least one chain with its collector, evaluator and realizer blocks (see the README's config.hcl).",
			Subject:  &start,
		})
	}
	if diags.HasErrors() {
		// Unused-block warnings would bury the errors that matter.
		return diags
	}
	diags = append(diags, l.slowCollections()...)
	if len(l.cfg.Chains) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "No chains",
			Detail:   "The configuration defines no chain block, so ebb run would scale nothing.",
			Subject:  &start,
		})
	}
	for _, kind := range []sdk.Kind{sdk.KindCollector, sdk.KindEvaluator, sdk.KindRealizer} {
		for _, b := range l.blocks[kind] {
			if len(b.UsedBy) == 0 && !l.mentioned[b] {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  fmt.Sprintf("Unused %s", kind),
					Detail:   fmt.Sprintf("%s %q is not referenced by any chain.", kind, b.Name),
					Subject:  b.Range.Ptr(),
				})
			}
		}
	}
	return diags
}

// settings decodes plugin_dir and the state, http and log blocks.
func (l *loader) settings(content *hcl.BodyContent, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	cfg := l.cfg
	cfg.StatePath = l.abs(DefaultStatePath)
	cfg.KeepDecisions, cfg.KeepFor = DefaultKeepDecisions, DefaultKeepFor
	cfg.HTTPAddress = DefaultHTTPAddress
	cfg.LogLevel = DefaultLogLevel

	if a, ok := content.Attributes["plugin_dir"]; ok {
		if s, d := evalString(a, ctx); !d.HasErrors() {
			if s == "" {
				diags = append(diags, attrError(a, "Invalid plugin_dir", "plugin_dir must not be empty; leave it out to use builtin plugins only."))
			} else {
				cfg.PluginDir = l.abs(s)
			}
		} else {
			diags = append(diags, d...)
		}
	}

	single := func(typ string) *hcl.Block {
		blocks := content.Blocks.OfType(typ)
		for _, b := range blocks[min(1, len(blocks)):] {
			diags = append(diags, duplicateBlock(typ, b, blocks[0]))
		}
		if len(blocks) == 0 {
			return nil
		}
		return blocks[0]
	}

	cfg.State = defaultStateBackend
	if b := single("state"); b != nil {
		diags = append(diags, l.stateBlock(b, ctx)...)
	}
	if b := single("http"); b != nil {
		attrs, d := blockAttrs(b, "address", "token", "allowed_hosts")
		diags = append(diags, d...)
		diags = append(diags, httpGuard(cfg, attrs, ctx)...)
		if a, ok := attrs["address"]; ok {
			s, d := evalString(a, ctx)
			diags = append(diags, d...)
			if !d.HasErrors() {
				if _, _, err := net.SplitHostPort(s); err != nil {
					diags = append(diags, attrError(a, "Invalid HTTP address", fmt.Sprintf("address %q must be host:port, such as %q: %v.", s, DefaultHTTPAddress, err)))
				} else {
					cfg.HTTPAddress = s
				}
			}
		}
	}
	if b := single("log"); b != nil {
		attrs, d := blockAttrs(b, "level", "json")
		diags = append(diags, d...)
		if a, ok := attrs["level"]; ok {
			s, d := evalString(a, ctx)
			diags = append(diags, d...)
			levels := []string{"trace", "debug", "info", "warn", "error"}
			if !d.HasErrors() {
				if lv := strings.ToLower(s); slices.Contains(levels, lv) {
					cfg.LogLevel = lv
				} else {
					diags = append(diags, attrError(a, "Invalid log level", fmt.Sprintf("level %q is not one of %s.", s, strings.Join(levels, ", "))))
				}
			}
		}
		if a, ok := attrs["json"]; ok {
			v, d := evalBool(a, ctx)
			diags = append(diags, d...)
			cfg.LogJSON = v
		}
	}
	return diags
}

// abs resolves a path against the configuration file's directory.
func (l *loader) abs(p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.dir, p)
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// blockAttrs decodes a block that holds only the named optional attributes.
func blockAttrs(b *hcl.Block, names ...string) (hcl.Attributes, hcl.Diagnostics) {
	schema := &hcl.BodySchema{}
	for _, n := range names {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: n})
	}
	content, diags := b.Body.Content(schema)
	suggest(diags, schema)
	return content.Attributes, diags
}

// pluginBlocks decodes the collector, evaluator and realizer blocks.
func (l *loader) pluginBlocks(all hcl.Blocks, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	type job struct {
		kind  sdk.Kind
		blk   *hcl.Block
		pb    *PluginBlock
		diags hcl.Diagnostics
	}
	var jobs []*job
	for _, kind := range []sdk.Kind{sdk.KindCollector, sdk.KindEvaluator, sdk.KindRealizer} {
		seen := map[string]*hcl.Block{}
		for _, blk := range all.OfType(kind.String()) {
			name := blk.Labels[0]
			if !hclsyntax.ValidIdentifier(name) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Invalid %s name", kind),
					Detail:   fmt.Sprintf("%q is not a valid name: chains refer to it as %s.NAME, so use letters, digits, underscores and dashes, starting with a letter.", name, kind),
					Subject:  blk.LabelRanges[0].Ptr(),
				})
				continue
			}
			if first, ok := seen[name]; ok {
				diags = append(diags, duplicateName(kind.String(), name, "defined", first, blk))
				continue
			}
			seen[name] = blk
			jobs = append(jobs, &job{kind: kind, blk: blk})
		}
	}
	for _, j := range jobs {
		// One at a time: starting a configuration's plugins side by side
		// saves little on two cores and makes each start slower, and a
		// start has its deadline.
		j.pb, j.diags = l.pluginBlock(j.kind, j.blk, ctx)
		diags = append(diags, j.diags...)
		l.blocks[j.kind] = append(l.blocks[j.kind], j.pb)
		switch j.kind {
		case sdk.KindCollector:
			l.cfg.Collectors[j.pb.Name] = j.pb
		case sdk.KindEvaluator:
			l.cfg.Evaluators[j.pb.Name] = j.pb
		case sdk.KindRealizer:
			l.cfg.Realizers[j.pb.Name] = j.pb
		}
	}
	return diags
}

var pluginBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "plugin"}, {Name: "sha256"}, {Name: "timeout"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "config"}},
}

// pluginBlock decodes one plugin block. The returned block is never nil, so
// that chains referencing it are checked even when the block has errors;
// resolved tells whether its Info is usable.
func (l *loader) pluginBlock(kind sdk.Kind, blk *hcl.Block, ctx *hcl.EvalContext) (*PluginBlock, hcl.Diagnostics) {
	pb := &PluginBlock{Kind: kind, Name: blk.Labels[0], Range: blk.DefRange}
	content, diags := blk.Body.Content(pluginBlockSchema)
	suggest(diags, pluginBlockSchema)

	pluginAttr, ok := content.Attributes["plugin"]
	if !ok {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing required argument",
			Detail:   fmt.Sprintf("%s %q needs plugin = \"NAME\", the plugin to run.", kind, pb.Name),
			Subject:  blk.DefRange.Ptr(),
		})
	} else {
		s, d := evalString(pluginAttr, ctx)
		diags = append(diags, d...)
		if !d.HasErrors() && s == "" {
			diags = append(diags, attrError(pluginAttr, "Invalid plugin", "plugin must name a plugin."))
		}
		pb.Plugin = s
	}
	shaAttr, hasSHA := content.Attributes["sha256"]
	if hasSHA {
		s, d := evalString(shaAttr, ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if !validSHA256(s) {
				diags = append(diags, attrError(shaAttr, "Invalid sha256", fmt.Sprintf("sha256 must be 64 hexadecimal digits, got %q.", s)))
			} else {
				pb.SHA256 = strings.ToLower(s)
			}
		}
	}
	if a, ok := content.Attributes["timeout"]; ok {
		v, d := evalPositiveDuration(a, ctx)
		diags = append(diags, d...)
		pb.Timeout = v
	}
	configs := content.Blocks.OfType("config")
	for _, b := range configs[min(1, len(configs)):] {
		diags = append(diags, duplicateBlock("config", b, configs[0]))
	}
	if pluginAttr == nil || pb.Plugin == "" || (hasSHA && pb.SHA256 == "") {
		// Without a valid name and pin there is no schema to decode
		// the config against.
		return pb, diags
	}

	info, err := l.resolver.Info(kind, pb.Plugin, pb.SHA256)
	if err != nil {
		subject := pluginAttr.Expr.Range()
		if errors.Is(err, ErrChecksumMismatch) && hasSHA {
			subject = shaAttr.Expr.Range()
		}
		summary := "Cannot start plugin"
		switch {
		case errors.Is(err, ErrUnknownPlugin):
			summary = "Unknown plugin"
		case errors.Is(err, ErrChecksumMismatch):
			summary = "Plugin checksum mismatch"
		}
		return pb, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  summary,
			Detail:   fmt.Sprintf("%s %q: plugin %q: %v", kind, pb.Name, pb.Plugin, err),
			Subject:  subject.Ptr(),
		})
	}
	if info.Kind != kind {
		return pb, append(diags, attrError(pluginAttr, "Wrong plugin kind",
			fmt.Sprintf("plugin %q is a %s, but it is used in a %s block.", pb.Plugin, info.Kind, kind)))
	}
	pb.Info = info

	var body hcl.Body = hcl.EmptyBody()
	where := blk.DefRange
	if len(configs) > 0 {
		body, where = configs[0].Body, configs[0].DefRange
	}
	obj, d := decodeBody(body, info.ConfigSchema, info.ConfigSchema, ctx, where, "")
	d = append(d, withDefaults(info.ConfigSchema, obj, where)...)
	diags = append(diags, d...)
	if !d.HasErrors() {
		raw, err := json.Marshal(obj)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot encode config", Detail: err.Error(), Subject: where.Ptr()})
		}
		pb.Config = raw
		pb.configBody, pb.configAt = body, where
	}
	return pb, diags
}

// validateConfigs asks each plugin block's plugin to check its config. Only
// blocks a chain uses are checked, as only they are ever configured: the
// other side of `var.prod ? realizer.k8s : realizer.process` may name a
// program that exists only where that side is picked.
func (l *loader) validateConfigs() hcl.Diagnostics {
	v, ok := l.resolver.(ConfigValidator)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	for _, kind := range []sdk.Kind{sdk.KindCollector, sdk.KindEvaluator, sdk.KindRealizer} {
		for _, b := range l.blocks[kind] {
			if len(b.UsedBy) > 0 && b.configBody != nil {
				diags = append(diags, validateConfig(v, b, b.configBody, b.configAt)...)
			}
		}
	}
	return diags
}

// validateConfig asks the plugin what its schema could not say about the
// block's config, and points at each attribute at fault.
func validateConfig(v ConfigValidator, pb *PluginBlock, body hcl.Body, where hcl.Range) hcl.Diagnostics {
	problems, err := v.ValidateConfig(pb.Kind, pb.Plugin, pb.SHA256, pb.Config)
	if err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot validate config",
			Detail:   fmt.Sprintf("%s %q (plugin %q): %v", pb.Kind, pb.Name, pb.Plugin, err),
			Subject:  where.Ptr(),
		}}
	}
	var diags hcl.Diagnostics
	for _, p := range problems {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid config",
			Detail:   fmt.Sprintf("%s (%s %q).", strings.TrimSuffix(problemText(p), "."), pb.Kind, pb.Name),
			Subject:  attrRange(body, where, p.Attribute).Ptr(),
		})
	}
	return diags
}

// problemText is a problem's message, led by its attribute unless the
// message already starts with it.
func problemText(p sdk.Problem) string {
	if p.Attribute == "" || strings.HasPrefix(p.Message, p.Attribute) {
		return p.Message
	}
	return p.Attribute + ": " + p.Message
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// checkNumbers rejects number literals a float64 cannot hold before anything
// is evaluated: HCL would happily turn 1e999999999 into a string of a billion
// digits.
func checkNumbers(body hcl.Body) hcl.Diagnostics {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	_ = hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		lit, ok := n.(*hclsyntax.LiteralValueExpr)
		if ok && lit.Val.Type() == cty.Number && lit.Val.IsKnown() && !lit.Val.IsNull() && !sdk.NumberInRange(lit.Val.AsBigFloat()) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Number out of range",
				Detail:   "Numbers must fit a 64-bit float (about 1e308).",
				Subject:  lit.SrcRange.Ptr(),
			})
		}
		return nil
	})
	return diags
}
