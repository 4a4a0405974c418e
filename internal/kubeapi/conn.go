package kubeapi

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ebbscale/ebb/internal/kubeconfig"
	"github.com/ebbscale/ebb/sdk"
)

// Conn is how a Kubernetes realizer reaches its cluster: the config keys
// every one of them has. Embed it in a plugin's Config.
type Conn struct {
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
	InCluster  bool   `json:"in-cluster"`
	Namespace  string `json:"namespace"`
}

// ConnAttributes are Conn's schema attributes; what names the objects in
// the namespace ("of the units").
func ConnAttributes(what string) []sdk.Attribute {
	return []sdk.Attribute{
		{Name: "kubeconfig", Type: sdk.TypeString, Description: "Path of a kubeconfig file. Empty: $KUBECONFIG, then ~/.kube/config, unless in-cluster is set."},
		{Name: "context", Type: sdk.TypeString, Description: "kubeconfig context to use; empty means its current context."},
		{Name: "in-cluster", Type: sdk.TypeBool, Default: false, Description: "Use the pod's service account instead of a kubeconfig."},
		{Name: "namespace", Type: sdk.TypeString, Default: "default", Description: "Namespace " + what + "."},
	}
}

// Validate lists what is wrong with the settings.
func (c Conn) Validate() []error {
	var errs []error
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", c.Namespace, strings.Join(msgs, "; ")))
	}
	if c.InCluster && (c.Kubeconfig != "" || c.Context != "") {
		errs = append(errs, errors.New("in-cluster cannot be combined with kubeconfig or context"))
	}
	return errs
}

// RESTConfig loads the client configuration: override when set (tests and
// an embedding runner hand in their own), else the in-cluster config, else
// the kubeconfig. Retries are the realizer's (Backoff): client-go's own rate
// limiter would only delay a decision without saying why, so it is opened
// wide; userAgent names the realizer to the API server's audit log.
func (c Conn) RESTConfig(override *rest.Config, userAgent string) (*rest.Config, error) {
	rc, err := kubeconfig.Load(override, c.InCluster, c.Kubeconfig, c.Context)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 50, 100
	if rc.UserAgent == "" {
		rc.UserAgent = userAgent
	}
	return rc, nil
}

// Clients are the API clients a realizer works through.
type Clients struct {
	Kube kubernetes.Interface
	Dyn  dynamic.Interface
}

// Connect loads the client configuration (RESTConfig) and builds both
// clients from it.
func (c Conn) Connect(override *rest.Config, userAgent string) (Clients, error) {
	rc, err := c.RESTConfig(override, userAgent)
	if err != nil {
		return Clients{}, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return Clients{}, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return Clients{}, fmt.Errorf("dynamic client: %w", err)
	}
	return Clients{Kube: kube, Dyn: dyn}, nil
}

// SortUnits orders an inventory oldest first, then by id, so that listings
// are stable from call to call.
func SortUnits(units []sdk.Unit) {
	sort.Slice(units, func(i, j int) bool {
		if !units[i].CreatedAt.Equal(units[j].CreatedAt) {
			return units[i].CreatedAt.Before(units[j].CreatedAt)
		}
		return units[i].ID < units[j].ID
	})
}

// ForceOverdue calls remove for every unit that has drained for longer than
// timeout at now: its worker had its chance to finish. It returns what was
// removed and every error.
func ForceOverdue(units []sdk.Unit, now time.Time, timeout time.Duration, remove func(unitID string) (string, error)) (string, error) {
	var done []string
	var errs []error
	for _, u := range units {
		if u.Phase != sdk.PhaseDraining || now.Sub(u.DrainStartedAt) <= timeout {
			continue
		}
		s, err := remove(u.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, s+" (drain timeout)")
	}
	return strings.Join(done, "; "), errors.Join(errs...)
}
