#!/usr/bin/env bash
# Install every build, run and test dependency of stagecoach on Debian 12.
# Idempotent: packages already present are skipped by apt-get; safe to re-run.
# Usage: scripts/install-deps.sh [--no-update]
set -euo pipefail

packages=(
  # build
  build-essential pkg-config
  libsqlite3-dev libmariadb-dev libpq-dev libarchive-dev libsodium-dev libinih-dev libjansson-dev
  # run
  restic sqlite3 ca-certificates
  # test
  libcmocka-dev bats coreutils xxd openssl procps util-linux
  strace # pages.bats: SIGKILL injected at the Nth unlink or fsync of an upkeep
  xfsprogs # mkfs.xfs: the reflink tests and bench on a loop-mounted XFS
  mariadb-server mariadb-client
  postgresql                    # server (scripts/test-postgres.sh), pg_dump, psql, contrib
  clang clang-tidy cppcheck valgrind shellcheck curl
  parallel                      # bats --jobs: the .bats files two at a time
  rclone python3-cryptography   # REST server (scripts/test-rest.sh); fast test keys
  time mydumper age             # make bench (scripts/bench): peak RSS, the tools compared
  debhelper lintian man-db      # make deb (dpkg-buildpackage), scripts/check-deb.sh (man -w)
)
# make test-debian13: the Debian 13 chroot is made with debootstrap.
packages+=(debootstrap)
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

# restic 0.18 (Debian 13's package) beside the system's 0.14, for the suites
# that also run against it (make integration-restic018). Fetched with
# `apt-get download` through a private apt directory (its own sources list,
# preferences, state and cache; trixie's Release file verified with the
# machine's Debian archive keyring, as apt always does) and unpacked with
# `dpkg -x`: the system's apt configuration and its restic are left alone.
# Skipped when the binary there already says 0.18.x.
restic018_dir=${SC_TEST_PREFIX:-/opt/stagecoach-test}/restic-0.18
restic018=$restic018_dir/usr/bin/restic
restic018_keyring=/usr/share/keyrings/debian-archive-keyring.gpg
fetch_restic018() {
  local apt_dir=$restic018_dir.apt work have
  if have="$("$restic018" version 2>/dev/null)" && [[ "$have" == "restic 0.18."* ]]; then
    echo "install-deps: ${have%% compiled*} present in $restic018_dir"
    return 0
  fi
  if [ ! -r "$restic018_keyring" ]; then
    echo "install-deps: $restic018_keyring missing: install debian-archive-keyring" >&2
    return 1
  fi
  mkdir -p "$apt_dir/etc/preferences.d" "$apt_dir/etc/sources.list.d" \
    "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb [signed-by=$restic018_keyring] http://deb.debian.org/debian trixie main" \
    >"$apt_dir/etc/sources.list"
  : >"$apt_dir/state/status"
  local apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list"
    -o "Dir::Etc::sourceparts=$apt_dir/etc/sources.list.d"
    -o "Dir::Etc::preferences=$apt_dir/etc/preferences"
    -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d"
    -o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/state/status"
    -o "Dir::Cache=$apt_dir/cache"
  )
  # apt fails the update (exit 100, "is not signed") when no key of the
  # keyring verifies trixie's InRelease: stop there, never go on unverified.
  if ! apt-get "${apt_opts[@]}" -q update; then
    echo "install-deps: cannot read Debian 13's package list verified by $restic018_keyring" \
      "(a debian-archive-keyring without the trixie keys? network to deb.debian.org?)" >&2
    return 1
  fi
  work="$(mktemp -d "$restic018_dir.new.XXXXXX")"
  # apt's download sandbox user (_apt) writes the .deb into this directory
  if id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
  (cd "$work" && apt-get "${apt_opts[@]}" -q download restic)
  local deb=("$work"/restic_*.deb) version=
  if [ "${#deb[@]}" -eq 1 ] && [ -f "${deb[0]}" ]; then
    version="$(dpkg-deb -f "${deb[0]}" Version)"
  fi
  if [[ "$version" != 0.18.* ]]; then
    echo "install-deps: Debian 13 did not give one restic 0.18.x package: ${deb[*]}" >&2
    rm -rf "$work"
    return 1
  fi
  dpkg -x "${deb[0]}" "$work/root"
  if ! have="$("$work/root/usr/bin/restic" version)" || [[ "$have" != "restic 0.18."* ]]; then
    echo "install-deps: the unpacked restic does not run as 0.18: $have" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$restic018_dir"
  mv "$work/root" "$restic018_dir"
  rm -rf "$work"
  echo "install-deps: ${have%% compiled*} (Debian package $version) in $restic018_dir"
}
fetch_restic018
