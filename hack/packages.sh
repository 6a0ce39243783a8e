#!/usr/bin/env bash
# Installs the Debian packages the tests need: PostgreSQL 15 (usually already in the image),
# MariaDB 10.11, Chromium for the page tests, rclone and fuse3 for the FUSE mount test.
# Idempotent and quick when everything is present.
set -euo pipefail
need=()
command -v /usr/lib/postgresql/15/bin/postgres >/dev/null 2>&1 || need+=(postgresql-15)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server mariadb-client)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
# The S3Mount FUSE sidecar's client, run for real by internal/controller/s3mount/fuse_test.go.
command -v rclone >/dev/null 2>&1 || need+=(rclone)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
[[ ${#need[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
	echo "hack/packages.sh: missing packages (${need[*]}); run as root or install them" >&2
	exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
