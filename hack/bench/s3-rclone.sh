#!/usr/bin/env bash
# The baseline of the S3 sync benchmark (internal/s3sync, BenchmarkFirstSync): `rclone sync`
# (Debian's rclone, installed here on first use — only when that benchmark runs) from
# s3://BUCKET/SRC into DEST, against the endpoint and credentials in the environment:
#
#   MSS_TEST_S3_ENDPOINT, MSS_TEST_S3_ACCESS_KEY, MSS_TEST_S3_SECRET_KEY (as `make test` sets them)
#   hack/bench/s3-rclone.sh BUCKET/SRC DEST [TRANSFERS]
#   hack/bench/s3-rclone.sh --install        # only make sure rclone is there
#
# The remote is configured through RCLONE_CONFIG_* variables: no config file, and the secret
# never appears on a command line.
set -euo pipefail
if [[ ${1:-} != --install ]]; then
	src=${1:?usage: s3-rclone.sh BUCKET/PATH DEST [TRANSFERS]}
	dest=${2:?usage: s3-rclone.sh BUCKET/PATH DEST [TRANSFERS]}
	transfers=${3:-8}
fi
if ! command -v rclone >/dev/null; then
	echo "s3-rclone: installing Debian's rclone for the benchmark baseline" >&2
	if [[ $(id -u) -eq 0 ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null; }
	else
		sudo -n apt-get install -y -qq rclone >/dev/null
	fi
fi
[[ ${1:-} == --install ]] && exit 0
# rclone's AWS SDK refuses a custom CA bundle with its own transport; the endpoint here is
# plain HTTP on loopback, so none is needed.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_BENCH_TYPE=s3
export RCLONE_CONFIG_BENCH_PROVIDER=Other
export RCLONE_CONFIG_BENCH_ENDPOINT=${MSS_TEST_S3_ENDPOINT:?}
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=${MSS_TEST_S3_ACCESS_KEY:?}
export RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=${MSS_TEST_S3_SECRET_KEY:?}
export RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
# Same parallelism as s3sync's default (8 requests in flight), so the ratio compares engines.
exec rclone sync "bench:$src" "$dest" --transfers "$transfers" --checkers "$transfers" --config /dev/null -q
