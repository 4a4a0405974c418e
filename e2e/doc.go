// Package e2e holds ebb's end-to-end tests (issue 6): the real ebb binary
// running its builtin plugins out of process against the AMS emulator, a real
// kube-apiserver and etcd (envtest), emulated optimizer processes, and a real
// Prometheus server. The tests live in the _test.go files; this file only
// names the package.
//
// `go test ./e2e/` runs them (about two and a half minutes on two cores);
// `go test -short` skips the long ones. Without a Kubernetes test
// environment or a prometheus binary the tests that need them skip, except
// under CI=true where they fail. EBB_E2E_SEED replays the fault test's
// random choices.
package e2e
