#!/usr/bin/env bash
# `make run`: everything on this machine with the data in ./data — bin/mss-login, a local control
# plane (kube-apiserver + etcd + kubectl into bin/k8s by hack/control-plane.sh: the official
# envtest archive when the machine reaches it, else built from the Go module proxy), the CRDs
# and config/samples, the manager and the auth server against SQLite, in front of upstream_url.
# Every step prints "make run [N/3 elapsed] …"; long builds report every 10 s how far they are.
# See `bin/mss-login dev --help`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MSS_PROGRESS_START=${MSS_PROGRESS_START:-$(date +%s)} MSS_PROGRESS_PREFIX="make run"
progress=$(hack/progress.sh)
VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || true)
export CGO_ENABLED=0
"$progress" go-build 1/3 -what "building bin/mss-login" -pkg ./cmd/mss-login -o bin/mss-login -- \
	-trimpath -ldflags "-s -w -X github.com/mss-login/mss-login/internal/version.Version=$VERSION -X github.com/mss-login/mss-login/internal/version.Commit=$COMMIT"
assets=$(MSS_PROGRESS_STEP=2/3 hack/control-plane.sh)
export MSS_LOGIN_DATA_DIR=${MSS_LOGIN_DATA_DIR:-$root/data}
mkdir -p "$MSS_LOGIN_DATA_DIR"
chmod 700 "$MSS_LOGIN_DATA_DIR"
"$progress" step 3/3 "starting mss-login dev (its own steps follow)"
exec bin/mss-login dev --data-dir "$MSS_LOGIN_DATA_DIR" --assets "$assets"
