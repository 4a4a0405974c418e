#!/usr/bin/env bash
# Provides the binaries controller-runtime's envtest needs (etcd, kube-apiserver) on a fresh
# machine, without downloading prebuilt binaries (only Debian packages and the Go module proxy are
# reachable here):
#   - etcd from Debian's etcd-server package;
#   - kube-apiserver built from k8s.io/kubernetes in the Go module proxy.
#
# Usage:  export KUBEBUILDER_ASSETS="$(scripts/envtest.sh)"
#
# stdout carries ONLY the assets directory; all progress goes to stderr. The result is cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/ebb/envtest/<version>/bin, so a second run returns at once.
# Override the version with EBB_KUBE_VERSION (must be a k8s.io/kubernetes tag served by the proxy).
set -euo pipefail

KUBE_VERSION="${EBB_KUBE_VERSION:-v1.34.4}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/ebb/envtest"
DIR="$CACHE_ROOT/$KUBE_VERSION"
BIN="$DIR/bin"

log() { echo "envtest.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_etcd() {
	if [[ -x /usr/bin/etcd ]]; then
		return
	fi
	command -v apt-get >/dev/null || die "/usr/bin/etcd missing and apt-get not available; install etcd-server"
	local sudo=""
	if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
	log "installing Debian etcd-server"
	# An image's package lists may be stale or absent; update only when a plain install fails.
	if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends etcd-server >&2; then
		log "apt-get install failed; running apt-get update and retrying"
		$sudo apt-get update >&2
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends etcd-server >&2
	fi
	[[ -x /usr/bin/etcd ]] || die "etcd-server installed but /usr/bin/etcd is missing"
}

# Builds kube-apiserver in a throwaway module: k8s.io/kubernetes is not meant to be required, as its
# go.mod points every staging module (k8s.io/api, k8s.io/apimachinery, ...) at ./staging/...; we
# replace each with its published v0.Y.Z twin, which is the same code.
build_apiserver() {
	command -v go >/dev/null || die "go not found in PATH"
	local staging_version="v0.${KUBE_VERSION#v1.}"
	local work="$DIR/build"
	rm -rf "$work"
	mkdir -p "$work" "$BIN"

	log "resolving k8s.io/kubernetes@$KUBE_VERSION in the module proxy"
	local gomod
	gomod=$(cd "$work" && GOFLAGS=-mod=mod go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$KUBE_VERSION") ||
		die "k8s.io/kubernetes@$KUBE_VERSION is not available (try: go list -m -versions k8s.io/kubernetes)"
	[[ -f "$gomod" ]] || die "go.mod of k8s.io/kubernetes@$KUBE_VERSION not found at $gomod"

	local replaces
	replaces=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._/-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*$#\1#p' "$gomod" | sort -u)
	[[ -n "$replaces" ]] || die "no staging replacements found in $gomod"
	log "replacing $(wc -l <<<"$replaces") staging modules with $staging_version"

	{
		echo "module ebb.local/envtest-build"
		echo
		echo "go 1.24.0"
		echo
		echo "require k8s.io/kubernetes $KUBE_VERSION"
		echo
		while read -r m; do
			echo "replace $m => $m $staging_version"
		done <<<"$replaces"
	} >"$work/go.mod"

	log "building kube-apiserver $KUBE_VERSION (several minutes on 2 cores)"
	(cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver) >&2 ||
		die "building kube-apiserver failed"
	mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
	rm -rf "$work"
}

main() {
	ensure_etcd
	mkdir -p "$BIN"
	# envtest looks for "etcd" inside the assets directory.
	ln -sf /usr/bin/etcd "$BIN/etcd"
	if [[ ! -x "$BIN/kube-apiserver" ]]; then
		# Serialise concurrent callers (e.g. CI and a test script) so the slow build runs once.
		exec 9>"$CACHE_ROOT/.lock-$KUBE_VERSION"
		if command -v flock >/dev/null; then flock 9; fi
		if [[ ! -x "$BIN/kube-apiserver" ]]; then
			build_apiserver
		fi
	fi
	log "assets ready: etcd $(/usr/bin/etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p'), kube-apiserver $KUBE_VERSION"
	echo "$BIN"
}

main "$@"
