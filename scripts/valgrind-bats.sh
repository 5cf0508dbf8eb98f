#!/usr/bin/env bash
# Run integration suites with every stagecoach invocation under valgrind
# memcheck: 0 errors and 0 definitely lost bytes, or this fails.
#
#   scripts/valgrind-bats.sh [SUITE...]     default: stage ship safety config
#
# A wrapper script takes the binary's place (SC_BIN, which the suites'
# helpers.bash honours) and runs
#   valgrind --quiet --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite --track-fds=no build/stagecoach ARGS
# so a memory error or a definite leak turns that invocation's exit code
# into 99 (the test fails) and leaves a report in build/valgrind/vg.PID.log
# (only invocations that found something write anything there). Children
# (restic, hooks) are not traced: they are not ours.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${VALGRIND_OUT:-$ROOT/build/valgrind}"
suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(stage ship safety config)

command -v valgrind >/dev/null || {
    echo "valgrind-bats: valgrind not found (scripts/install-deps.sh installs it)" >&2
    exit 2
}
[ -x "$ROOT/build/stagecoach" ] || {
    echo "valgrind-bats: $ROOT/build/stagecoach missing: run make first" >&2
    exit 2
}

mkdir -p "$OUT"
rm -f "$OUT"/vg.*.log
cat >"$OUT/stagecoach" <<EOF
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
    --track-fds=no --log-file="$OUT/vg.%p.log" "$ROOT/build/stagecoach" "\$@"
EOF
chmod 755 "$OUT/stagecoach"

files=()
for s in "${suites[@]}"; do
    f="$ROOT/tests/integration/${s%.bats}.bats"
    [ -f "$f" ] || {
        echo "valgrind-bats: no suite $f" >&2
        exit 2
    }
    files+=("$f")
done

echo "valgrind-bats: ${suites[*]} with every stagecoach under memcheck (reports: $OUT)"
set +e
SC_BIN="$OUT/stagecoach" bats --print-output-on-failure "${files[@]}"
bats_rc=$?
set -e

# A log with a "==PID==" line is a finding: with --quiet memcheck writes
# only errors and leak records there. Lines "--PID-- WARNING: unhandled
# syscall: 434" are valgrind 3.19 not knowing pidfd_open (stagecoach then
# falls back to polling): counted, not a finding.
runs=$(find "$OUT" -name 'vg.*.log' | wc -l)
found=()
warned=0
while IFS= read -r -d '' log; do
    if grep -q '^==[0-9]*==' "$log"; then
        found+=("$log")
    elif [ -s "$log" ]; then
        warned=$((warned + 1))
    fi
done < <(find "$OUT" -name 'vg.*.log' -print0)
echo "valgrind-bats: $runs stagecoach runs under memcheck; ${#found[@]} with errors or definite leaks" \
    "($warned with valgrind's own warnings only)"
for log in "${found[@]}"; do
    echo "== $log"
    head -n 60 "$log"
done
if [ "${#found[@]}" -gt 0 ] || [ "$bats_rc" -ne 0 ]; then
    exit 1
fi
