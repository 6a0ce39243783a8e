#!/usr/bin/env bash
# Puts kube-apiserver, etcd and kubectl for envtest into bin/k8s/<version>/ and prints that
# directory. First the official envtest archive of controller-tools (what setup-envtest uses:
# seconds where GitHub is reachable), its sha512 checked against the release index; when that
# fails — quickly: 5 s to connect — they are built from the Go module proxy (hack/envtest),
# each with a progress line every 10 s. Idempotent: nothing to do when the three exist.
#   MSS_PROGRESS_STEP=N/T   the step of the caller's run (make run) these lines belong to
#   MSS_ENVTEST_INDEX_URL   the release index (a mirror, or a test's loopback server)
#   MSS_ENVTEST_BUILD=0     never build (fail when the archive cannot be had)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
dir=${MSS_K8S_DIR:-$root/bin/k8s/$K8S_VERSION}
if [[ -x $dir/kube-apiserver && -x $dir/etcd && -x $dir/kubectl ]]; then
	if [[ -n ${MSS_PROGRESS_STEP:-} ]]; then
		"$("$root/hack/progress.sh")" step "$MSS_PROGRESS_STEP" "control plane $K8S_VERSION: in ${dir#"$root"/} already"
	fi
	echo "$dir"
	exit 0
fi
step=${MSS_PROGRESS_STEP:-1/1}
progress=$("$root/hack/progress.sh")
say() { "$progress" step "$step" "control plane $K8S_VERSION: $*"; }
mkdir -p "$dir"

# official fetches the envtest archive for this machine and unpacks it into $dir; it fails
# (saying why) when the index, the archive or its checksum cannot be had.
official() {
	local index=${MSS_ENVTEST_INDEX_URL:-https://raw.githubusercontent.com/kubernetes-sigs/controller-tools/HEAD/envtest-releases.yaml}
	local os arch name tmp url hash
	command -v curl >/dev/null || { echo "curl is not installed"; return 1; }
	os=$(go env GOOS) arch=$(go env GOARCH)
	name="envtest-$K8S_VERSION-$os-$arch.tar.gz"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	if ! curl -fsSL --connect-timeout 5 --max-time 60 -o "$tmp/index.yaml" "$index" 2>"$tmp/err"; then
		echo "the release index is not reachable ($(tr -d '\n' <"$tmp/err"))"
		return 1
	fi
	# The index: releases: → <version>: → <archive>: → hash: <sha512>, selfLink: <url>.
	hash=$(grep -A3 -F " $name:" "$tmp/index.yaml" | sed -n 's/^ *hash: *//p' | head -1)
	url=$(grep -A3 -F " $name:" "$tmp/index.yaml" | sed -n 's/^ *selfLink: *//p' | head -1)
	if [[ -z $hash || -z $url ]]; then
		echo "the release index has no $name"
		return 1
	fi
	say "downloading $name"
	if ! curl -fsSL --connect-timeout 5 --max-time 900 -o "$tmp/$name" "$url" 2>"$tmp/err"; then
		echo "the archive is not reachable ($(tr -d '\n' <"$tmp/err"))"
		return 1
	fi
	if [[ $(sha512sum "$tmp/$name" | cut -d' ' -f1) != "$hash" ]]; then
		echo "$name does not match the sha512 of the release index"
		return 1
	fi
	mkdir -p "$tmp/x"
	tar -xzf "$tmp/$name" -C "$tmp/x"
	for b in kube-apiserver etcd kubectl; do
		local f
		f=$(find "$tmp/x" -type f -name "$b" | head -1)
		[[ -n $f ]] || { echo "$name has no $b"; return 1; }
		install -m 0755 "$f" "$dir/$b.tmp"
	done
	for b in kube-apiserver etcd kubectl; do mv "$dir/$b.tmp" "$dir/$b"; done
}

say "trying the official envtest archive"
if why=$(official); then
	say "installed from the official archive into $dir"
	echo "$dir"
	exit 0
fi
if [[ ${MSS_ENVTEST_BUILD:-1} == 0 ]]; then
	say "$why; not building (MSS_ENVTEST_BUILD=0)"
	exit 1
fi
say "$why; building kube-apiserver, etcd and kubectl from the Go module proxy instead (about 10 minutes on 2 cores the first time, cached afterwards)"
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	# Without these the server reports v0.0.0-master and Helm's version checks fail.
	ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
done
export CGO_ENABLED=0
build() { # build N NAME PACKAGE LDFLAGS
	"$progress" go-build "$step" -what "control plane $K8S_VERSION: $2 ($1/3)" -C "$root/hack/envtest" \
		-pkg "$3" -o "$dir/$2.tmp" -- -trimpath -ldflags "$4" >&2
}
build 1 kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build 2 etcd go.etcd.io/etcd/server/v3 "-s -w"
build 3 kubectl k8s.io/kubernetes/cmd/kubectl "$ldflags"
for b in kube-apiserver etcd kubectl; do mv "$dir/$b.tmp" "$dir/$b"; done
echo "$dir"
