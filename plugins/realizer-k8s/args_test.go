package k8s

import (
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/ebbscale/ebb/internal/optargs"
	"github.com/ebbscale/ebb/sdk"
)

// checkOptimizerArgs parses a unit Deployment's container command the way
// the image does: /entrypoint.sh dispatches on "optimizer", optimizer.sh
// takes the heap in MB as its second argument, and the rest goes to the
// optimizer, whose args4j parser rejects any option its version lacks. The
// version comes from the image tag (else the unit's version annotation).
func checkOptimizerArgs(t *testing.T, d *appsv1.Deployment) optargs.Parsed {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	v, ok := optargs.FromImage(c.Image)
	if !ok {
		var err error
		if v, err = optargs.ParseVersion(d.Annotations[AnnotationVersion]); err != nil {
			t.Fatalf("%s: no version in image %q nor annotation: %v", d.Name, c.Image, err)
		}
	}
	if len(c.Command) != 1 || c.Command[0] != "/entrypoint.sh" || len(c.Args) < 2 || c.Args[0] != "optimizer" {
		t.Fatalf("%s: command %v %v, want /entrypoint.sh optimizer <heapMb> …", d.Name, c.Command, c.Args)
	}
	if heap, err := strconv.Atoi(c.Args[1]); err != nil || heap <= 0 {
		t.Fatalf("%s: heap %q is not a number of MB", d.Name, c.Args[1])
	}
	p, err := optargs.Parse(v, c.Args[2:], nil)
	if err != nil {
		t.Fatalf("%s: the Amoro %s optimizer would reject %q: %v", d.Name, v, c.Args[2:], err)
	}
	return p
}

// The Deployments of 0.8 and 0.9 images against each version's option set:
// -st (and -msm) only where the optimizer has them, the drain budget in
// milliseconds, the grace period derived from it as Amoro does.
func TestUnitArgsPerVersion(t *testing.T) {
	kube := adminClient(t)
	for _, tc := range []struct {
		image, st string
		msm       bool
	}{
		{image: "apache/amoro:0.8.0-incubating"},
		{image: "apache/amoro:0.8.1-incubating"},
		{image: "apache/amoro:0.9.0-rc3"}, // no -st before rc4: treated as 0.8
		{image: "apache/amoro:0.9.0", st: "600000", msm: true},
		{image: "apache/amoro:0.10.0", st: "600000"},
	} {
		t.Run(tc.image, func(t *testing.T) {
			ns := newNamespace(t, kube)
			r := newRealizer(t, cluster(t).Config, unitConfig(ns, map[string]any{"image": tc.image, "drain-timeout": "10m", "master-slave-mode": tc.msm}))
			realize(t, r, sdk.Target{Chain: "lake", Name: "g"}, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}}})
			d := getDeployment(t, kube, ns, "ebb-optimizer-u1")
			p := checkOptimizerArgs(t, d)
			for k, want := range map[string]string{"-a": "thrift://ams:1261", "-p": "2", "-g": "g", "-id": "u1"} {
				if got, _ := p.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if got, _ := p.Get("-st"); got != tc.st {
				t.Errorf("-st = %q, want %q", got, tc.st)
			}
			if _, got := p.Get("-msm"); got != tc.msm {
				t.Errorf("-msm present %v, want %v", got, tc.msm)
			}
			if tc.st != "" {
				if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 600+30 {
					t.Errorf("grace %d, want 630 (Amoro's ceil(-st/1000)+30)", g)
				}
				// The same command line is what an 0.8 optimizer refuses.
				args := d.Spec.Template.Spec.Containers[0].Args[2:]
				if _, err := optargs.Parse(optargs.V08, args, nil); err == nil || !strings.Contains(err.Error(), "-st") {
					t.Errorf("0.8 accepted %q: %v", args, err)
				}
			}
		})
	}
}
