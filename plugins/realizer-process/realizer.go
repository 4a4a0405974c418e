// Package process is ebb's local process realizer: each unit is one OS
// process started from a command template, the way Amoro's local optimizer
// container runs optimizers. It is meant for bare machines and `ebb dev`.
//
// Units outlive the plugin. Each runs in its own process group, not tied to
// the plugin's lifetime, and is recorded in a pid file in the state
// directory. A restarted plugin finds its units again from those files,
// trusting a pid only while /proc shows the same start time and command, so
// a recycled pid is never mistaken for a unit (nor signalled).
//
// Draining sends SIGTERM to the unit's process group; a unit still alive
// drain-timeout later is killed with SIGKILL on the next Inventory or
// Realize. Linux only: it reads /proc.
//
// For Amoro the command is the script's own foreground form, as Amoro's
// local container runs it (`optimizer.sh start <memory*threads> <args>`,
// but in the foreground so that the process is the unit):
//
//	["/opt/amoro/bin/optimizer.sh", "start-foreground", "{heap}",
//	 "-a", "{ams}", "-p", "{threads}", "-g", "{group}", "-id", "{unit}"]
//
// optimizer.sh dispatches on its first argument and passes the second as
// -Xmx<heap>m. An optimizer from 0.9 finishes its in-flight tasks on
// SIGTERM within its -st (default 10 minutes: add "-st" with the
// drain-timeout in ms to match); an 0.8 optimizer has no shutdown hook and
// stops at once, leaving its tasks to AMS's heartbeat expiry.
package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ebbscale/ebb/sdk"
)

// Name is the plugin's name in Info.
const Name = "realizer-process"

// Version is the plugin's version in Info.
const Version = "0.1.0"

// tokenEnv carries a random token per started process; it identifies the
// unit even after a wrapper script execs another program.
const tokenEnv = "EBB_UNIT_TOKEN"

// How long calls wait for processes. A restart gives the unit restartGrace
// to exit on SIGTERM before SIGKILL; after SIGKILL a process is waited for
// at most killWait. Both are also bounded by the call's deadline.
const (
	restartGrace = 2 * time.Second
	killWait     = 5 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Realizer implements sdk.Realizer with local processes.
type Realizer struct {
	mu        sync.Mutex
	cfg       *Config
	st        store
	overrides overrides

	// children are the processes this instance started and reaps: closed
	// when Wait returned, so that exits are seen without polling zombies.
	childMu  sync.Mutex
	children map[int]chan struct{}

	now func() time.Time
	log hclog.Logger
	// diesAfterStart, set by tests, makes start return right after the
	// process started, as a plugin killed at that moment would: nothing
	// after that point runs.
	diesAfterStart func(unit string) bool
}

var _ sdk.Realizer = (*Realizer)(nil)

// New returns an unconfigured realizer.
func New() *Realizer {
	return &Realizer{children: map[int]chan struct{}{}, now: time.Now, log: sdk.Logger(Name)}
}

func (r *Realizer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:            Name,
		Kind:            sdk.KindRealizer,
		Version:         Version,
		ProtocolVersion: sdk.ProtocolVersion,
		ConfigSchema:    ConfigSchema(),
	}, nil
}

func (r *Realizer) Configure(_ context.Context, raw json.RawMessage) error {
	c, err := parseConfig(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	st := store{dir: c.StateDir}
	o, err := st.loadOverrides()
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg, r.st, r.overrides = &c, st, o
	return nil
}

// begin locks the realizer and the state directory for one call.
func (r *Realizer) begin(ctx context.Context) (*Config, func(), error) {
	r.mu.Lock()
	if r.cfg == nil {
		r.mu.Unlock()
		return nil, nil, fmt.Errorf("%s: not configured", Name)
	}
	unlock, err := r.st.lock(ctx)
	if err != nil {
		r.mu.Unlock()
		return nil, nil, fmt.Errorf("%s: %w", Name, err)
	}
	return r.cfg, func() { unlock(); r.mu.Unlock() }, nil
}

func (r *Realizer) Inventory(ctx context.Context, target sdk.Target) ([]sdk.Unit, error) {
	cfg, done, err := r.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	live, err := r.scan(ctx, cfg, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: inventory of %v: %w", Name, target, err)
	}
	units := make([]sdk.Unit, 0, len(live))
	for _, rec := range live {
		units = append(units, r.unit(cfg, rec))
	}
	sort.Slice(units, func(i, j int) bool { return units[i].ID < units[j].ID })
	return units, nil
}

func (r *Realizer) unit(cfg *Config, rec *record) sdk.Unit {
	u := sdk.Unit{
		ID:        rec.Unit,
		Size:      rec.Size,
		Phase:     sdk.PhaseRunning,
		CreatedAt: rec.StartedAt,
		Labels:    map[string]string{"pid": strconv.Itoa(rec.Pid), "log": rec.Log},
	}
	if r.now().Sub(rec.StartedAt) < cfg.BootTime.D() {
		u.Phase = sdk.PhaseBooting
	}
	// A unit killed but not yet exited is on its way out: not capacity.
	for _, at := range []*time.Time{rec.KilledAt, rec.DrainStartedAt} {
		if at != nil {
			u.Phase = sdk.PhaseDraining
			u.DrainStartedAt = *at
		}
	}
	if rec.Restarts > 0 {
		u.Labels["restarts"] = strconv.Itoa(rec.Restarts)
	}
	return u
}

// scan returns the live units of a target by id. It removes the pid files
// of dead units and kills units that outlived their drain timeout; what it
// did is appended to notes when notes is not nil.
func (r *Realizer) scan(ctx context.Context, cfg *Config, target sdk.Target, notes *[]string) (map[string]*record, error) {
	recs, err := r.st.list(target)
	if err != nil {
		return nil, err
	}
	note := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		r.log.Info(msg, "target", target.String())
		if notes != nil {
			*notes = append(*notes, msg)
		}
	}
	live := map[string]*record{}
	var errs []error
	for _, rec := range recs {
		if rec.Starting {
			// The plugin that wrote it died while starting the unit; the
			// state dir lock was held until the unit had exec'd (the child
			// shares the lock's file until exec closes it), so the process
			// exists now with its token, or never will.
			pid, st, found := findByToken(rec.Token)
			if !found {
				note("%s: its start was interrupted and no process carries its token, forgotten", rec.Unit)
				if err := r.st.remove(rec); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			rec.Pid, rec.ProcStart, rec.Starting = pid, st.StartTicks, false
			if err := r.st.save(rec); err != nil {
				errs = append(errs, err)
				continue
			}
			note("%s: found pid %d, started before the plugin that started it died", rec.Unit, pid)
		}
		if ok, why := liveness(rec); !ok {
			note("%s: %s (pid %d), forgotten", rec.Unit, why, rec.Pid)
			if err := r.st.remove(rec); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if rec.DrainStartedAt != nil && r.now().Sub(*rec.DrainStartedAt) >= cfg.DrainTimeout.D() {
			gone, err := r.kill(ctx, rec)
			if err != nil {
				errs = append(errs, err)
			}
			if gone {
				note("%s: killed after the %v drain timeout", rec.Unit, cfg.DrainTimeout.D())
				continue
			}
			note("%s: still exiting after SIGKILL (drain timeout)", rec.Unit)
		}
		live[rec.Unit] = rec
	}
	return live, errors.Join(errs...)
}

func (r *Realizer) Realize(ctx context.Context, req sdk.RealizeRequest) (string, error) {
	if req.Decision.Vetoed {
		return "vetoed: nothing done", nil
	}
	cfg, done, err := r.begin(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	var notes []string
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	live, err := r.scan(ctx, cfg, req.Target, &notes)
	if err != nil {
		fail(err)
		if live == nil {
			return "", fmt.Errorf("%s: realize on %v: %w", Name, req.Target, err)
		}
	}
	d := req.Decision

	// Releases first, so that capacity is never briefly above what was asked.
	for _, rm := range d.Remove {
		rec, ok := live[rm.UnitID]
		switch {
		case !ok:
			notes = append(notes, rm.UnitID+": not running, nothing to remove")
		case rm.Force:
			gone, err := r.kill(ctx, rec)
			if err != nil {
				fail(err)
			} else if gone {
				notes = append(notes, fmt.Sprintf("%s: killed (pid %d)", rm.UnitID, rec.Pid))
			} else {
				notes = append(notes, fmt.Sprintf("%s: SIGKILL sent, still exiting (pid %d)", rm.UnitID, rec.Pid))
			}
		default:
			notes = append(notes, r.drain(rec, &errs))
		}
	}
	for _, id := range d.Drain {
		if rec, ok := live[id]; ok {
			notes = append(notes, r.drain(rec, &errs))
		} else {
			notes = append(notes, id+": not running, nothing to drain")
		}
	}
	for _, id := range d.Restart {
		rec, ok := live[id]
		switch {
		case !ok:
			notes = append(notes, id+": not running, nothing to restart")
		case req.RequestID != "" && rec.RestartRequest == req.RequestID:
			notes = append(notes, fmt.Sprintf("%s: already restarted by this request (pid %d)", id, rec.Pid))
		case rec.DrainStartedAt != nil:
			notes = append(notes, id+": draining, not restarted")
		default:
			next, err := r.restart(ctx, cfg, rec, req.RequestID)
			if err != nil {
				fail(err)
				continue
			}
			live[id] = next
			notes = append(notes, fmt.Sprintf("%s: restarted (pid %d -> %d)", id, rec.Pid, next.Pid))
		}
	}
	for _, a := range d.Add {
		if rec, ok := live[a.UnitID]; ok {
			notes = append(notes, fmt.Sprintf("%s: already running (pid %d)", a.UnitID, rec.Pid))
			continue
		}
		if a.UnitID == "" || strings.ContainsRune(a.UnitID, 0) || a.Size < 1 {
			fail(fmt.Errorf("cannot add unit %q of size %d: want a non-empty id and a size of at least 1", a.UnitID, a.Size))
			continue
		}
		rec, err := r.start(cfg, req.Target, a.UnitID, a.Size, nil)
		if err != nil {
			fail(err)
			continue
		}
		live[a.UnitID] = rec
		notes = append(notes, fmt.Sprintf("%s: started %s (pid %d)", a.UnitID, sdk.Count(a.Size, "thread"), rec.Pid))
	}

	summary := "no change"
	if len(notes) > 0 {
		summary = strings.Join(notes, "; ")
	}
	if len(errs) > 0 {
		return summary, fmt.Errorf("%s: realize on %v: %w (done: %s)", Name, req.Target, errors.Join(errs...), summary)
	}
	return summary, nil
}

// drain asks a unit to finish: SIGTERM to its group, once. The drain start
// is kept from the first signal, so a retried decision neither re-signals
// nor postpones the drain timeout.
func (r *Realizer) drain(rec *record, errs *[]error) string {
	if rec.DrainStartedAt != nil {
		return rec.Unit + ": already draining"
	}
	// Signal before recording: a crash in between leads to a second,
	// harmless SIGTERM rather than a drain that was never signalled.
	if err := signalGroup(rec.Pid, syscall.SIGTERM); err != nil {
		*errs = append(*errs, fmt.Errorf("draining %s: %w", rec.Unit, err))
		return rec.Unit + ": drain failed"
	}
	now := r.now()
	rec.DrainStartedAt = &now
	if err := r.st.save(rec); err != nil {
		*errs = append(*errs, fmt.Errorf("draining %s: %w", rec.Unit, err))
	}
	return fmt.Sprintf("%s: draining (SIGTERM to pid %d)", rec.Unit, rec.Pid)
}

// kill sends SIGKILL to a unit's group and waits, boundedly, for it to die.
// A dead unit's pid file is removed; gone says whether that happened.
func (r *Realizer) kill(ctx context.Context, rec *record) (gone bool, err error) {
	if ok, _ := liveness(rec); ok {
		if err := signalGroup(rec.Pid, syscall.SIGKILL); err != nil {
			return false, fmt.Errorf("killing %s: %w", rec.Unit, err)
		}
		if rec.KilledAt == nil {
			now := r.now()
			rec.KilledAt = &now
			if err := r.st.save(rec); err != nil {
				return false, fmt.Errorf("killing %s: %w", rec.Unit, err)
			}
		}
		if !r.waitGone(ctx, rec, killWait) {
			return false, nil
		}
	}
	return true, r.st.remove(rec)
}

// restart stops a unit (SIGTERM, SIGKILL after restartGrace) and starts it
// again with the same id and size.
func (r *Realizer) restart(ctx context.Context, cfg *Config, rec *record, requestID string) (*record, error) {
	if err := signalGroup(rec.Pid, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("restarting %s: %w", rec.Unit, err)
	}
	if !r.waitGone(ctx, rec, restartGrace) {
		gone, err := r.kill(ctx, rec)
		if err != nil {
			return nil, fmt.Errorf("restarting %s: %w", rec.Unit, err)
		}
		if !gone {
			return nil, fmt.Errorf("restarting %s: pid %d did not exit after SIGKILL", rec.Unit, rec.Pid)
		}
	}
	return r.start(cfg, rec.target(), rec.Unit, rec.Size, func(n *record) {
		n.RestartRequest = requestID
		n.Restarts = rec.Restarts + 1
	})
}

// waitGone polls until the unit's process is dead, for at most max and not
// past the call's deadline.
func (r *Realizer) waitGone(ctx context.Context, rec *record, max time.Duration) bool {
	r.childMu.Lock()
	exited := r.children[rec.Pid]
	r.childMu.Unlock()
	timer := time.NewTimer(max)
	defer timer.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if ok, _ := liveness(rec); !ok {
			return true
		}
		select {
		case <-exited: // nil for units this instance did not start: never ready
		case <-tick.C:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// start launches one unit and records it. The process gets its own process
// group so that signals reach its children and a SIGINT to the runner's
// terminal does not; no parent-death signal, so it outlives the plugin.
func (r *Realizer) start(cfg *Config, t sdk.Target, unit string, size int64, amend func(*record)) (*record, error) {
	vals := placeholderValues(t, unit, size, cfg.MemoryPerThreadMB, cfg.Vars, r.overrides[t.String()])
	argv := make([]string, len(cfg.Command))
	for i, a := range cfg.Command {
		v, err := expand(a, vals)
		if err != nil {
			return nil, fmt.Errorf("starting %s: command[%d]: %w", unit, i, err)
		}
		argv[i] = v
	}
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", unit, err)
	}
	env := baseEnv()
	env = append(env,
		"EBB_UNIT="+unit,
		"EBB_THREADS="+strconv.FormatInt(size, 10),
		"EBB_TARGET="+t.Name,
		"EBB_CHAIN="+t.Chain,
		tokenEnv+"="+token,
	)
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := expand(cfg.Env[k], vals)
		if err != nil {
			return nil, fmt.Errorf("starting %s: env %s: %w", unit, k, err)
		}
		env = append(env, k+"="+v)
	}

	logPath := filepath.Join(cfg.LogDir, unitKey(t, unit)+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s: log file: %w", unit, err)
	}
	defer logf.Close()
	startedAt := r.now()
	fmt.Fprintf(logf, "=== ebb %s: starting unit %s (%d threads) of %v at %s: %q\n",
		Name, unit, size, t, startedAt.UTC().Format(time.RFC3339), argv)

	rec := &record{
		Unit: unit, Chain: t.Chain, Target: t.Name, Size: size,
		Argv: argv, Token: token, Log: logPath, StartedAt: startedAt, Starting: true,
	}
	if amend != nil {
		amend(rec)
	}
	// The intent record comes first: a plugin killed between starting the
	// process and recording its pid leaves a record the next one resolves
	// by the token (scan), instead of a live unit nobody knows of.
	if err := r.st.save(rec); err != nil {
		return nil, fmt.Errorf("starting %s: %w", unit, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = cfg.Workdir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(logf, "=== ebb %s: start failed: %v\n", Name, err)
		if rerr := r.st.remove(rec); rerr != nil {
			return nil, fmt.Errorf("starting %s: %w (and %v)", unit, err, rerr)
		}
		return nil, fmt.Errorf("starting %s: %w", unit, err)
	}
	pid := cmd.Process.Pid
	// Not yet waited for, so /proc/<pid> exists even if it already exited.
	ps, statErr := readStat(pid)
	exited := make(chan struct{})
	r.childMu.Lock()
	r.children[pid] = exited
	r.childMu.Unlock()
	go func() {
		// Reap the unit when it exits so that it does not linger as a zombie
		// while this plugin lives; after a plugin restart init reaps it.
		_ = cmd.Wait()
		close(exited)
		r.childMu.Lock()
		delete(r.children, pid)
		r.childMu.Unlock()
	}()
	if r.diesAfterStart != nil && r.diesAfterStart(unit) {
		return nil, fmt.Errorf("starting %s: the plugin died (test)", unit)
	}
	if statErr != nil {
		_ = signalGroup(pid, syscall.SIGKILL)
		_ = r.st.remove(rec)
		return nil, fmt.Errorf("starting %s: reading /proc of pid %d: %w", unit, pid, statErr)
	}
	rec.Pid, rec.ProcStart, rec.Starting = pid, ps.StartTicks, false
	if err := r.st.save(rec); err != nil {
		// An unrecorded unit could never be found again: better none.
		_ = signalGroup(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("starting %s: %w", unit, err)
	}
	return rec, nil
}

func newToken() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// pluginEnv is what go-plugin puts in a plugin's environment for the
// handshake; a unit has no use for it, and the client certificate should not
// leak into optimizer processes.
var pluginEnv = []string{
	sdk.Handshake.MagicCookieKey, "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", "PLUGIN_PROTOCOL_VERSIONS",
	"PLUGIN_CLIENT_CERT", "PLUGIN_MULTIPLEX_GRPC", "PLUGIN_UNIX_SOCKET_DIR", "PLUGIN_UNIX_SOCKET_GROUP", tokenEnv,
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(pluginEnv, k) {
			env = append(env, kv)
		}
	}
	return env
}

// RealizeParallelismOverrides is refused: a process unit has a size, not a
// parallelism; capacity changes go through unit adds and drains.
func (r *Realizer) RealizeParallelismOverrides(_ context.Context, req sdk.OverridesRequest[int64]) (string, error) {
	keys := make([]string, 0, len(req.Overrides))
	for k := range req.Overrides {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "", fmt.Errorf("%s: parallelism overrides (%s) are not supported: local processes have no parallelism to set; "+
		"capacity changes through units added and drained", Name, strings.Join(keys, ", "))
}

// RealizeConfigOverrides changes vars placeholders for units started later
// in the target. The values are persisted in the state directory, so a
// restarted plugin keeps them.
func (r *Realizer) RealizeConfigOverrides(ctx context.Context, req sdk.OverridesRequest[string]) (string, error) {
	cfg, done, err := r.begin(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	keys := make([]string, 0, len(req.Overrides))
	var unknown []string
	for k := range req.Overrides {
		keys = append(keys, k)
		if _, ok := cfg.Vars[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(keys)
	if len(unknown) > 0 {
		slices.Sort(unknown)
		known := make([]string, 0, len(cfg.Vars))
		for k := range cfg.Vars {
			known = append(known, k)
		}
		slices.Sort(known)
		return "", fmt.Errorf("%s: config overrides %s are not vars of this realizer (overridable: %s)",
			Name, strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	cur := r.overrides[req.Target.String()]
	var changed []string
	next := map[string]string{}
	for k, v := range cur {
		next[k] = v
	}
	for _, k := range keys {
		if old, ok := cur[k]; !ok || old != req.Overrides[k] {
			changed = append(changed, k+"="+req.Overrides[k])
		}
		next[k] = req.Overrides[k]
	}
	if len(changed) == 0 {
		return "config overrides unchanged", nil
	}
	all := overrides{}
	for k, v := range r.overrides {
		all[k] = v
	}
	all[req.Target.String()] = next
	if err := r.st.saveOverrides(all); err != nil {
		return "", fmt.Errorf("%s: %w", Name, err)
	}
	r.overrides = all
	return "vars " + strings.Join(changed, ",") + " for units started from now on", nil
}
