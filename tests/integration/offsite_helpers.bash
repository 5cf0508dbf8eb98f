# Helpers for the off-site suites (offsite.bats, retention.bats,
# reports.bats), on top of helpers.bash:
#
#   (template_repo_make / template_repo_use: helpers.bash)
#   conf_set SECTION KEY VALUE   set (or add) a key in $CONF
#   conf_del SECTION KEY         remove it
#   off_wrap_restic       [restic] binary = a wrapper that logs every call
#                         (argv, and the AWS_/RESTIC_ environment) to $CALLS
#                         and runs the real restic; `touch $T/slow` makes it
#                         upload at 4 MiB/s
#   calls_with WORD       how many logged calls have WORD in their argv
#   metric NAME [LABELS]  a value from $T/metrics.prom

# Set KEY = VALUE in [SECTION] of $CONF, replacing the key if it is there,
# adding the section at the end if it is not.
conf_set() {
    python3 - "$CONF" "$1" "$2" "$3" <<'PY'
import sys
path, section, key, value = sys.argv[1:]
lines = open(path).read().splitlines()
out, cur, done, seen = [], None, False, False
for i, line in enumerate(lines):
    s = line.strip()
    if s.startswith('[') and s.endswith(']'):
        if cur == section and not done:
            out.append(f"{key} = {value}")
            done = True
        cur = s[1:-1].strip()
        seen = seen or cur == section
    elif cur == section and '=' in s and s.split('=', 1)[0].strip() == key:
        if not done:
            out.append(f"{key} = {value}")
            done = True
        continue
    out.append(line)
if not done:
    if not seen:
        out += ["", f"[{section}]"]
    out.append(f"{key} = {value}")
open(path, 'w').write("\n".join(out) + "\n")
PY
}

conf_del() {
    python3 - "$CONF" "$1" "$2" <<'PY'
import sys
path, section, key = sys.argv[1:]
out, cur = [], None
for line in open(path).read().splitlines():
    s = line.strip()
    if s.startswith('[') and s.endswith(']'):
        cur = s[1:-1].strip()
    elif cur == section and '=' in s and s.split('=', 1)[0].strip() == key:
        continue
    out.append(line)
open(path, 'w').write("\n".join(out) + "\n")
PY
}

off_wrap_restic() {
    CALLS="$T/restic-calls.log"
    : >"$CALLS"
    cat >"$T/restic-wrap" <<EOF
#!/bin/sh
# test wrapper (offsite_helpers.bash): log the call, then the real restic
{
    printf 'argv:'
    printf ' %s' "\$@"
    printf '\n'
    env | grep -E '^(AWS_|RESTIC_)' | sed 's/^/env: /'
} >>"$CALLS"
if [ -e "$T/slow" ]; then
    exec restic --limit-upload 4096 "\$@"
fi
exec restic "\$@"
EOF
    chmod 700 "$T/restic-wrap"
    conf_set restic binary "$T/restic-wrap"
}

# Calls whose argv has WORD (e.g. "forget", "--read-data-subset=2/3").
calls_with() {
    grep '^argv:' "$CALLS" | grep -c -- " $1\( \|$\)" || true
}

# The value of a metric line "NAME{LABELS} VALUE" in $T/metrics.prom.
metric() {
    local name=$1 labels=${2:-}
    awk -v want="$name$labels" '$1 == want { print $2 }' "$T/metrics.prom"
}

# Snapshots in the repository as restic lists them (JSON file path).
snaps_json() {
    local out="$T/snaps-$RANDOM.json"
    rst snapshots --json "$@" >"$out"
    echo "$out"
}

# The set ids of the snapshots in a `snapshots --json` file, sorted.
snap_sets() {
    pyjson "$1" 'sorted(t[4:] for s in j for t in s.get("tags") or [] if t.startswith("set-"))'
}

# Run the binary and keep stdout/stderr apart; fail the test with both
# shown unless the exit code is the one expected (default 0).
# shellcheck disable=SC2154 # status, output, stderr: set by bats' run
sc_expect() {
    local want=$1
    shift
    run --separate-stderr sc "$@"
    if [ "$status" -ne "$want" ]; then
        echo "stagecoach $* exited $status, expected $want" >&2
        echo "stdout: $output" >&2
        echo "stderr: $stderr" >&2
        return 1
    fi
}
