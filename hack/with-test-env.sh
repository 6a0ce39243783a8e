#!/usr/bin/env bash
# Runs a command with every real component the tests need, set up by the project itself:
# Debian packages, the envtest control plane, the Go tools in bin/, and throwaway PostgreSQL,
# MariaDB and S3 servers on loopback. Stops the servers afterwards, whatever happens.
#   hack/with-test-env.sh go test ./...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hack/packages.sh
KUBEBUILDER_ASSETS=$(hack/control-plane.sh)
export KUBEBUILDER_ASSETS
hack/tools.sh
state=$(mktemp -d /tmp/mss-test-env.XXXXXX)
cleanup() {
	hack/test-servers.sh stop "$state" || true
	rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
hack/test-servers.sh start "$state"
# shellcheck disable=SC1091
source "$state/env"
export MSS_TEST_CHROMIUM=${MSS_TEST_CHROMIUM:-$(command -v chromium || true)}
export MSS_TEST_ARTIFACTS=${MSS_TEST_ARTIFACTS:-$root/bin/test-artifacts}
# Everything was started: a test that finds a server missing must fail, not skip.
export MSS_TEST_REQUIRE_SERVERS=1
"$@"
