package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/podman"
	k8s "github.com/ebbscale/ebb/plugins/realizer-k8s"
)

// The chart's release as the test installs it.
const (
	chartDir    = "../deploy/helm/ebb"
	releaseNS   = "ebb"
	releaseName = "ebb"
)

// helmBinary is the helm that scripts/test builds from the Go module proxy
// and names in EBB_HELM. Without it the test skips, and fails under CI=true.
func helmBinary(t *testing.T) string {
	t.Helper()
	h := os.Getenv("EBB_HELM")
	if h == "" {
		if ciRequired() {
			t.Fatal("EBB_HELM is not set: scripts/test builds helm and sets it")
		}
		t.Skip("EBB_HELM is not set (scripts/test builds helm and sets it)")
	}
	return h
}

// helmTemplate renders the chart as `helm template` does for an install
// into releaseNS, and decodes every object.
func helmTemplate(t *testing.T, helm string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.Command(helm, append([]string{"template", releaseName, chartDir, "--namespace", releaseNS}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the rendered chart: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("rendered chart: %v\n%s", err, doc)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// as converts a rendered object into its typed form.
func as[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if o == nil {
		t.Fatalf("the chart did not render a %T", v)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}

// apply creates each object in the API server, or replaces it when it
// exists (a helm upgrade), so the server's validation sees every manifest.
func (c *cluster) apply(t *testing.T, ctx context.Context, objs []*unstructured.Unstructured) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(c.env.Config)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(c.env.Config)))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, o.GetName(), err)
		}
		res := dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		_, err = res.Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			var cur *unstructured.Unstructured
			if cur, err = res.Get(ctx, o.GetName(), metav1.GetOptions{}); err == nil {
				o.SetResourceVersion(cur.GetResourceVersion())
				_, err = res.Update(ctx, o, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			t.Fatalf("applying %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
}

// forbidden asserts that the API server refuses err with 403.
func forbidden(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: want 403 Forbidden (the chart does not grant it), got %v", what, err)
	}
}

// TestHelmChart installs the rendered chart on a real API server and runs
// the runner as the chart's ServiceAccount, with a token from the
// TokenRequest API and nothing but the chart's RBAC: a realizer-k8s chain
// scales Amoro optimizer Deployments against the emulated AMS, and what the
// chart does not grant is refused. Then the kubernetes state backend's
// switch grants Leases and ConfigMaps in the release namespace only.
func TestHelmChart(t *testing.T) {
	long(t)
	helm := helmBinary(t)
	objs := helmTemplate(t, helm, "-f", "testdata/helm-values.yaml")

	// The realizer Roles are those of deploy/, which the realizers' own
	// tests run under.
	all := helmTemplate(t, helm, "--set", "realizers[0].mode=k8s-unit,realizers[0].namespace=a",
		"--set", "realizers[1].mode=k8s-workload,realizers[1].namespace=b",
		"--set", "realizers[2].mode=spark,realizers[2].namespace=c")
	for mode, file := range map[string]string{"k8s-unit": "realizer-k8s-unit-role.yaml",
		"k8s-workload": "realizer-k8s-workload-role.yaml", "spark": "realizer-spark-role.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "deploy", file))
		if err != nil {
			t.Fatal(err)
		}
		var want rbacv1.Role
		if err := yaml.UnmarshalStrict(data, &want); err != nil {
			t.Fatal(err)
		}
		if got := as[rbacv1.Role](t, find(all, "Role", releaseName+"-"+mode)); !reflect.DeepEqual(got.Rules, want.Rules) {
			t.Errorf("the chart's %s Role differs from deploy/%s:\n%+v\n%+v", mode, file, got.Rules, want.Rules)
		}
	}

	// What the pod would run: the image's ebb with the ConfigMap mounted at
	// /etc/ebb, probes the runner answers without a token.
	dep := as[appsv1.Deployment](t, find(objs, "Deployment", releaseName))
	ctr := dep.Spec.Template.Spec.Containers[0]
	if want := []string{"run", "--config", "/etc/ebb/config.hcl"}; !slices.Equal(ctr.Args, want) {
		t.Fatalf("container args %q, want %q", ctr.Args, want)
	}
	if ctr.LivenessProbe.HTTPGet.Path != "/v1/health" || ctr.ReadinessProbe.HTTPGet.Path != "/v1/ready" {
		t.Fatalf("probes %s and %s", ctr.LivenessProbe.HTTPGet.Path, ctr.ReadinessProbe.HTTPGet.Path)
	}
	if sa := dep.Spec.Template.Spec.ServiceAccountName; sa != releaseName {
		t.Fatalf("the pod runs as service account %q", sa)
	}

	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	c.apply(t, ctx, objs)

	// The config as the pod reads it: from the ConfigMap in the API server.
	cm, err := c.kube.CoreV1().ConfigMaps(releaseNS).Get(ctx, releaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := c.tokenKubeconfig(t, ctx, releaseNS, releaseName, dir)
	waitAllowed(t, ctx, kubeconfig, authorizationv1.ResourceAttributes{Namespace: c.ns, Verb: "list", Group: "apps", Resource: "deployments"})
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	asSA := kubernetes.NewForConfigOrDie(rc)

	bin := ebbBinary(t)
	a := startAMS(t, "lake")
	startKubelet(t, c.kube, c.ns, bin, bootDelay)
	r := newRunner(t, bin, dir, cm.Data["config.hcl"])
	// The pod finds the API server through its service account; here the
	// kubeconfig holds the same account's token.
	r.extraEnv = []string{"KUBECONFIG=" + kubeconfig, "AMS_URL=" + a.url, "POD_NAME=ebb-0", "POD_NAMESPACE=" + releaseNS}
	r.start()

	units := func() []string {
		list, err := c.kube.AppsV1().Deployments(c.ns).List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelManagedBy + "=" + k8s.ManagedByValue})
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, d := range list.Items {
			out = append(out, d.Name)
		}
		return out
	}
	state := func() string {
		v, err := r.chain("helm")
		return strings.Join(units(), ",") + "; " + v.Chain.LastError + " " + errString(err)
	}
	waitFor(t, 60*time.Second, "the floor (one unit) to be created", func() bool { return len(units()) == 1 }, state)
	a.burst(t, "orders", 60, 2*time.Second)
	waitFor(t, 90*time.Second, "a scale-up past the floor", func() bool { return len(units()) >= 3 }, state)
	if v, err := r.chain("helm"); err != nil || v.Chain.LastError != "" {
		t.Fatalf("chain: %v %q", err, v.Chain.LastError)
	}

	// What the chart does not grant is refused: workload-mode scaling, the
	// release's Secrets, units in another namespace, and (with bolt) Leases.
	name := units()[0]
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	_, err = asSA.AppsV1().Deployments(c.ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{})
	forbidden(t, "updating deployments/scale", err)
	_, err = asSA.CoreV1().Secrets(releaseNS).List(ctx, metav1.ListOptions{})
	forbidden(t, "listing Secrets", err)
	_, err = asSA.AppsV1().Deployments(releaseNS).List(ctx, metav1.ListOptions{})
	forbidden(t, "listing Deployments in the release namespace", err)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "ebb-shard-0"}}
	_, err = asSA.CoordinationV1().Leases(releaseNS).Create(ctx, lease, metav1.CreateOptions{})
	forbidden(t, "creating a Lease with state.backend=bolt", err)
	r.stop()

	// The same pod in the image, if scripts/test built it: in-cluster
	// config from a mounted service account, the chart's read-only root.
	if img := os.Getenv("EBB_IMAGE"); img != "" {
		runPod(t, ctx, c, img, dep, cm.Data["config.hcl"], a.url)
	} else if ciRequired() {
		t.Fatal("EBB_IMAGE is not set: scripts/test builds the image and sets it")
	} else {
		t.Log("EBB_IMAGE is not set: the runner was not run in the image")
	}

	// state.backend=kubernetes: an upgrade to three replicas grants the
	// runner its Leases and ConfigMaps, in the release namespace only.
	kube := helmTemplate(t, helm, "-f", "testdata/helm-values.yaml", "--set", "state.backend=kubernetes,replicas=3")
	data, err := os.ReadFile(filepath.Join("..", "deploy", "runner-state-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wantRunner rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &wantRunner); err != nil {
		t.Fatal(err)
	}
	if got := as[rbacv1.Role](t, find(kube, "Role", releaseName+"-runner")); !reflect.DeepEqual(got.Rules, wantRunner.Rules) {
		t.Errorf("the chart's runner Role differs from deploy/runner-state-role.yaml (what e2e's replica test runs under):\n%+v\n%+v", got.Rules, wantRunner.Rules)
	}
	c.apply(t, ctx, kube)
	waitAllowed(t, ctx, kubeconfig, authorizationv1.ResourceAttributes{Namespace: releaseNS, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"})
	l, err := asSA.CoordinationV1().Leases(releaseNS).Create(ctx, lease, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a Lease: %v", err)
	}
	if _, err := asSA.CoordinationV1().Leases(releaseNS).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("renewing a Lease: %v", err)
	}
	if err := asSA.CoordinationV1().Leases(releaseNS).Delete(ctx, l.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting a Lease (a replica's own heartbeat, at shutdown): %v", err)
	}
	st := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ebb-state-helm"}, Data: map[string]string{"v": "1"}}
	if st, err = asSA.CoreV1().ConfigMaps(releaseNS).Create(ctx, st, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a state ConfigMap: %v", err)
	}
	if _, err := asSA.CoreV1().ConfigMaps(releaseNS).Update(ctx, st, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating a state ConfigMap: %v", err)
	}
	err = asSA.CoreV1().ConfigMaps(releaseNS).Delete(ctx, st.Name, metav1.DeleteOptions{})
	forbidden(t, "deleting a state ConfigMap (the state backend never does)", err)
	_, err = asSA.CoreV1().ConfigMaps(releaseNS).List(ctx, metav1.ListOptions{})
	forbidden(t, "listing ConfigMaps (the state backend reads its own by name)", err)
	_, err = asSA.CoordinationV1().Leases(c.ns).Create(ctx, lease, metav1.CreateOptions{})
	forbidden(t, "creating a Lease outside the release namespace", err)
	_, err = asSA.CoreV1().ConfigMaps(c.ns).List(ctx, metav1.ListOptions{})
	forbidden(t, "listing ConfigMaps outside the release namespace", err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runPod runs the chart's pod spec in podman as a kubelet would: the image
// from archive, the ConfigMap and the service account's token mounted where
// Kubernetes mounts them, in-cluster config (KUBERNETES_SERVICE_HOST), the
// pod's user, read-only root and volumes. It waits until the chain has
// evaluated (/v1/ready: the realizer configured in-cluster and listed its
// units with the chart's RBAC).
func runPod(t *testing.T, ctx context.Context, c *cluster, archive string, dep *appsv1.Deployment, config, amsURL string) {
	t.Helper()
	pm, err := podman.Find()
	if err != nil {
		t.Logf("the runner was not run in the image: %v", err)
		return
	}
	ref, err := pm.Load(archive)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfgDir, saDir := filepath.Join(dir, "config"), filepath.Join(dir, "serviceaccount")
	tok, err := c.kube.CoreV1().ServiceAccounts(releaseNS).CreateToken(ctx, dep.Spec.Template.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	for path, data := range map[string]string{
		filepath.Join(cfgDir, "config.hcl"): config,
		filepath.Join(saDir, "token"):       tok.Status.Token,
		filepath.Join(saDir, "ca.crt"):      string(c.env.Config.CAData),
		filepath.Join(saDir, "namespace"):   releaseNS,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(c.env.Config.Host, "https://"))
	if err != nil {
		t.Fatalf("API server address %q: %v", c.env.Config.Host, err)
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	sc := dep.Spec.Template.Spec.SecurityContext
	addr := freeAddr(t)
	name := fmt.Sprintf("ebb-e2e-pod-%d", os.Getpid())
	args := []string{"run", "--name", name, "--network=host",
		"--user", fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsGroup),
		"-e", "KUBERNETES_SERVICE_HOST=" + host, "-e", "KUBERNETES_SERVICE_PORT=" + port,
		"-e", "AMS_URL=" + amsURL, "-e", "POD_NAME=ebb-pod", "-e", "POD_NAMESPACE=" + releaseNS,
		"-v", saDir + ":/var/run/secrets/kubernetes.io/serviceaccount:ro"}
	if ctr.SecurityContext != nil && ctr.SecurityContext.ReadOnlyRootFilesystem != nil && *ctr.SecurityContext.ReadOnlyRootFilesystem {
		args = append(args, "--read-only")
	}
	for _, m := range ctr.VolumeMounts {
		switch m.Name {
		case "config":
			args = append(args, "-v", cfgDir+":"+m.MountPath+":ro")
		default: // emptyDir and the state claim: fresh, owned by the pod's user (fsGroup)
			args = append(args, "--tmpfs", m.MountPath+":U")
		}
	}
	// The chart's config listens on :9464; here the host's network is shared.
	args = append(append(append(args, ref), ctr.Args...), "--http", addr)
	var logs bytes.Buffer
	cmd := pm.Command(args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		pm.Command("stop", "-t", "10", name).Run()
		<-done
		pm.Command("rmi", ref).Run()
	})
	var last string
	waitFor(t, 90*time.Second, "the runner in the image to be ready", func() bool {
		select {
		case <-done:
			t.Fatalf("the runner in the image exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/v1/ready")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		return resp.StatusCode == http.StatusOK
	}, func() string { return last + "\n" + logs.String() })
	var v chainView
	resp, err := http.Get("http://" + addr + "/v1/chains/helm")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Chain.Last == nil || v.Chain.LastError != "" {
		t.Fatalf("the chain in the image: %v %+v\n%s", err, v.Chain, logs.String())
	}
	if n := len(v.Chain.Last.Inventory); n < 3 {
		t.Fatalf("the runner in the image sees %d units, want the %d the first run made", n, 3)
	}
	t.Logf("the runner in %s evaluated chain helm in-cluster, %d units", ref, len(v.Chain.Last.Inventory))
}
