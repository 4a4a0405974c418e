// Package envtest starts a real kube-apiserver and etcd for tests, using
// controller-runtime's envtest with binaries provided by scripts/envtest.sh.
//
// Binaries are looked up in $KUBEBUILDER_ASSETS, then in the cache that
// scripts/envtest.sh fills (${XDG_CACHE_HOME:-$HOME/.cache}/ebb/envtest/<version>/bin),
// so a developer who ran the script once needs no environment variable.
// Without binaries a test is skipped, except under CI=true where it fails:
// a CI run must never pass by testing nothing.
package envtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubeVersion is the kube-apiserver version scripts/envtest.sh builds by default.
const KubeVersion = "v1.34.4"

// ErrNoAssets means the envtest binaries are not installed.
var ErrNoAssets = errors.New("envtest binaries not found: run `export KUBEBUILDER_ASSETS=$(scripts/envtest.sh)`")

// Env is a running control plane: etcd plus kube-apiserver.
type Env struct {
	// Config authenticates as a cluster admin.
	Config  *rest.Config
	env     *crenvtest.Environment
	certDir string
}

// Options tunes Start.
type Options struct {
	// CRDPaths are files or directories of CustomResourceDefinitions to
	// install before returning.
	CRDPaths []string
}

// Required is true where a missing test environment is a failure (CI=true).
func Required() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// AssetsDir returns the directory holding etcd and kube-apiserver.
func AssetsDir() (string, error) {
	var candidates []string
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		candidates = append(candidates, d)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		candidates = append(candidates, filepath.Join(cache, "ebb", "envtest", KubeVersion, "bin"))
	}
	for _, d := range candidates {
		if isExec(filepath.Join(d, "etcd")) && isExec(filepath.Join(d, "kube-apiserver")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s)", ErrNoAssets, strings.Join(candidates, ", "))
}

func isExec(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// StartEnv starts a control plane; the caller must Stop it. It is meant for
// TestMain, where one control plane serves a whole test binary.
func StartEnv(opts Options) (*Env, error) {
	dir, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	// A fixed certificate directory (instead of envtest's throwaway one)
	// keeps the serving CA and service-account keys across an API server
	// restart, so clients made before the restart keep working after it.
	certDir, err := os.MkdirTemp("", "ebb-envtest-certs-")
	if err != nil {
		return nil, fmt.Errorf("creating envtest cert dir: %w", err)
	}
	env := &crenvtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     opts.CRDPaths,
		ErrorIfCRDPathMissing: len(opts.CRDPaths) > 0,
	}
	env.ControlPlane.GetAPIServer().CertDir = certDir
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("starting envtest control plane from %s: %w", dir, err)
	}
	return &Env{Config: cfg, env: env, certDir: certDir}, nil
}

// Stop stops the API server and etcd and removes their files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if rmErr := os.RemoveAll(e.certDir); rmErr != nil && err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("stopping envtest control plane: %w", err)
	}
	return nil
}

// StopAPIServer stops kube-apiserver only; etcd keeps the cluster's state.
func (e *Env) StopAPIServer() error {
	if err := e.env.ControlPlane.GetAPIServer().Stop(); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	return nil
}

// StartAPIServer starts a kube-apiserver stopped by StopAPIServer on the same
// address, certificates and etcd, and waits until it is healthy.
func (e *Env) StartAPIServer() error {
	if err := e.env.ControlPlane.GetAPIServer().Start(); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	return nil
}

// Start starts a control plane for one test and stops it when the test ends.
// Without binaries it skips the test, or fails it under CI=true.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	env, err := StartEnv(Options{})
	if err != nil {
		SkipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return env.Config
}

// SkipOrFail ends a test that cannot get its control plane: a skip on a
// developer's machine without binaries, a failure under CI=true or for any
// other reason (binaries present but not starting is a real problem).
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoAssets) && !Required() {
		t.Skipf("no Kubernetes test environment: %v", err)
	}
	t.Fatalf("Kubernetes test environment: %v", err)
}

// WriteKubeconfig writes a kubeconfig for the admin Config, for plugin
// processes that read one.
func (e *Env) WriteKubeconfig(path string) error {
	server := e.Config.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: e.Config.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: e.Config.CertData,
		ClientKeyData: e.Config.KeyData, Token: e.Config.BearerToken}
	kc.Contexts["admin"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "admin"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
