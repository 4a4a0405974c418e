package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestPprofOnLoopbackOnly(t *testing.T) {
	t.Setenv(pprofEnv, "0.0.0.0:0")
	if _, err := startPprof(hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a non-loopback address: %v, want refused", err)
	}
	addr := freeAddr(t)
	t.Setenv(pprofEnv, addr)
	stop, err := startPprof(hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: %d %.200s", resp.StatusCode, body)
	}
	t.Setenv(pprofEnv, "")
	if stop, err := startPprof(hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	} else {
		stop()
	}
}
