# Shared by crypto.bats, restore.bats and drill.bats: keys, a template
# restic repository, and forged sets (a set whose checksums all agree with
# content an attacker chose).
#
#   load restore_helpers  (loads helpers too)

load helpers

# Values the test data is known to hold: row 1 of torrents, and the .env.
KNOWN_ROW="$(printf '%040x' 2654435761)"
KNOWN_ENV=not-really-secret

# Add lines to the [staging] section of $CONF.
staging_keys() {
    local line
    for line in "$@"; do
        sed -i "/^\[staging\]\$/a $line" "$CONF"
    done
}

# A key pair in $T/keys; the config encrypts to its public half. ID is the
# secret key, which the config does not name (the staging host never needs it).
use_encryption() {
    mkdir -p "$T/keys"
    "$SC" keygen --out "$T/keys/id" >/dev/null 2>&1
    ID="$T/keys/id"
    staging_keys "encrypt = yes" "recipient = keys/id.pub"
}

# Stage and ship; SET as above, SNAP the snapshot id.
run_ok() {
    run --separate-stderr sc run
    if [ "$status" -ne 0 ]; then
        echo "run failed ($status): $stderr" >&2
        return 1
    fi
    SNAP="$(printf '%s\n' "$output" | sed -n 's/^snapshot \([0-9a-f]\{64\}\)$/\1/p')"
    SET="$STAGING/sets/$(sc_sets | tail -n 1)"
    [ -n "$SNAP" ]
}

# Back a set up with restic itself, tagged and named as stagecoach does:
# how a set damaged on the staging disk (or a hand-made one) reaches the
# repository whatever checks ship makes.
restic_ship() {
    local set=$1
    rst backup --host "$HOSTNAME_CONF" --tag stagecoach --tag "set-${set##*/}" "$set" >/dev/null
}

# Edit SET/MANIFEST.json with Python statements (m is the manifest;
# put_file(rel, src) copies src over the set's file rel, or takes the file
# as it is when src is that file, and updates its entry), then rewrite B2SUMS to agree: a forged set every checksum accepts.
forge_set() {
    python3 - "$1" "$2" <<'PY'
import hashlib, json, os, shutil, sys
setdir, code = sys.argv[1], sys.argv[2]
mp = os.path.join(setdir, "MANIFEST.json")
m = json.load(open(mp))
def b2(p):
    h = hashlib.blake2b()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
def put_file(rel, src):
    dst = os.path.join(setdir, rel)
    if os.path.abspath(src) != os.path.abspath(dst):
        shutil.copyfile(src, dst)
    for f in m["files"]:
        if f["path"] == rel:
            f["bytes"] = os.path.getsize(dst)
            f["blake2b"] = b2(dst)
exec(code)
with open(mp, "w") as f:
    json.dump(m, f, indent=2)
    f.write("\n")
with open(os.path.join(setdir, "B2SUMS"), "w") as f:
    for e in m["files"]:
        f.write(e["blake2b"] + "  " + e["path"] + "\n")
    f.write(b2(mp) + "  MANIFEST.json\n")
PY
}

# A pax tar at $1 with the members of the Python list $2:
# (name, "file", text) | (name, "dir", None) | (name, "symlink", target) | (name, "hardlink", target)
make_tar() {
    python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
out, spec = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for name, kind, arg in eval(spec):
        ti = tarfile.TarInfo(name)
        ti.mode = 0o644
        if kind == "file":
            data = arg.encode()
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
            continue
        if kind == "dir":
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        elif kind == "symlink":
            ti.type, ti.linkname = tarfile.SYMTYPE, arg
        elif kind == "hardlink":
            ti.type, ti.linkname = tarfile.LNKTYPE, arg
        t.addfile(ti)
PY
}

# Every file under a directory, recursively, with its mode: for "all 0600".
modes_of() {
    (cd "$1" && find . -mindepth 1 -printf '%y %m %P\n' | LC_ALL=C sort)
}
