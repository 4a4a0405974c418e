// Package kubeapi holds what every Kubernetes realizer needs around API
// calls: bounded retries of transient errors and errors that lead with the
// reason a user acts on.
package kubeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Backoff bounds retries of transient API errors (429, 5xx, connection
// refused while the API server restarts). The RPC's deadline bounds them too.
type Backoff struct {
	Initial, Max time.Duration
	Attempts     int
}

// DefaultBackoff is what the realizers use outside tests.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Attempts: 8}

// Transient reports whether an API call may succeed if repeated unchanged.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 500 {
		return true
	}
	// client-go reports a dropped connection in a plain error in places.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "EOF") ||
		strings.Contains(msg, "connection reset")
}

// Do runs fn until it succeeds, fails for good, or the retries or ctx run out.
// what names the object for the error message.
func (b Backoff) Do(ctx context.Context, what string, fn func() error) error {
	delay := b.Initial
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil || !Transient(err) || attempt >= b.Attempts {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up retrying: %w)", what, err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, b.Max)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, Describe(err))
	}
	return nil
}

// apiError keeps the original error for errors.Is/As while leading with the
// reason a user acts on.
type apiError struct {
	reason string
	err    error
}

func (e *apiError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// Describe names why the API server refused, so a decision log says
// "forbidden" or "quota exceeded" rather than only the raw message.
func Describe(err error) error {
	var reason string
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		reason = "quota exceeded"
	case apierrors.IsForbidden(err):
		reason = "forbidden (check the realizer's RBAC Role in deploy/)"
	case apierrors.IsInvalid(err):
		reason = "invalid object"
	case apierrors.IsConflict(err):
		reason = "conflict"
	case apierrors.IsNotFound(err):
		reason = "not found"
	case apierrors.IsUnauthorized(err):
		reason = "unauthorized (check the credentials)"
	case Transient(err):
		reason = "API server unavailable"
	default:
		return err
	}
	return &apiError{reason: reason, err: err}
}
