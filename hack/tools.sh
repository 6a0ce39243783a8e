#!/usr/bin/env bash
# Installs the Go tools the build and tests use into bin/, pinned: controller-gen, helm,
# versitygw (the S3 server the tests run against). Skips each one already at its version.
#   hack/tools.sh [controller-gen|helm|versitygw ...]   (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"
CONTROLLER_GEN_VERSION=v0.23.0
HELM_VERSION=v3.22.0
VERSITYGW_VERSION=v1.8.0

install() { # install NAME VERSION PACKAGE [LDFLAGS]
	local name=$1 version=$2 pkg=$3 ldflags=${4:-}
	if [[ -x $bin/$name && $(cat "$bin/.$name.version" 2>/dev/null) == "$version" ]]; then
		return
	fi
	echo "installing $name $version into bin/" >&2
	GOBIN="$bin" CGO_ENABLED=0 go install -ldflags "$ldflags" "$pkg@$version" >&2
	echo "$version" >"$bin/.$name.version"
}

want=("$@")
[[ ${#want[@]} -eq 0 ]] && want=(controller-gen helm versitygw)
for t in "${want[@]}"; do
	case $t in
	controller-gen) install controller-gen $CONTROLLER_GEN_VERSION sigs.k8s.io/controller-tools/cmd/controller-gen ;;
	helm) install helm $HELM_VERSION helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
	versitygw) install versitygw $VERSITYGW_VERSION github.com/versity/versitygw/cmd/versitygw ;;
	*) echo "hack/tools.sh: unknown tool $t" >&2; exit 2 ;;
	esac
done
