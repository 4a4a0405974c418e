package envtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestAssetsDir(t *testing.T) {
	withBins := func(t *testing.T, names ...string) string {
		d := t.TempDir()
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(d, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	tests := []struct {
		name      string
		assets    func(t *testing.T) string
		cache     func(t *testing.T) string
		wantAsset bool
		wantCache bool
	}{
		{name: "KUBEBUILDER_ASSETS", assets: func(t *testing.T) string { return withBins(t, "etcd", "kube-apiserver") }, cache: func(t *testing.T) string { return t.TempDir() }, wantAsset: true},
		{name: "script cache", assets: func(t *testing.T) string { return "" }, cache: func(t *testing.T) string {
			c := t.TempDir()
			bin := filepath.Join(c, "ebb", "envtest", KubeVersion, "bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"etcd", "kube-apiserver"} {
				if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			return c
		}, wantCache: true},
		{name: "apiserver missing", assets: func(t *testing.T) string { return withBins(t, "etcd") }, cache: func(t *testing.T) string { return t.TempDir() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assets, cache := tc.assets(t), tc.cache(t)
			t.Setenv("KUBEBUILDER_ASSETS", assets)
			t.Setenv("XDG_CACHE_HOME", cache)
			got, err := AssetsDir()
			switch {
			case tc.wantAsset:
				if err != nil || got != assets {
					t.Fatalf("AssetsDir() = %q, %v; want %q", got, err, assets)
				}
			case tc.wantCache:
				if want := filepath.Join(cache, "ebb", "envtest", KubeVersion, "bin"); err != nil || got != want {
					t.Fatalf("AssetsDir() = %q, %v; want %q", got, err, want)
				}
			default:
				if !errors.Is(err, ErrNoAssets) {
					t.Fatalf("AssetsDir() = %q, %v; want ErrNoAssets", got, err)
				}
			}
		})
	}
}

func TestStartServesTheAPI(t *testing.T) {
	cfg := Start(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := kube.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	if err != nil || ns.Name != "default" {
		t.Fatalf("get namespace default: %v", err)
	}
}
