#!/usr/bin/env bash
# Builds hack/progress (standard library only: seconds, even with an empty module cache) into
# bin/.progress when it is missing or older than its sources, and prints its path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/.progress"
if [[ ! -x $bin ]] || [[ -n $(find "$root/hack/progress" "$root/internal/progress" -newer "$bin" -name '*.go' 2>/dev/null) ]]; then
	[[ -x $bin ]] || echo "${MSS_PROGRESS_PREFIX:+$MSS_PROGRESS_PREFIX }preparing the progress reporter (hack/progress, about 15 s the first time)" >&2
	mkdir -p "$root/bin"
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin.tmp" ./hack/progress && mv "$bin.tmp" "$bin") >&2
fi
echo "$bin"
