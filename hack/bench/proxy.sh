#!/usr/bin/env bash
# Measures the auth server against a bare httputil.ReverseProxy with wrk, as DESIGN.md states the
# target: authenticated GET of a 1 KiB body (session cookie, as a browser sends it, and API
# token), requests/s and the server's CPU per request at 32 and 256 connections as ratios of the
# bare proxy's in the same run, and the p50 latency added at one connection. Installs wrk (Debian) when missing. Prints the figures; changes nothing else.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
go build -o bin/mss-login ./cmd/mss-login
go build -o bin/proxyrig ./hack/bench/proxyrig
dur=${BENCH_SECONDS:-10}
work=$(mktemp -d /tmp/mss-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
bin/proxyrig upstream 127.0.0.1:18801 & pids+=($!)
bin/proxyrig bare 127.0.0.1:18802 http://127.0.0.1:18801 2>/dev/null & pids+=($!)
barepid=$!
cat >"$work/config.json" <<JSON
{"upstream_url": "http://127.0.0.1:18801", "listen_address": "127.0.0.1:18803",
 "metrics_address": "127.0.0.1:18804", "users_db": {"encryption_level": ""}}
JSON
MSS_LOGIN_DATA_DIR=$work SECRET_KEY=bench-secret-key-0123456789abcdef0123 \
	bin/mss-login authserver >"$work/authserver.log" 2>&1 & pids+=($!)
authpid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18803/healthz >/dev/null && break; sleep 0.1; done
jwt=$(curl -sf -X POST http://127.0.0.1:18803/register -H 'Content-Type: application/json' \
	-d '{"username":"bench","password":"Bench-pass-1!"}' | sed -n 's/.*"jwt_token":"\([^"]*\)".*/\1/p')
tok=$(curl -sf -X POST http://127.0.0.1:18803/mss-login/api/tokens -H "Authorization: Bearer $jwt" \
	-H 'Content-Type: application/json' -d '{"label":"bench"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[[ -n $jwt && -n $tok ]] || { echo "could not log in to the auth server"; cat "$work/authserver.log"; exit 1; }

# rps CONNS PID ARGS…: prints requests/s at CONNS connections and the CPU time the server PID
# spent per request in µs (from /proc: immune to how the cores were shared with wrk).
rps() {
	local conns=$1 pid=$2
	shift 2
	local c0 c1 out n
	c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	out=$(wrk -t2 -c"$conns" -d"${dur}s" "$@")
	c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	awk '/Requests\/sec/ {printf "%s ", $2}' <<<"$out"
	awk -v c=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f\n", c * 1e6 / hz / n }'
}
p50() { wrk -t1 -c1 -d"${dur}s" --latency "$@" | awk '/^ +50%/ {print $2}'; }
us() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v } else if (v ~ /ms$/) { sub(/ms/, "", v); print v*1000 } else { sub(/s/, "", v); print v*1000000 } }'; }

echo "requests/s (target >= 0.95x of the bare proxy) and server CPU per request (target <= 1.10x), same run:"
for conns in 32 256; do
	read -r bare bare_cpu < <(rps "$conns" $barepid http://127.0.0.1:18802/view)
	read -r cook cook_cpu < <(rps "$conns" $authpid -H "Cookie: jwt_token=$jwt; theme=dark" http://127.0.0.1:18803/view)
	read -r apit apit_cpu < <(rps "$conns" $authpid -H "Authorization: Bearer $tok" http://127.0.0.1:18803/view)
	awk -v n="$conns" -v b="$bare" -v s="$cook" -v a="$apit" -v bc="$bare_cpu" -v sc="$cook_cpu" -v ac="$apit_cpu" 'BEGIN {
	printf "  %3d connections: bare httputil.ReverseProxy %8.0f/s %6.1f us CPU (baseline)\n", n, b, bc
	printf "                   session cookie            %8.0f/s %.2fx  %6.1f us CPU %.2fx\n", s, s / b, sc, sc / bc
	printf "                   API token                 %8.0f/s %.2fx  %6.1f us CPU %.2fx\n", a, a / b, ac, ac / bc
	}'
done
bare50=$(us "$(p50 http://127.0.0.1:18802/view)")
sess50=$(us "$(p50 -H "Cookie: jwt_token=$jwt" http://127.0.0.1:18803/view)")
apit50=$(us "$(p50 -H "Authorization: Bearer $tok" http://127.0.0.1:18803/view)")
awk -v b5="$bare50" -v s5="$sess50" -v a5="$apit50" 'BEGIN {
	printf "p50 latency at 1 connection (target <= +60 us):\n"
	printf "  bare %.0f us; session cookie %.0f us (%+.0f); API token %.0f us (%+.0f)\n", b5, s5, s5 - b5, a5, a5 - b5
}'
