#!/usr/bin/env bash
# `make run`: the embedded defaults on this machine, with the data in ./data: migrates the users
# database and runs the auth server in front of upstream_url (a local ComfyUI by default).
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
listen=$(bin/mss-login config validate 2>/dev/null | sed -n 's/^  "listen_address": "\(.*\)",$/\1/p')
upstream=$(bin/mss-login config validate 2>/dev/null | sed -n 's/^  "upstream_url": "\(.*\)",$/\1/p')
port=${listen##*:}
cat <<MSG

data directory: $MSS_LOGIN_DATA_DIR
configuration:  $MSS_LOGIN_DATA_DIR/config.json (optional: the defaults are embedded; check a file with
                bin/mss-login config validate FILE)
ComfyUI:        $upstream (upstream_url; a "not reachable" page is shown while nothing listens there)

login page:     http://127.0.0.1:$port/login — the first visit creates the owner account
metrics:        see metrics_address; stop with Ctrl-C

MSG
exec bin/mss-login authserver
