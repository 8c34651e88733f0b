#!/bin/bash
# gen.sh regenerates go.mod/go.sum of this tools module for new versions (run by hand,
# then commit). CI does not run it: it builds from the committed go.mod/go.sum (build.sh).
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION=${K8S_VERSION:-1.36.3}
ETCD_VERSION=${ETCD_VERSION:-3.6.8}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
SV=0.${K8S_VERSION#1.}
go mod download k8s.io/kubernetes@v$K8S_VERSION
MODFILE=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod
{
  printf 'module github.com/zeroscale/zeroscale/hack/k8slab\n\ngo %s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' \
    "$(awk '/^go /{print $2; exit}' "$MODFILE")" "$K8S_VERSION"
  awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$MODFILE" | sort -u |
    while read -r m; do printf '\t%s => %s v%s\n' "$m" "$m" "$SV"; done
  printf ')\n'
} > go.mod
# Versions pinned on every path: a bare path means @upgrade (k8s.io/kubernetes@latest).
go get -tool k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION \
  k8s.io/kubernetes/cmd/kube-scheduler@v$K8S_VERSION sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION
go get go.etcd.io/etcd/server/v3@v$ETCD_VERSION
go mod tidy
