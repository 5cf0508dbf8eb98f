#!/usr/bin/env bash
# Install every build, run and test dependency of stagecoach on Debian 12.
# Idempotent: packages already present are skipped by apt-get; safe to re-run.
# Usage: scripts/install-deps.sh [--no-update]
set -euo pipefail

packages=(
  # build
  build-essential pkg-config
  libsqlite3-dev libmariadb-dev libarchive-dev libsodium-dev libinih-dev libjansson-dev
  # run
  restic sqlite3 ca-certificates
  # test
  libcmocka-dev bats coreutils xxd openssl procps util-linux
  mariadb-server mariadb-client
  clang clang-tidy cppcheck valgrind shellcheck curl
  parallel                      # bats --jobs: the .bats files two at a time
  rclone python3-cryptography   # REST server (scripts/test-rest.sh); fast test keys
  time mydumper age             # make bench (scripts/bench): peak RSS, the tools compared
  debhelper lintian man-db      # make deb (dpkg-buildpackage), scripts/check-deb.sh (man -w)
)
# The machine image may ship its own Node.js with npm; Debian's npm conflicts with it.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "${1:-}" != "--no-update" ]; then
    apt-get update -q
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

# The S3 API server of the off-site tests (scripts/test-s3.sh): npm s3rver,
# pinned, in a directory of its own (not the work tree, not global).
s3rver_version=3.7.1
s3rver_prefix=${SC_TEST_PREFIX:-/opt/stagecoach-test}
have="$(node -e "try{console.log(require(process.argv[1]+'/node_modules/s3rver/package.json').version)}catch(e){}" "$s3rver_prefix" 2>/dev/null || true)"
if [ "$have" = "$s3rver_version" ]; then
  echo "install-deps: s3rver $s3rver_version present in $s3rver_prefix"
else
  if ! mkdir -p "$s3rver_prefix" 2>/dev/null || [ ! -w "$s3rver_prefix" ]; then
    echo "install-deps: cannot write $s3rver_prefix for s3rver; run as root or set SC_TEST_PREFIX" >&2
    exit 1
  fi
  npm install --prefix "$s3rver_prefix" --no-audit --no-fund --loglevel=error "s3rver@$s3rver_version"
fi
