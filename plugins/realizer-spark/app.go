package spark

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GVR is the spark-operator's SparkApplication resource.
var GVR = schema.GroupVersionResource{Group: "sparkoperator.k8s.io", Version: "v1beta2", Resource: "sparkapplications"}

// Application states as the spark-operator writes them to
// status.applicationState.state (api/v1beta2/sparkapplication_types.go).
const (
	StateNew              = ""
	StateSubmitted        = "SUBMITTED"
	StateRunning          = "RUNNING"
	StateCompleted        = "COMPLETED"
	StateFailed           = "FAILED"
	StateFailedSubmission = "SUBMISSION_FAILED"
	StatePendingRerun     = "PENDING_RERUN"
	StateInvalidating     = "INVALIDATING"
	StateSucceeding       = "SUCCEEDING"
	StateFailing          = "FAILING"
	StateSuspending       = "SUSPENDING"
	StateSuspended        = "SUSPENDED"
	StateResuming         = "RESUMING"
	StateUnknown          = "UNKNOWN"
)

// live is true in the states where a driver may be running. The operator
// answers any spec change (but suspend and timeToLiveSeconds) by setting
// INVALIDATING, deleting the driver and resubmitting
// (internal/controller/sparkapplication/event_filter.go), so a spec change
// in these states restarts the application and loses its in-flight work;
// in the others there is nothing running to lose.
func live(state string) bool {
	switch state {
	case StateSubmitted, StateRunning, StateUnknown, StateResuming, StateSuspending:
		return true
	}
	return false
}

// dead is true in the states from which the operator, with restartPolicy
// Never, will not run the application again by itself.
func dead(state string) bool {
	switch state {
	case StateFailed, StateFailedSubmission, StateCompleted, StateFailing, StateSucceeding:
		return true
	}
	return false
}

// view is the part of a SparkApplication ebb reads.
type view struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		DynamicAllocation *struct {
			Enabled      bool   `json:"enabled"`
			MinExecutors *int64 `json:"minExecutors"`
			MaxExecutors *int64 `json:"maxExecutors"`
		} `json:"dynamicAllocation"`
		Executor struct {
			Cores     *int64 `json:"cores"`
			Instances *int64 `json:"instances"`
		} `json:"executor"`
		Driver struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"driver"`
	} `json:"spec"`
	Status struct {
		AppState struct {
			State        string `json:"state"`
			ErrorMessage string `json:"errorMessage"`
		} `json:"applicationState"`
		ExecutorState map[string]string `json:"executorState"`
		DriverInfo    struct {
			PodName string `json:"podName"`
		} `json:"driverInfo"`
		LastSubmissionAttemptTime *metav1.Time `json:"lastSubmissionAttemptTime"`
	} `json:"status"`
}

func viewOf(u *unstructured.Unstructured) (*view, error) {
	var v view
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		return nil, fmt.Errorf("SparkApplication %s/%s: unexpected shape: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &v, nil
}

func (v *view) state() string { return v.Status.AppState.State }

// stateLabel names a state for people: the operator's new state is "".
func stateLabel(s string) string {
	if s == StateNew {
		return "NEW"
	}
	return s
}

// maxConflictRetries bounds read-modify-write rounds lost to other writers
// (the operator updates status, a user edits the spec).
const maxConflictRetries = 8

// errUnchanged tells update that the object already is as wanted.
var errUnchanged = errors.New("unchanged")

// update reads the application, lets mutate change it and writes it with
// the resourceVersion it read; a conflict re-reads and mutates again, so
// mutate's checks always judge the current object. mutate returns
// errUnchanged to write nothing.
func (r *Realizer) update(ctx context.Context, ns, name string, mutate func(*unstructured.Unstructured) error) (bool, error) {
	apps := r.dyn.Resource(GVR).Namespace(ns)
	for attempt := 1; ; attempt++ {
		var obj *unstructured.Unstructured
		if err := r.backoff.Do(ctx, fmt.Sprintf("get SparkApplication %s/%s", ns, name), func() error {
			var err error
			obj, err = apps.Get(ctx, name, metav1.GetOptions{})
			return err
		}); err != nil {
			return false, err
		}
		if err := mutate(obj); errors.Is(err, errUnchanged) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		if r.beforeWrite != nil {
			r.beforeWrite(name)
		}
		err := r.backoff.Do(ctx, fmt.Sprintf("update SparkApplication %s/%s", ns, name), func() error {
			_, err := apps.Update(ctx, obj, metav1.UpdateOptions{})
			return err
		})
		if err == nil {
			return true, nil
		}
		if !apierrors.IsConflict(err) || attempt >= maxConflictRetries {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("update SparkApplication %s/%s: %w", ns, name, ctx.Err())
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// list returns the applications in ns matching the label selector.
func (r *Realizer) list(ctx context.Context, ns, selector string) ([]unstructured.Unstructured, error) {
	var list *unstructured.UnstructuredList
	err := r.backoff.Do(ctx, fmt.Sprintf("list SparkApplications in %s (%s)", ns, selector), func() error {
		var err error
		list, err = r.dyn.Resource(GVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}
