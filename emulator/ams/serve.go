package ams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve runs the emulator on the wall clock until ctx ends: the REST and
// optimizer API on restAddr (AMS's http-server.bind-port is 19090) and the
// Prometheus exposition on metricsAddr (the exporter's port, e.g. 7001; ""
// serves it at /metrics on restAddr instead). ready, if not nil, is called
// with the bound addresses once both listeners are up.
func (e *Emulator) Serve(ctx context.Context, restAddr, metricsAddr string, ready func(rest, metrics net.Addr)) error {
	rl, err := net.Listen("tcp", restAddr)
	if err != nil {
		return fmt.Errorf("ams emulator: listening on %s: %w", restAddr, err)
	}
	handler := e.Handler()
	servers := []*http.Server{}
	listeners := []net.Listener{rl}
	var metricsBound net.Addr = rl.Addr()
	if metricsAddr == "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", e.MetricsHandler())
		mux.Handle("/", handler)
		handler = mux
	} else {
		ml, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			rl.Close()
			return fmt.Errorf("ams emulator: listening on %s: %w", metricsAddr, err)
		}
		listeners = append(listeners, ml)
		metricsBound = ml.Addr()
		servers = append(servers, &http.Server{Handler: e.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second})
	}
	servers = append([]*http.Server{{Handler: handler, ReadHeaderTimeout: 10 * time.Second}}, servers...)
	if ready != nil {
		ready(rl.Addr(), metricsBound)
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func(s *http.Server, l net.Listener) { errc <- s.Serve(l) }(s, listeners[i])
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdownCtx)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ams emulator: %w", err)
	}
	return nil
}
