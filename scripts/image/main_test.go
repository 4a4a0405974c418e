package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/podman"
)

// buildImage builds the real image from this checkout.
func buildImage(t *testing.T, out string) string {
	t.Helper()
	d, err := build(options{out: out, version: "test", arch: "amd64", config: "config.hcl",
		ca: "/etc/ssl/certs/ca-certificates.crt", root: "../..", created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImageReproducible builds the image twice from the same sources: the
// digests must agree (the second build reuses Go's cache, so this costs one
// static build of ebb).
func TestImageReproducible(t *testing.T) {
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		t.Skip("no CA bundle (scripts/test installs Debian's ca-certificates)")
	}
	dir := t.TempDir()
	a := buildImage(t, filepath.Join(dir, "a.tar"))
	b := buildImage(t, filepath.Join(dir, "b.tar"))
	if a != b {
		t.Fatalf("same sources, two digests: %s and %s", a, b)
	}
	ab, _ := os.ReadFile(filepath.Join(dir, "a.tar"))
	bb, _ := os.ReadFile(filepath.Join(dir, "b.tar"))
	if string(ab) != string(bb) {
		t.Fatal("same digest but different archives")
	}
	if testing.Short() {
		return
	}
	podmanSmoke(t, filepath.Join(dir, "a.tar"))
}

// podmanSmoke loads the image into podman and runs `ebb version` and
// `ebb validate` in it, as the nonroot user the image names. It skips only
// when podman is not installed.
func podmanSmoke(t *testing.T, archive string) {
	pm, err := podman.Find()
	if err != nil {
		t.Logf("the image was not run: %v", err)
		return
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := pm.Command(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if _, err := pm.Load(archive); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Command("rmi", "-f", "ebb:test").Run() })
	if out := run("run", "--network=none", "ebb:test", "version"); !strings.HasPrefix(out, "ebb test (plugin protocol") {
		t.Fatalf("ebb version in the image: %q", out)
	}
	if out := run("run", "--network=none", "ebb:test", "validate", "/etc/ebb/config.hcl"); !strings.Contains(out, "valid (1 chain)") {
		t.Fatalf("ebb validate in the image: %q", out)
	}
	if out := run("run", "--network=none", "--entrypoint", "/usr/local/bin/ebb", "ebb:test", "plugins"); !strings.Contains(out, "realizer-k8s") {
		t.Fatalf("ebb plugins in the image: %q", out)
	}

	// ebb run as the Helm chart runs it: read-only root, nonroot, /tmp and
	// the state directory writable volumes. Its API answers, and its chain
	// starts its plugins (out of a cluster, realizer-k8s has no kubeconfig:
	// /v1/ready says so).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	name := fmt.Sprintf("ebb-image-test-%d", os.Getpid())
	daemon := pm.Command("run", "--name", name, "--network=host", "--read-only",
		"--tmpfs", "/tmp", "--tmpfs", "/var/lib/ebb:U", // U: owned by the image's user, as fsGroup does
		"ebb:test", "run", "--config", "/etc/ebb/config.hcl", "--state", "/var/lib/ebb/ebb.db", "--http", addr)
	var logs bytes.Buffer
	daemon.Stdout, daemon.Stderr = &logs, &logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- daemon.Wait() }()
	t.Cleanup(func() {
		pm.Command("stop", "-t", "5", name).Run()
		<-done
	})
	var ready string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("ebb run in the image exited: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/v1/ready"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ready = string(b); strings.Contains(ready, "realizer-k8s: loading kubeconfig") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ebb run in the image: /v1/ready %q\n%s", ready, logs.String())
		}
	}
	resp, err := http.Get("http://" + addr + "/v1/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/health: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestDockerfileMatches keeps the Dockerfile's image the same as this
// program's: user, entrypoint, command and the passwd and group files.
func TestDockerfileMatches(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	quote := func(args []string) string {
		q, _ := json.Marshal(args)
		return strings.ReplaceAll(string(q), ",", ", ")
	}
	for _, want := range []string{
		"USER 65532:65532\n",
		"ENTRYPOINT " + quote([]string{binPath}) + "\n",
		"CMD " + quote(defaultCmd) + "\n",
		"WORKDIR " + stateDir + "\n",
		"printf '" + strings.ReplaceAll(passwd, "\n", `\n`) + "' > /out/etc/passwd",
		"printf '" + strings.ReplaceAll(group, "\n", `\n`) + "' > /out/etc/group",
		"cp config.hcl /out" + configPath,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}
