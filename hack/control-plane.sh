#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl for envtest into bin/k8s/<version>/ from the Go module
# proxy (setup-envtest downloads release archives, which this machine cannot reach).
# Idempotent: does nothing when the three binaries already exist. Prints the directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
dir="$root/bin/k8s/$K8S_VERSION"
if [[ -x $dir/kube-apiserver && -x $dir/etcd && -x $dir/kubectl ]]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$dir"
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	# Without these the server reports v0.0.0-master and Helm's version checks fail.
	ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
done
cd "$root/hack/envtest"
echo "building the envtest control plane $K8S_VERSION into $dir (about 5 minutes the first time)" >&2
export CGO_ENABLED=0
go build -trimpath -ldflags "$ldflags" -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -trimpath -ldflags "-s -w" -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
go build -trimpath -ldflags "$ldflags" -o "$dir/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >&2
for b in kube-apiserver etcd kubectl; do mv "$dir/$b.tmp" "$dir/$b"; done
echo "$dir"
