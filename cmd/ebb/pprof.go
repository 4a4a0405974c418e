package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/ebbscale/ebb/core/runner"
)

// pprofEnv names the loopback address on which `ebb run` serves Go's
// runtime profiles (heap, CPU, goroutines) when set: how the figures in
// BENCHMARKS.md's "Runner at scale" were explained. Off by default, and never
// on a non-loopback address, because a profile shows the process's memory.
const pprofEnv = "EBB_PPROF_ADDR"

// startPprof serves the profiles when $EBB_PPROF_ADDR is set; the returned
// func stops serving.
func startPprof(logger hclog.Logger) (func(), error) {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return func() {}, nil
	}
	if !runner.Loopback(addr) {
		return nil, fmt.Errorf("%s=%s: profiles are served on a loopback address only (127.0.0.1:6060)", pprofEnv, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pprofEnv, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("serving Go profiles", "address", ln.Addr().String(), "env", pprofEnv)
	return func() { _ = srv.Close() }, nil
}
