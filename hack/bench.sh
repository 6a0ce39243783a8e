#!/usr/bin/env bash
# `make bench`: runs the Go benchmarks and prints each one as a ratio against the baseline
# measured in the same run (the sub-benchmark whose name ends in "baseline-…").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count "${BENCH_COUNT:-1}" ./... | tee "$out"
echo
echo "ratios against the baseline of the same group (lower is faster):"
awk '
/^Benchmark/ && /ns\/op/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") ns = $i
	n = split(name, parts, "/"); group = parts[1]; for (i = 2; i < n; i++) group = group "/" parts[i]
	leaf = parts[n]
	if (leaf ~ /^baseline/) base[group] = ns
	order[++count] = name; value[name] = ns; groupOf[name] = group; leafOf[name] = leaf
}
END {
	for (i = 1; i <= count; i++) {
		name = order[i]; g = groupOf[name]
		if (leafOf[name] ~ /^baseline/ || !(g in base)) continue
		printf "  %-60s %10.0f ns/op  %6.2fx baseline (%s: %.0f ns/op)\n", name, value[name], value[name] / base[g], "baseline", base[g]
	}
}' "$out"

echo
echo "the auth server against a bare reverse proxy, with wrk (hack/bench/proxy.sh):"
hack/bench/proxy.sh
