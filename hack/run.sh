#!/usr/bin/env bash
# `make run`: everything on this machine with the data in ./data — a local control plane
# (kube-apiserver + etcd, built into bin/k8s by hack/control-plane.sh: about 5 minutes the first
# time, cached afterwards), the CRDs and config/samples, the manager and the auth server against
# SQLite, in front of upstream_url (a local ComfyUI by default). See `bin/mss-login dev --help`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
assets=$(hack/control-plane.sh)
export MSS_LOGIN_DATA_DIR=${MSS_LOGIN_DATA_DIR:-$root/data}
mkdir -p "$MSS_LOGIN_DATA_DIR"
chmod 700 "$MSS_LOGIN_DATA_DIR"
exec bin/mss-login dev --data-dir "$MSS_LOGIN_DATA_DIR" --assets "$assets"
