#!/usr/bin/env bash
# Install the package `make deb` built as an operator would
# (apt-get install ./stagecoach_VERSION_amd64.deb), check what it put on the
# machine, then purge it again so that the machine is left as it was.
# As root. Usage: scripts/check-deb.sh [DEB] (default: build/deb/stagecoach_*_amd64.deb)
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:-}
if [ -z "$deb" ]; then
    debs=(build/deb/stagecoach_*_amd64.deb)
    [ -f "${debs[0]}" ] || { echo "check-deb: no build/deb/stagecoach_*_amd64.deb (make deb)" >&2; exit 1; }
    deb=${debs[0]}
fi
version=$(dpkg-deb -f "$deb" Version)
fail() {
    echo "check-deb: $*" >&2
    exit 1
}

export DEBIAN_FRONTEND=noninteractive
# apt wants a path with a slash to take a file for a package name.
case $deb in /*) ;; *) deb=./$deb ;; esac
if dpkg-query -W -f='${Status}' stagecoach 2>/dev/null | grep -q 'install ok installed'; then
    apt-get purge -y -q stagecoach >/dev/null
fi
apt-get install -y -q --no-install-recommends "$deb"

# the program, its version, its man page (man-db finds it)
[ "$(command -v stagecoach)" = /usr/bin/stagecoach ] || fail "stagecoach is not /usr/bin/stagecoach"
out=$(stagecoach --version)
[ "$out" = "stagecoach $version" ] || fail "stagecoach --version says '$out', the package is $version"
echo "check-deb: $out"
man -w stagecoach
[ "$(man -w stagecoach)" = /usr/share/man/man1/stagecoach.1.gz ] || fail "man -w stagecoach: $(man -w stagecoach)"
# the rest of what the package promises
for f in /usr/lib/stagecoach/restic-hooks/compose-service /usr/lib/stagecoach/restic-hooks/systemd-unit \
    /usr/share/bash-completion/completions/stagecoach /usr/share/doc/stagecoach/examples/stagecoach.conf \
    /lib/systemd/system/stagecoach.service /lib/systemd/system/stagecoach.timer \
    /etc/stagecoach/stagecoach.conf.example; do
    [ -e "$f" ] || fail "$f is missing"
done
[ -x /usr/lib/stagecoach/restic-hooks/notify ] || fail "the restic hooks are not executable"
grep -qx 'ExecStart=/usr/bin/stagecoach -c /etc/stagecoach/stagecoach.conf run' /lib/systemd/system/stagecoach.service ||
    fail "stagecoach.service does not run /usr/bin/stagecoach"
grep -qx 'Documentation=man:stagecoach(1)' /lib/systemd/system/stagecoach.service ||
    fail "stagecoach.service has no Documentation= (the man page)"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/stagecoach.service /lib/systemd/system/stagecoach.timer ||
        fail "systemd-analyze verify found problems in the units"
fi
dpkg-query -W -f='${Conffiles}\n' stagecoach | grep -q ' /etc/stagecoach/stagecoach.conf.example ' ||
    fail "/etc/stagecoach/stagecoach.conf.example is not a conffile"
# installed, not enabled; and the default config path stays free (so that
# the Torrust fallbacks and a deliberate first config are the operator's)
[ ! -e /etc/systemd/system/timers.target.wants/stagecoach.timer ] || fail "stagecoach.timer was enabled"
[ ! -e /etc/stagecoach/stagecoach.conf ] || [ -n "${SC_KEEP_CONF:-}" ] || fail "the package made /etc/stagecoach/stagecoach.conf"
[ "$(stat -c %a /var/lib/stagecoach)" = 700 ] || fail "/var/lib/stagecoach is not 0700"
# the completion loads in bash and knows the commands
words=$(bash -c 'source /usr/share/bash-completion/completions/stagecoach
    COMP_WORDS=(stagecoach re); COMP_CWORD=1; _stagecoach; echo "${COMPREPLY[*]}"')
[ "$words" = restore ] || fail "completion of 're' gave '$words'"
# the installed program works with the example config's syntax
stagecoach -c /etc/stagecoach/stagecoach.conf.example config check >/dev/null ||
    fail "config check of the example config failed"

apt-get purge -y -q stagecoach >/dev/null
[ ! -e /usr/bin/stagecoach ] || fail "/usr/bin/stagecoach is still there after purge"
[ ! -e /etc/stagecoach/stagecoach.conf.example ] || fail "the conffile survived purge"
echo "check-deb: $deb installed, checked and purged"
