package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testImage(binary string) Image {
	return Image{
		Ref: "ebb:test", OS: "linux", Arch: "amd64", Created: time.Unix(0, 0),
		Config: Config{User: "65532:65532", Entrypoint: []string{"/usr/local/bin/ebb"}, Cmd: []string{"run"},
			ExposedPorts: []string{"9464/tcp"}},
		Files: []File{
			{Path: "usr/local/bin/ebb", Mode: 0o755, Data: []byte(binary)},
			{Path: "etc/passwd", Mode: 0o644, Data: []byte("nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")},
			{Path: "tmp/", Mode: 0o1777},
			{Path: "var/lib/ebb/", Mode: 0o755, UID: 65532, GID: 65532},
		},
	}
}

func write(t *testing.T, img Image) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	d, err := Write(&buf, img)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), d
}

// TestDeterministic: the same input gives the same bytes and digest, a
// different binary a different digest.
func TestDeterministic(t *testing.T) {
	a, da := write(t, testImage("binary v1"))
	b, db := write(t, testImage("binary v1"))
	if da != db || !bytes.Equal(a, b) {
		t.Fatalf("two builds of the same input differ: %s vs %s", da, db)
	}
	if _, dc := write(t, testImage("binary v2")); dc == da {
		t.Fatalf("a different binary gave the same digest %s", dc)
	}
}

// TestLayout reads the archive as a loader does: index -> manifest ->
// config and layer, each blob named by its digest, and the layer holding
// the files with their owners and modes.
func TestLayout(t *testing.T) {
	out, manDigest := write(t, testImage("ebb"))
	files := map[string][]byte{}
	untar(t, out, func(h *tar.Header, b []byte) { files[h.Name] = b })
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout: %q", files["oci-layout"])
	}
	blob := func(d string) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")]
		if !ok {
			t.Fatalf("no blob %s", d)
		}
		sum := sha256.Sum256(b)
		if "sha256:"+hex.EncodeToString(sum[:]) != d {
			t.Fatalf("blob %s has another digest", d)
		}
		return b
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if index.Manifests[0].Digest != manDigest || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "ebb:test" {
		t.Fatalf("index names %+v, Write returned %s", index.Manifests[0], manDigest)
	}
	var man struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(blob(manDigest), &man); err != nil || len(man.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	var cfg struct {
		Config struct {
			User       string
			Entrypoint []string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(man.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || cfg.Config.Entrypoint[0] != "/usr/local/bin/ebb" {
		t.Fatalf("config: %+v", cfg.Config)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(man.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	layerTar, _ := io.ReadAll(zr)
	sum := sha256.Sum256(layerTar)
	if cfg.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatal("diff_id is not the uncompressed layer's digest")
	}
	var got []string
	untar(t, layerTar, func(h *tar.Header, _ []byte) {
		got = append(got, h.Name+" "+h.FileInfo().Mode().String()+" "+strconv.Itoa(h.Uid))
	})
	want := []string{
		"etc/ drwxr-xr-x 0", "etc/passwd -rw-r--r-- 0", "tmp/ dtrwxrwxrwx 0", "usr/ drwxr-xr-x 0",
		"usr/local/ drwxr-xr-x 0", "usr/local/bin/ drwxr-xr-x 0", "usr/local/bin/ebb -rwxr-xr-x 0",
		"var/ drwxr-xr-x 0", "var/lib/ drwxr-xr-x 0", "var/lib/ebb/ drwxr-xr-x 65532",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("layer entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBadInput(t *testing.T) {
	img := testImage("x")
	img.Files = append(img.Files, File{Path: "/etc/passwd", Data: []byte("again")})
	if _, err := Write(io.Discard, img); err == nil || !strings.Contains(err.Error(), "etc/passwd appears twice") {
		t.Fatalf("duplicate path: %v", err)
	}
	img = testImage("x")
	img.Files = append(img.Files, File{Path: "/"})
	if _, err := Write(io.Discard, img); err == nil {
		t.Fatal("root path accepted")
	}
}

// untar calls each with every entry of archive, in order.
func untar(t *testing.T, archive []byte, each func(*tar.Header, []byte)) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		each(h, b)
	}
}
