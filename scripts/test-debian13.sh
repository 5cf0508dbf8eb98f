#!/usr/bin/env bash
# make test-debian13: build the tree and run its unit tests on Debian 13
# (trixie)'s compiler and libraries, in a chroot.
#
# The chroot is made once with debootstrap from http://deb.debian.org/debian
# (its Release file verified with the machine's Debian archive keyring) and
# kept in build/debian13/root; a change of the package list below installs
# what is missing. Every run copies the tree (not the host's build
# directories) into it and runs `make all unit` there; the exit code is
# theirs. /proc is mounted for the run and unmounted on every way out.
# Nothing is bind-mounted from the host, so removing build/ stays harmless.
#
# Needs root (debootstrap, chroot, mount) and debootstrap (install-deps.sh).
# Usage: scripts/test-debian13.sh [make targets, default: all unit]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
dir=${DEBIAN13_DIR:-$top/build/debian13}
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
packages=(
  build-essential pkg-config
  libsqlite3-dev libmariadb-dev libarchive-dev libsodium-dev libinih-dev libjansson-dev
  libpq-dev libcmocka-dev
)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(all unit)

say() { echo "test-debian13: $*"; }
die() {
  echo "test-debian13: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/install-deps.sh"
[ -r "$keyring" ] || die "$keyring missing: install debian-archive-keyring"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
root=$dir/root

# One run at a time (two would share the chroot).
exec 9>"$dir/lock"
flock -n 9 || die "another test-debian13 holds $dir/lock"

# Unmount whatever is mounted under $1 (deepest first): what this script
# mounted, or what a killed debootstrap left behind.
unmount_under() {
  local m
  awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
}
cleanup() {
  unmount_under "$root"
  unmount_under "$root.new"
}
# The long steps run in the background, in a process group of their own
# (bg PROGRAM ARGS...): bash runs a trap only once the foreground command
# has ended, and a signal must stop them, with their children, at once.
child=
bg() {
  setsid "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=
  return "$rc"
}
on_signal() {
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM
cleanup # a run killed with SIGKILL may have left /proc mounted

# The command that runs what follows it in the chroot $1, with a clean environment.
in_root() {
  in_root=(chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
    LANG=C.UTF-8 TMPDIR=/tmp DEBIAN_FRONTEND=noninteractive)
}

# apt-get in the chroot DIR: what is missing of the package list.
install_packages() {
  local r=$1
  cp /etc/resolv.conf "$r/etc/resolv.conf" # the chroot resolves deb.debian.org as we do
  mountpoint -q "$r/proc" || mount -t proc proc "$r/proc"
  in_root "$r"
  bg "${in_root[@]}" apt-get -q update
  bg "${in_root[@]}" apt-get -q install -y --no-install-recommends "${packages[@]}"
  "${in_root[@]}" apt-get clean
  umount "$r/proc"
}

# ---- the chroot: made once, then only completed ----
want="${packages[*]}"
if [ ! -f "$root/.stagecoach-packages" ]; then
  t0=$SECONDS
  say "creating a Debian 13 chroot in $root (debootstrap from $mirror)"
  rm -rf --one-file-system "$root" "$root.new"
  bg debootstrap --variant=minbase --keyring="$keyring" trixie "$root.new" "$mirror"
  # no daemon may start inside the chroot while packages are installed
  printf '#!/bin/sh\nexit 101\n' >"$root.new/usr/sbin/policy-rc.d"
  chmod 755 "$root.new/usr/sbin/policy-rc.d"
  install_packages "$root.new"
  echo "$want" >"$root.new/.stagecoach-packages"
  mv "$root.new" "$root"
  say "chroot made in $((SECONDS - t0)) s"
elif [ "$(cat "$root/.stagecoach-packages")" != "$want" ]; then
  say "the package list changed: installing what is missing"
  install_packages "$root"
  echo "$want" >"$root/.stagecoach-packages"
else
  say "using the chroot in $root"
fi

# ---- the tree, copied in fresh: what the host built does not leak in ----
src=$root/src/stagecoach
rm -rf --one-file-system "$src"
mkdir -p "$src"
tar -C "$top" --exclude=./.git --exclude='./build*' --exclude=./demo \
  --exclude=node_modules --exclude=./tests/integration/tmp -cf - . | tar -C "$src" -xf -

mount -t proc proc "$root/proc"
# what is being tested, for the log (expanded by the chroot's sh)
in_root "$root"
# shellcheck disable=SC2016
"${in_root[@]}" sh -c 'gcc --version | head -n 1; for p in sqlite3 libarchive libmariadb libsodium inih jansson libpq cmocka; do printf "%s %s\n" "$p" "$(pkg-config --modversion "$p")"; done' |
  sed 's/^/test-debian13: /'
rc=0
bg "${in_root[@]}" make -C /src/stagecoach -j2 "${targets[@]}" || rc=$?
umount "$root/proc"
if [ "$rc" -ne 0 ]; then
  die "make ${targets[*]} failed on Debian 13 (exit $rc)"
fi
say "make ${targets[*]} passed on Debian 13"
