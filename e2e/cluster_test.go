package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/envtest"
)

// envtest logs through controller-runtime's logger; unset, it prints a
// stack trace into the test output instead. Its messages add nothing here.
func init() { crlog.SetLogger(logr.Discard()) }

// cluster is a real kube-apiserver and etcd for one test, with one
// namespace for ebb's units.
type cluster struct {
	env  *envtest.Env
	kube kubernetes.Interface
	ns   string
}

// startCluster starts a control plane for one test (each test gets its own:
// the fault test stops and restarts its API server). Without envtest
// binaries the test skips, or fails under CI=true. crds are CRD files or
// directories to install.
func startCluster(t *testing.T, crds ...string) *cluster {
	t.Helper()
	env, err := envtest.StartEnv(envtest.Options{CRDPaths: crds})
	if err != nil {
		envtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	kube, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	c := &cluster{env: env, kube: kube, ns: "amoro"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return c
}

// realizerKubeconfig writes a kubeconfig for realizer-k8s that
// authenticates as a service account bound only to the unit-mode Role the
// project ships (deploy/), as an operator would deploy it.
func (c *cluster) realizerKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	return c.roleKubeconfig(t, dir, "realizer-k8s-unit-role.yaml",
		authorizationv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "deployments"})
}

// roleKubeconfig is realizerKubeconfig for the Role in deploy/roleFile;
// probe is the realizer's first call, awaited until the binding allows it.
func (c *cluster) roleKubeconfig(t *testing.T, dir, roleFile string, probe authorizationv1.ResourceAttributes) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data, err := os.ReadFile(filepath.Join("..", "deploy", roleFile))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("deploy/%s: %v", roleFile, err)
	}
	role.Namespace = c.ns
	if _, err := c.kube.RbacV1().Roles(c.ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Role: %v", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ebb", Namespace: c.ns}}
	if _, err := c.kube.CoreV1().ServiceAccounts(c.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount: %v", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb", Namespace: c.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: c.ns}},
	}
	if _, err := c.kube.RbacV1().RoleBindings(c.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create RoleBinding: %v", err)
	}
	path := c.tokenKubeconfig(t, ctx, c.ns, sa.Name, dir)

	probe.Namespace = c.ns
	waitAllowed(t, ctx, path, probe)
	return path
}

// tokenKubeconfig writes dir/kubeconfig authenticating as service account
// ns/sa with a bearer token from the TokenRequest API, as a pod's projected
// token does.
func (c *cluster) tokenKubeconfig(t *testing.T, ctx context.Context, ns, sa, dir string) string {
	t.Helper()
	expiry := int64(2 * 3600)
	tok, err := c.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	server := c.env.Config.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.env.Config.CAData}
	kc.AuthInfos["ebb"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["ebb"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "ebb", Namespace: ns}
	kc.CurrentContext = "ebb"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}

// waitAllowed waits until the identity of kubeconfig may do probe: the RBAC
// authorizer learns of a new binding through its cache.
func waitAllowed(t *testing.T, ctx context.Context, kubeconfig string, probe authorizationv1.ResourceAttributes) {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("reading back the kubeconfig: %v", err)
	}
	as := kubernetes.NewForConfigOrDie(rest.CopyConfig(rc))
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &probe,
	}}
	waitFor(t, 30*time.Second, fmt.Sprintf("a RoleBinding allowing %s %s to take effect", probe.Verb, probe.Resource), func() bool {
		res, err := as.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed
	}, nil)
}
