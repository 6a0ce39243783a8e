#!/usr/bin/env bash
# `make run`: the embedded defaults on this machine, with the data in ./data.
# Grows with the project; for now it prepares the users database and says where it is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MSS_LOGIN_DATA_DIR=${MSS_LOGIN_DATA_DIR:-$root/data}
mkdir -p "$MSS_LOGIN_DATA_DIR"
chmod 700 "$MSS_LOGIN_DATA_DIR"
if [[ -z ${SECRET_KEY:-} ]]; then
	# A development secret, kept with the data so that a second run opens the same database.
	# Production sets SECRET_KEY from a Kubernetes Secret instead.
	keyfile="$MSS_LOGIN_DATA_DIR/.dev-secret-key"
	if [[ ! -s $keyfile ]]; then
		(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n' >"$keyfile")
		echo "generated a development SECRET_KEY in $keyfile"
	fi
	SECRET_KEY=$(cat "$keyfile")
	export SECRET_KEY
fi
bin/mss-login admin migrate
echo
echo "data directory: $MSS_LOGIN_DATA_DIR"
echo "configuration:  $MSS_LOGIN_DATA_DIR/config.json (optional; defaults are embedded — check one with: bin/mss-login config validate FILE)"
