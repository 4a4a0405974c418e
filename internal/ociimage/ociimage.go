// Package ociimage writes a single-layer container image as an OCI image
// layout in a tar archive, with nothing but archive/tar, gzip and sha256: CI
// builds ebb's image without a registry, a Docker daemon or a container
// library. `podman load`, `docker load` (which also reads the manifest.json
// written beside the layout) and `skopeo copy oci-archive:` read the result.
//
// The output is a function of the input only: entries are sorted, owners,
// modes and times are fixed, so the same files give the same digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Media types of the OCI image spec (image-spec v1.1, media-types.md).
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// File is one entry of the image's only layer. A Path ending in "/" is a
// directory (Data is then ignored).
type File struct {
	Path string
	Mode int64 // permission bits, e.g. 0o755; 0o1777 for /tmp
	UID  int
	GID  int
	Data []byte
}

// Config is what the image runs, as in the OCI image config's "config".
type Config struct {
	User         string
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	ExposedPorts []string // "9464/tcp"
	Labels       map[string]string
}

// Image is everything that decides the output.
type Image struct {
	// Ref names the image for podman and docker load, e.g. "ebb:dev".
	Ref       string
	OS, Arch  string
	Created   time.Time // fixed (SOURCE_DATE_EPOCH), so builds repeat
	Config    Config
	Files     []File
	GzipLevel int // 0 means gzip.DefaultCompression
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Write writes the image as an OCI layout tar to w and returns the
// manifest's digest ("sha256:..."), the image's identity.
func Write(w io.Writer, img Image) (string, error) {
	if img.Ref == "" || img.OS == "" || img.Arch == "" {
		return "", fmt.Errorf("ociimage: Ref, OS and Arch are required")
	}
	layerTar, err := layer(img.Files)
	if err != nil {
		return "", err
	}
	level := img.GzipLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, level)
	if err != nil {
		return "", fmt.Errorf("ociimage: %w", err)
	}
	// The gzip header's time and name stay zero: no build time leaks in.
	if _, err := zw.Write(layerTar); err != nil {
		return "", fmt.Errorf("ociimage: compressing the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("ociimage: compressing the layer: %w", err)
	}

	created := img.Created.UTC().Format(time.RFC3339)
	cfg := map[string]any{
		"created":      created,
		"architecture": img.Arch,
		"os":           img.OS,
		"config":       runConfig(img.Config),
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest(layerTar)}},
		"history":      []map[string]any{{"created": created, "created_by": "ebb scripts/image"}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("ociimage: config: %w", err)
	}
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        descriptor{MediaType: mediaConfig, Digest: digest(cfgJSON), Size: int64(len(cfgJSON))},
		"layers":        []descriptor{{MediaType: mediaLayer, Digest: digest(gz.Bytes()), Size: int64(gz.Len())}},
	}
	manJSON, err := json.Marshal(manifest)
	if err != nil {
		return "", fmt.Errorf("ociimage: manifest: %w", err)
	}
	manDigest := digest(manJSON)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaIndex,
		"manifests": []descriptor{{
			MediaType: mediaManifest, Digest: manDigest, Size: int64(len(manJSON)),
			Platform: &platform{Architecture: img.Arch, OS: img.OS},
			// podman reads ref.name, docker (containerd store) the other.
			Annotations: map[string]string{
				"org.opencontainers.image.ref.name": img.Ref,
				"io.containerd.image.name":          img.Ref,
			},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("ociimage: index: %w", err)
	}
	// docker load before Docker 25 reads only this file (the "docker save"
	// format); it points into the same blobs.
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(digest(cfgJSON)),
		"RepoTags": []string{img.Ref},
		"Layers":   []string{blobPath(digest(gz.Bytes()))},
	}})
	if err != nil {
		return "", fmt.Errorf("ociimage: docker manifest: %w", err)
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"blobs/sha256/", nil},
		{blobPath(digest(cfgJSON)), cfgJSON},
		{blobPath(digest(gz.Bytes())), gz.Bytes()},
		{blobPath(manDigest), manJSON},
		{"index.json", index},
		{"manifest.json", dockerManifest},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	for _, e := range entries {
		if err := writeEntry(tw, File{Path: e.name, Mode: 0o644, Data: e.data}, img.Created); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("ociimage: %w", err)
	}
	return manDigest, nil
}

// runConfig leaves out empty fields, as image builders do.
func runConfig(c Config) map[string]any {
	out := map[string]any{}
	if c.User != "" {
		out["User"] = c.User
	}
	if len(c.Entrypoint) > 0 {
		out["Entrypoint"] = c.Entrypoint
	}
	if len(c.Cmd) > 0 {
		out["Cmd"] = c.Cmd
	}
	if len(c.Env) > 0 {
		out["Env"] = c.Env
	}
	if c.WorkingDir != "" {
		out["WorkingDir"] = c.WorkingDir
	}
	if len(c.ExposedPorts) > 0 {
		ports := map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			ports[p] = struct{}{}
		}
		out["ExposedPorts"] = ports
	}
	if len(c.Labels) > 0 {
		out["Labels"] = c.Labels
	}
	return out
}

// layer is the uncompressed layer tar: the files sorted by path, each
// parent directory present, so extraction never invents one with the
// runtime's defaults.
func layer(files []File) ([]byte, error) {
	byPath := map[string]File{}
	for _, f := range files {
		clean := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if clean == "" || clean == "." {
			return nil, fmt.Errorf("ociimage: bad file path %q", f.Path)
		}
		dir := strings.HasSuffix(f.Path, "/")
		if dir {
			clean += "/"
		}
		if _, dup := byPath[clean]; dup {
			return nil, fmt.Errorf("ociimage: %s appears twice", clean)
		}
		f.Path = clean
		byPath[clean] = f
		for p := path.Dir(strings.TrimSuffix(clean, "/")); p != "."; p = path.Dir(p) {
			if _, ok := byPath[p+"/"]; !ok {
				byPath[p+"/"] = File{Path: p + "/", Mode: 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		if err := writeEntry(tw, byPath[p], time.Unix(0, 0)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, f File, mtime time.Time) error {
	h := &tar.Header{
		Name: f.Path, Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: mtime.UTC(),
		Typeflag: tar.TypeReg, Size: int64(len(f.Data)),
	}
	if strings.HasSuffix(f.Path, "/") {
		h.Typeflag, h.Size = tar.TypeDir, 0
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("ociimage: %s: %w", f.Path, err)
	}
	if h.Typeflag == tar.TypeReg {
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("ociimage: %s: %w", f.Path, err)
		}
	}
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
