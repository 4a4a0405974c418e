// Command image builds ebb's container image without a registry or a
// Docker daemon: a static ebb binary (CGO_ENABLED=0; the builtin plugins are
// subcommands of the same binary), Debian's CA certificates, an /etc/passwd
// with a nonroot user and the example config.hcl, in one scratch layer,
// written as an OCI image layout tar. The same sources, Go toolchain and
// SOURCE_DATE_EPOCH give the same image digest.
//
//	go run ./scripts/image -o ebb-image.tar
//	podman load -i ebb-image.tar    # or: docker load -i ebb-image.tar
//
// The Dockerfile beside the repository root builds the same layout with Docker.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/internal/ociimage"
)

// The image's paths and user, shared with the Dockerfile and the Helm chart.
const (
	binPath    = "/usr/local/bin/ebb"
	configPath = "/etc/ebb/config.hcl"
	stateDir   = "/var/lib/ebb"
	uid        = 65532 // distroless's "nonroot", so volume ownership habits carry over
)

type options struct {
	out, ref, version, arch, config, ca, root string
	created                                   time.Time
}

func main() {
	var o options
	flag.StringVar(&o.out, "o", "ebb-image.tar", "output: an OCI image layout tar")
	flag.StringVar(&o.version, "version", "dev", "ebb's version (ebb version prints it)")
	flag.StringVar(&o.ref, "ref", "", "image name for podman/docker load (default ebb:VERSION)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "GOARCH of the image")
	flag.StringVar(&o.config, "config", "config.hcl", "the default configuration, installed as "+configPath)
	flag.StringVar(&o.ca, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle (Debian's ca-certificates)")
	flag.Parse()
	if flag.NArg() > 0 {
		fatal(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		fatal(err)
	}
	o.created = epoch
	digest, err := build(o)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("%s %s %s\n", o.out, o.refOrDefault(), digest)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}

func (o options) refOrDefault() string {
	if o.ref != "" {
		return o.ref
	}
	return "ebb:" + o.version
}

// sourceDateEpoch is the reproducible-builds convention for "when": the
// image's created time, 1970 by default.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", v)
	}
	return time.Unix(n, 0), nil
}

// build compiles ebb and writes the image; it returns the manifest digest.
func build(o options) (string, error) {
	tmp, err := os.MkdirTemp("", "ebb-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "ebb")
	// -trimpath and no VCS stamp: the binary depends on the sources only,
	// not on where they are checked out or whether the tree is dirty.
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+o.version, "-o", bin, "./cmd/ebb")
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ebb: %w", err)
	}
	read := func(p string) ([]byte, error) {
		if o.root != "" && !filepath.IsAbs(p) {
			p = filepath.Join(o.root, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		return b, nil
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	caData, err := read(o.ca)
	if err != nil {
		return "", fmt.Errorf("%w (Debian: apt-get install ca-certificates)", err)
	}
	cfgData, err := read(o.config)
	if err != nil {
		return "", err
	}
	img := ociimage.Image{
		Ref: o.refOrDefault(), OS: "linux", Arch: o.arch, Created: o.created,
		Config: ociimage.Config{
			User:       fmt.Sprintf("%d:%d", uid, uid),
			Entrypoint: []string{binPath},
			// ebb run by default; `docker run IMAGE version` runs another
			// subcommand. The Helm chart passes its own arguments.
			Cmd:          defaultCmd,
			WorkingDir:   stateDir,
			ExposedPorts: []string{"9464/tcp"},
			Labels: map[string]string{
				"org.opencontainers.image.title":   "ebb",
				"org.opencontainers.image.version": o.version,
				"org.opencontainers.image.source":  "https://github.com/ebbscale/ebb",
			},
		},
		Files: []ociimage.File{
			{Path: strings.TrimPrefix(binPath, "/"), Mode: 0o755, Data: binData},
			{Path: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: caData},
			{Path: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
			{Path: "etc/group", Mode: 0o644, Data: []byte(group)},
			{Path: strings.TrimPrefix(configPath, "/"), Mode: 0o644, Data: cfgData},
			// go-plugin puts its sockets in $TMPDIR.
			{Path: "tmp/", Mode: 0o1777},
			{Path: strings.TrimPrefix(stateDir, "/") + "/", Mode: 0o755, UID: uid, GID: uid},
			{Path: "home/nonroot/", Mode: 0o755, UID: uid, GID: uid},
		},
	}
	f, err := os.Create(o.out)
	if err != nil {
		return "", err
	}
	digest, err := ociimage.Write(f, img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(o.out)
		return "", err
	}
	return digest, nil
}

// defaultCmd makes the example reachable and writable in a container.
var defaultCmd = []string{"run", "--config", configPath, "--state", stateDir + "/ebb.db", "--http", ":9464"}

// The Dockerfile writes the same two files (TestDockerfileMatches).
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group  = "root:x:0:\nnonroot:x:65532:\n"
)
