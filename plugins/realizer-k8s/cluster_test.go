package k8s

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// serviceAccountBoundTo creates a service account bound only to the Role in
// roleFile (a file in deploy/) and returns a config that authenticates as it
// with a bearer token from the TokenRequest API.
func serviceAccountBoundTo(t *testing.T, kube kubernetes.Interface, ns, roleFile string) *rest.Config {
	t.Helper()
	ctx := testCtx(t)
	data, err := os.ReadFile(roleFile)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("%s: %v", roleFile, err)
	}
	if role.Kind != "Role" || len(role.Rules) == 0 {
		t.Fatalf("%s: not a Role with rules", roleFile)
	}
	role.Namespace = ns
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ebb", Namespace: ns}}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account: %v", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ebb", Namespace: ns}},
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}
	tok, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "ebb", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	admin := cluster(t).Config
	rc := &rest.Config{Host: admin.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}}

	// The authorizer learns of new bindings through a cache: wait until the
	// account may do the first thing the Role grants.
	as, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	first := role.Rules[0]
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: first.Verbs[0], Group: first.APIGroups[0], Resource: strings.Split(first.Resources[0], "/")[0], Subresource: subresource(first.Resources[0])},
	}}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		res, err := as.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, nil
		}
		return res.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("role binding never took effect: %v", err)
	}
	return rc
}

func subresource(r string) string {
	_, sub, _ := strings.Cut(r, "/")
	return sub
}

func TestRBACUnitRoleIsEnough(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	rc := serviceAccountBoundTo(t, kube, ns, "../../deploy/realizer-k8s-unit-role.yaml")
	r := newRealizer(t, rc, unitConfig(ns, nil))
	target := sdk.Target{Chain: "lake", Name: "group-a"}

	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}, {UnitID: "u2", Size: 1}, {UnitID: "u3", Size: 1}}})
	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}}) // retry: needs get
	createPod(t, kube, ns, "ebb-optimizer-u3-pod", map[string]string{LabelApp: "ebb-optimizer-u3", LabelManagedBy: ManagedByValue})
	realize(t, r, target, "req-2", sdk.Decision{Restart: []string{"u1"}, Drain: []string{"u2"}, Remove: []sdk.UnitRemove{{UnitID: "u3", Force: true}}})
	inv := inventory(t, r, target)
	if len(inv) != 2 || inv["u1"].Phase != sdk.PhaseRequested || inv["u2"].Phase != sdk.PhaseDraining {
		t.Errorf("inventory %v", inv)
	}

	// The Role is namespaced: elsewhere the account is refused, and says so.
	other := newRealizer(t, rc, unitConfig("default", nil))
	_, err := other.Inventory(testCtx(t), target)
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("inventory outside the Role's namespace: err %v, want forbidden", err)
	}
	_, err = other.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-3", Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u9", Size: 1}}}})
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "default/ebb-optimizer-u9") {
		t.Fatalf("create outside the Role's namespace: err %v, want forbidden naming the object", err)
	}
}

func TestRBACWorkloadRoleIsEnough(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	createDeployment(t, kube, ns, "web", 3)
	for _, p := range []string{"web-a", "web-b", "web-c"} {
		createPod(t, kube, ns, p, map[string]string{"app": "web"})
	}
	rc := serviceAccountBoundTo(t, kube, ns, "../../deploy/realizer-k8s-workload-role.yaml")
	r := newRealizer(t, rc, workloadConfig(ns, 1))
	target := sdk.Target{Chain: "web", Name: "deployments.apps/web"}

	if inv := inventory(t, r, target); len(inv) != 3 {
		t.Fatalf("inventory %v", inv)
	}
	realize(t, r, target, "req-1", sdk.Decision{DesiredCapacity: 2, Drain: []string{"web-c"}})
	realize(t, r, target, "req-2", sdk.Decision{DesiredCapacity: 1, Drain: []string{"web-b"}, Restart: []string{"web-a"}, Remove: []sdk.UnitRemove{{UnitID: "web-c", Force: true}}})
	if d := getDeployment(t, kube, ns, "web"); *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	if c := podCosts(t, kube, ns, "web-b"); c["web-b"] != "-2" { // web-b, then web-c
		t.Errorf("deletion cost %v", c)
	}
}

// lostResponse lets the first Deployment create reach the API server, then
// stops the server and reports the connection lost, as if the server had died
// while answering. It restarts the server in the background.
type lostResponse struct {
	next      http.RoundTripper
	fired     atomic.Bool
	restarted chan error
}

func (l *lostResponse) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/deployments") || !l.fired.CompareAndSwap(false, true) {
		return resp, err
	}
	if err == nil {
		_ = resp.Body.Close()
	}
	env := testEnv
	if err := env.StopAPIServer(); err != nil {
		l.restarted <- err
		return nil, err
	}
	go func() { l.restarted <- env.StartAPIServer() }()
	return nil, errors.New("connection lost: API server stopped")
}

func TestAPIServerRestartMidCycle(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	lr := &lostResponse{restarted: make(chan error, 1)}
	rc := rest.CopyConfig(cluster(t).Config)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { lr.next = rt; return lr }
	r := newRealizer(t, rc, unitConfig(ns, nil))
	// The server needs seconds to come back; the RPC deadline bounds this.
	r.backoff = kubeapi.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Attempts: 60}
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	d := sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}, {UnitID: "u2", Size: 1}, {UnitID: "u3", Size: 1}}}

	sum := realize(t, r, target, "req-1", d)
	if err := <-lr.restarted; err != nil {
		t.Fatalf("API server restart: %v", err)
	}
	if !lr.fired.Load() {
		t.Fatal("the API server was never stopped")
	}
	// u1 was created before the server died; the retry finds it.
	mustContain(t, sum, "exists u1; created u2; created u3")
	inv := inventory(t, r, target)
	if len(inv) != 3 {
		t.Fatalf("inventory after restart %v, want u1..u3 once each", inv)
	}
	list, err := kube.AppsV1().Deployments(ns).List(testCtx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Errorf("%d deployments, want 3", len(list.Items))
	}
}
