package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/runner"
	"github.com/ebbscale/ebb/core/state"
)

// tokenEnv holds the HTTP API's bearer token when the config sets none.
const tokenEnv = "EBB_HTTP_TOKEN"

// guardSettings are the config's HTTP access rules; the token comes from
// the config, else from the environment.
func guardSettings(cfg *config.Config) runner.GuardSettings {
	token := cfg.HTTPToken
	if token == "" {
		token = os.Getenv(tokenEnv)
	}
	return runner.GuardSettings{Token: token, AllowedHosts: cfg.HTTPAllowedHosts}
}

// apiServer serves the runner's HTTP API on an address a reload may move.
type apiServer struct {
	guard  *runner.Guard
	logger hclog.Logger

	mu   sync.Mutex
	addr string
	srv  *http.Server
}

func startAPI(h http.Handler, addr string, s runner.GuardSettings, logger hclog.Logger) (*apiServer, error) {
	a := &apiServer{guard: runner.NewGuard(h, s), logger: logger}
	if err := a.listen(addr, s); err != nil {
		return nil, err
	}
	return a, nil
}

// listen serves on addr, then stops serving on the previous address: a bad
// new address leaves the API where it was.
func (a *apiServer) listen(addr string, s runner.GuardSettings) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	srv := &http.Server{Handler: a.guard, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	a.mu.Lock()
	old := a.srv
	a.srv, a.addr = srv, addr
	a.mu.Unlock()
	if old != nil {
		old.Close()
	}
	a.logger.Info("http api listening", "url", "http://"+ln.Addr().String(), "token", s.Token != "")
	if !runner.Loopback(addr) {
		if s.Token == "" {
			a.logger.Warn("the HTTP API listens beyond this host without a token: anyone who can reach "+addr+
				" reads every chain; set http { token } or "+tokenEnv, "address", addr)
		} else {
			a.logger.Warn("the HTTP API listens beyond this host; requests need the bearer token", "address", addr)
		}
	}
	return nil
}

// apply takes a reloaded config's HTTP settings. pinned is true when the
// --http flag fixed the address.
func (a *apiServer) apply(addr string, pinned bool, s runner.GuardSettings) (applied []string, err error) {
	a.guard.Set(s)
	a.mu.Lock()
	cur := a.addr
	a.mu.Unlock()
	if addr == cur || pinned {
		return nil, nil
	}
	if err := a.listen(addr, s); err != nil {
		return nil, err
	}
	return []string{"http.address"}, nil
}

func (a *apiServer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
	}
}

// reloadSettings applies what a new config changes outside the chains and
// says what it could not: it returns the settings applied and those that
// need a restart.
func reloadSettings(old, cfg *config.Config, a runArgs) (applied, restart []string, err error) {
	if cfg.LogLevel != old.LogLevel {
		if a.logLevel == "" {
			lv := hclog.LevelFromString(cfg.LogLevel)
			a.logger.SetLevel(lv)
			a.boot.SetLevel(lv)
			applied = append(applied, "log.level")
		} else {
			restart = append(restart, "log.level (the --log-level flag wins)")
		}
	}
	if cfg.LogJSON != old.LogJSON {
		restart = append(restart, "log.json")
	}
	if cfg.StatePath != old.StatePath && a.stateFlag == "" {
		restart = append(restart, "state.path")
	}
	if cfg.State != old.State {
		restart = append(restart, "state (backend and leases)")
	}
	if retention(cfg) != retention(old) && a.backend != nil {
		var changed []string
		if cfg.KeepDecisions != old.KeepDecisions {
			changed = append(changed, "state.keep_decisions")
		}
		if cfg.KeepFor != old.KeepFor {
			changed = append(changed, "state.keep_for")
		}
		if a.backend.bolt != nil {
			a.backend.bolt.SetRetention(retention(cfg))
			applied = append(applied, changed...)
		} else {
			// The kubernetes backend's bound is fixed when it starts.
			restart = append(restart, changed...)
		}
	}
	if cfg.HTTPAddress != old.HTTPAddress && a.httpFlag != "" {
		restart = append(restart, "http.address (the --http flag wins)")
	}
	was, now := guardSettings(old), guardSettings(cfg)
	if was.Token != now.Token {
		applied = append(applied, "http.token")
	}
	if fmt.Sprint(was.AllowedHosts) != fmt.Sprint(now.AllowedHosts) {
		applied = append(applied, "http.allowed_hosts")
	}
	moved, err := a.api.apply(cfg.HTTPAddress, a.httpFlag != "", now)
	applied = append(applied, moved...)
	if err != nil {
		err = fmt.Errorf("http.address %s: %w; the API stays where it was", cfg.HTTPAddress, err)
	}
	return applied, restart, err
}

// retention is the decision log's bounds from the state block.
func retention(cfg *config.Config) state.Retention {
	return state.Retention{Keep: cfg.KeepDecisions, MaxAge: cfg.KeepFor}
}
