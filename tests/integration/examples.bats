#!/usr/bin/env bats
# The examples are real: their configurations pass `config check`, the
# systemd units are accepted by systemd-analyze where it is available, and the
# docker compose files are well-formed, hold the services, networks and
# secrets the docs describe, and their backup service's environment is a
# configuration `config check` accepts (no Docker engine is needed).

load helpers

# A strict reader for the block-style YAML subset compose files use here
# (mappings, sequences of scalars, quoted scalars, [..] and {} flow forms,
# comments); python3's standard library has no YAML parser. Anything outside
# the subset, a tab, a duplicate key or a misindented line is an error.
# Prints a JSON document, like a YAML parser would.
yaml_to_json() {
    python3 - "$1" <<'PY'
import json, re, sys

def strip_comment(line):
    out, q = [], None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
        elif ch in "\"'":
            q = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    if q:
        raise SyntaxError("unterminated quote")
    return "".join(out).rstrip()

def scalar(text):
    text = text.strip()
    if text == "":
        raise SyntaxError("empty value")
    if text[0] in "\"'":
        if len(text) < 2 or text[-1] != text[0]:
            raise SyntaxError("bad quoting: " + text)
        return text[1:-1]
    if text == "{}":
        return {}
    if text.startswith("["):
        if not text.endswith("]"):
            raise SyntaxError("bad flow sequence: " + text)
        inner = text[1:-1].strip()
        return [scalar(x) for x in inner.split(",")] if inner else []
    if text[0] in "{&*!|>%@`":
        raise SyntaxError("outside the supported subset: " + text)
    return text

lines = []
with open(sys.argv[1], encoding="utf-8") as f:
    for n, raw in enumerate(f, 1):
        raw = raw.rstrip("\n")
        if "\t" in raw:
            raise SystemExit(f"line {n}: tab character")
        try:
            body = strip_comment(raw)
        except SyntaxError as e:
            raise SystemExit(f"line {n}: {e}")
        if body.strip():
            lines.append((n, len(body) - len(body.lstrip(" ")), body.strip()))

pos = 0
KEY = re.compile(r'^([A-Za-z0-9_.\-]+|"[^"]*"):(?:\s+(.*))?$')

def block(indent):
    global pos
    n, ind, text = lines[pos]
    if ind != indent:
        raise SystemExit(f"line {n}: indentation {ind}, expected {indent}")
    if text.startswith("- ") or text == "-":
        seq = []
        while pos < len(lines) and lines[pos][1] == indent and lines[pos][2].startswith("-"):
            n, _, text = lines[pos]
            if not text.startswith("- "):
                raise SystemExit(f"line {n}: bad sequence item")
            try:
                seq.append(scalar(text[2:]))
            except SyntaxError as e:
                raise SystemExit(f"line {n}: {e}")
            pos += 1
        return seq
    mapping = {}
    while pos < len(lines) and lines[pos][1] == indent:
        n, _, text = lines[pos]
        m = KEY.match(text)
        if not m:
            raise SystemExit(f"line {n}: expected 'key: value': {text}")
        key = m.group(1).strip('"')
        if key in mapping:
            raise SystemExit(f"line {n}: duplicate key {key}")
        pos += 1
        if m.group(2):
            try:
                mapping[key] = scalar(m.group(2))
            except SyntaxError as e:
                raise SystemExit(f"line {n}: {e}")
        elif pos < len(lines) and lines[pos][1] > indent:
            mapping[key] = block(lines[pos][1])
        else:
            mapping[key] = None
    return mapping

doc = block(0)
if pos != len(lines):
    n, ind, _ = lines[pos]
    raise SystemExit(f"line {n}: indentation {ind} does not fit the structure")
print(json.dumps(doc))
PY
}

# Structural checks of a compose file; prints the `backup` service's
# environment as NAME=VALUE lines. $2: the expected services, comma-separated.
compose_check() {
    yaml_to_json "$1" >"$BATS_TEST_TMPDIR/compose.json" || return 1
    python3 - "$BATS_TEST_TMPDIR/compose.json" "$2" "$SC_ROOT" <<'PY'
import json, os, sys
doc = json.load(open(sys.argv[1]))
want = set(sys.argv[2].split(","))
root = sys.argv[3]
problems = []
def bad(msg):
    problems.append(msg)
for key in doc:
    if key not in ("services", "networks", "volumes", "secrets", "configs", "name") and not key.startswith("x-"):
        bad(f"unknown top-level key {key}")
services = doc.get("services") or {}
if set(services) != want:
    bad(f"services {sorted(services)}, expected {sorted(want)}")
secrets = doc.get("secrets") or {}
networks = doc.get("networks") or {}
for name, sec in secrets.items():
    if not isinstance(sec, dict) or not isinstance(sec.get("file"), str):
        bad(f"secret {name}: needs file:")
used_secrets = set()
for name, svc in services.items():
    if not isinstance(svc, dict):
        bad(f"service {name} is not a mapping")
        continue
    if "image" not in svc and "build" not in svc:
        bad(f"service {name}: neither image nor build")
    build = svc.get("build")
    if isinstance(build, dict):
        # ./stagecoach is a checkout of this source tree
        if build.get("context") != "./stagecoach":
            bad(f"service {name}: build context {build.get('context')}")
        if not os.path.isfile(os.path.join(root, build.get("dockerfile", "Dockerfile"))):
            bad(f"service {name}: no {build.get('dockerfile')} in the source tree")
    env = svc.get("environment") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        bad(f"service {name}: environment must map names to strings (quote numbers and booleans)")
        env = {}
    svc_secrets = svc.get("secrets") or []
    for s in svc_secrets:
        used_secrets.add(s)
        if s not in secrets:
            bad(f"service {name}: undeclared secret {s}")
    for k, v in env.items():
        if k in ("MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "RESTIC_PASSWORD", "MYSQL_PWD"):
            bad(f"service {name}: a password in the environment ({k})")
        if v.startswith("/run/secrets/") and v[len("/run/secrets/"):] not in svc_secrets:
            bad(f"service {name}: {k} names a secret the service does not get")
    for n in svc.get("networks") or []:
        if n not in networks:
            bad(f"service {name}: undeclared network {n}")
    deps = svc.get("depends_on") or {}
    for d in deps:
        if d not in services:
            bad(f"service {name}: depends on unknown service {d}")
    for v in svc.get("volumes") or []:
        parts = v.split(":")
        if len(parts) not in (2, 3) or not parts[1].startswith("/") or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            bad(f"service {name}: volume {v} is not HOST:CONTAINER[:ro]")
for s in secrets:
    if s not in used_secrets:
        bad(f"secret {s} is used by no service")
backup = services.get("backup") or {}
if backup.get("profiles") != ["backup"]:
    bad("backup: profiles must be [backup] (a plain `up` must not start it)")
if problems:
    sys.exit("\n".join(problems))
for k, v in (backup.get("environment") or {}).items():
    print(f"{k}={v}")
PY
}

# `config check` on a compose service's environment alone, as the container
# sees it: no config file, the POC's variables (docs/torrust.md).
check_compose_env() {
    local envfile=$1
    [ ! -e /etc/stagecoach/stagecoach.conf ] || skip "/etc/stagecoach/stagecoach.conf exists: POC mode cannot apply here"
    local -a vars=()
    mapfile -t vars <"$envfile"
    run env -i PATH="$PATH" "${vars[@]}" "$SC" config check
    echo "$output"
    [ "$status" -eq 0 ]
    run env -i PATH="$PATH" "${vars[@]}" "$SC" config show
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "every example configuration passes config check" {
    n=0
    for f in "$SC_ROOT"/examples/*.conf; do
        run "$SC" -c "$f" config check
        echo "$f: $output"
        [ "$status" -eq 0 ]
        n=$((n + 1))
    done
    [ "$n" -ge 2 ]
}

@test "the annotated example configuration sets every section" {
    run "$SC" -c "$SC_ROOT/examples/stagecoach.conf" config check
    [ "$status" -eq 0 ]
    for s in staging 'sqlite tracker' 'paths config' restic retention check hooks run; do
        grep -q "^\[$s\]" "$SC_ROOT/examples/stagecoach.conf" || {
            echo "no [$s] section"
            return 1
        }
    done
}

@test "the MySQL example configuration has a [mysql tracker] source with a password file" {
    run "$SC" -c "$SC_ROOT/examples/stagecoach-mysql.conf" config show
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"[mysql tracker]"* ]]
    [[ "$output" == *"password_file = /etc/stagecoach/mysql.pass"* ]]
}

@test "the example paths file parses as a paths list" {
    run grep -c '^/' "$SC_ROOT/examples/paths.txt"
    [ "$output" -ge 2 ]
}

@test "the systemd units verify" {
    command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
    d="$BATS_TEST_TMPDIR/units"
    mkdir -p "$d"
    sed "s|/usr/local/bin/stagecoach|$SC|" "$SC_ROOT/examples/stagecoach.service" >"$d/stagecoach.service"
    cp "$SC_ROOT/examples/stagecoach.timer" "$d/"
    run systemd-analyze verify "$d/stagecoach.service" "$d/stagecoach.timer"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "the YAML reader rejects what it must (so the compose checks can fail)" {
    f="$BATS_TEST_TMPDIR/bad.yml"
    printf 'services:\n  a:\n    image: x\n   bad: 1\n' >"$f"
    refute yaml_to_json "$f"
    printf 'services:\n  a:\n    image: x\n    image: y\n' >"$f"
    refute yaml_to_json "$f"
    printf 'services:\n\ta: 1\n' >"$f"
    refute yaml_to_json "$f"
    printf 'services:\n  a:\n    image: "x\n' >"$f"
    refute yaml_to_json "$f"
    printf 'a:\n  - x\n  - y\nb: [1, "2"]\nc: {}\n' >"$f"
    run yaml_to_json "$f"
    [ "$status" -eq 0 ]
    [ "$output" = '{"a": ["x", "y"], "b": ["1", "2"], "c": {}}' ]
}

@test "the structural compose check fails on a broken compose file" {
    f="$BATS_TEST_TMPDIR/broken.yml"
    # a secret the service uses but nobody declares, a password in the env
    sed -e 's/^  restic_env:$/  restic_envx:/' "$SC_ROOT/examples/docker-compose.yml" >"$f"
    refute compose_check "$f" backup
    sed -e 's/^      BACKUP_MODE: single$/      MYSQL_PASSWORD: secret/' "$SC_ROOT/examples/docker-compose.yml" >"$f"
    refute compose_check "$f" backup
    refute compose_check "$SC_ROOT/examples/docker-compose.yml" backup,tracker
}

@test "docker-compose.yml (SQLite): well-formed, and its environment passes config check" {
    compose_check "$SC_ROOT/examples/docker-compose.yml" backup >"$BATS_TEST_TMPDIR/env"
    cat "$BATS_TEST_TMPDIR/env"
    grep -qx 'BACKUP_SQLITE_ENABLED=true' "$BATS_TEST_TMPDIR/env"
    check_compose_env "$BATS_TEST_TMPDIR/env"
    [[ "$output" == *"[sqlite tracker]"* ]]
    [[ "$output" == *"[paths config]"* ]]
    [[ "$output" == *"keep_within = 7d"* ]]
}

@test "docker-compose.mysql.yml: tracker, MySQL and backup; the password only in a secret" {
    compose_check "$SC_ROOT/examples/docker-compose.mysql.yml" mysql,tracker,backup >"$BATS_TEST_TMPDIR/env"
    cat "$BATS_TEST_TMPDIR/env"
    grep -qx 'BACKUP_MYSQL_ENABLED=true' "$BATS_TEST_TMPDIR/env"
    refute grep -q '^MYSQL_PASSWORD=' "$BATS_TEST_TMPDIR/env"
    check_compose_env "$BATS_TEST_TMPDIR/env"
    [[ "$output" == *"[mysql tracker]"* ]]
    [[ "$output" == *"host = mysql"* ]]
    [[ "$output" == *"database = torrust_tracker"* ]]
    [[ "$output" == *"password_file = /run/secrets/backup_mysql_password"* ]]
    [[ "$output" == *"repository_file = /run/secrets/restic_repository"* ]]
    # the data volume the docs describe
    grep -q '^      - ./storage/mysql/data:/var/lib/mysql$' "$SC_ROOT/examples/docker-compose.mysql.yml"
}

@test "the PostgreSQL example configuration has a [postgresql tracker] source with a password file" {
    run "$SC" -c "$SC_ROOT/examples/stagecoach-postgresql.conf" config show
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"[postgresql tracker]"* ]]
    [[ "$output" == *"database = torrust_tracker"* ]]
    [[ "$output" == *"password_file = /run/secrets/backup_pg_password"* ]]
}

@test "docker-compose.postgresql.yml: tracker, PostgreSQL and backup; its config passes config check, the password only in a secret" {
    local f="$SC_ROOT/examples/docker-compose.postgresql.yml"
    compose_check "$f" postgres,tracker,backup >"$BATS_TEST_TMPDIR/env"
    cat "$BATS_TEST_TMPDIR/env"
    refute grep -q 'PASSWORD=' "$BATS_TEST_TMPDIR/env"
    grep -qx 'STAGECOACH_CONFIG=/config/stagecoach.conf' "$BATS_TEST_TMPDIR/env"
    # /config is storage/backup/etc, where examples/stagecoach-postgresql.conf goes
    grep -q '^      - ./storage/backup/etc:/config:ro$' "$f"
    grep -q '^      - ./storage/postgres/data:/var/lib/postgresql/data$' "$f"
    # the configuration with the service's environment, as the container sees it
    local -a vars=()
    mapfile -t vars < <(sed "s|^STAGECOACH_CONFIG=.*|STAGECOACH_CONFIG=$SC_ROOT/examples/stagecoach-postgresql.conf|" \
        "$BATS_TEST_TMPDIR/env")
    run env -i PATH="$PATH" "${vars[@]}" "$SC" config show
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"[postgresql tracker]"* ]]
    [[ "$output" == *"host = postgres"* ]]
    [[ "$output" == *"dir = /backups"* ]]
    # every secret file the configuration names is one the backup service gets
    local secret
    for secret in $(grep -o '/run/secrets/[a-z_]*' "$SC_ROOT/examples/stagecoach-postgresql.conf"); do
        python3 - "$BATS_TEST_TMPDIR/compose.json" "${secret#/run/secrets/}" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert sys.argv[2] in doc["services"]["backup"]["secrets"], sys.argv[2]
PY
    done
    # the server's major version is the image's pg_dump's (Debian 13: 17)
    grep -q '^    image: postgres:17-trixie$' "$f"
    grep -q '^FROM debian:trixie-slim$' "$SC_ROOT/examples/Dockerfile"
    grep -q 'postgresql-client' "$SC_ROOT/examples/Dockerfile"
}

@test "the Dockerfile runs stagecoach with run as its default command" {
    grep -qx 'ENTRYPOINT \["/usr/local/bin/stagecoach"\]' "$SC_ROOT/examples/Dockerfile"
    grep -qx 'CMD \["run"\]' "$SC_ROOT/examples/Dockerfile"
    grep -q '^USER ' "$SC_ROOT/examples/Dockerfile"
}

# The stages of examples/Dockerfile as JSON: [{from, as, install: [...],
# run: [...]}] (continuation lines joined; apt-get install's package names).
dockerfile_stages() {
    python3 - "$SC_ROOT/examples/Dockerfile" <<'PY'
import json, re, shlex, sys
text = re.sub(r"\\\n", " ", open(sys.argv[1]).read())
stages = []
for line in text.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    if word == "FROM":
        f = rest.split()
        stages.append({"from": f[0], "as": f[2] if len(f) > 2 and f[1].upper() == "AS" else None,
                       "install": [], "run": []})
    elif word == "RUN":
        stages[-1]["run"].append(rest)
        for cmd in re.split(r"&&|;", rest):
            w = shlex.split(cmd)
            if w[:2] == ["apt-get", "install"]:
                stages[-1]["install"] += [p for p in w[2:] if not p.startswith("-")]
print(json.dumps(stages))
PY
}

# The pkg-config names the Makefile links (PKGS), and their Debian -dev packages.
makefile_dev_packages() {
    python3 - "$SC_ROOT/Makefile" <<'PY'
import re, sys
dev = {"sqlite3": "libsqlite3-dev", "libmariadb": "libmariadb-dev", "libarchive": "libarchive-dev",
       "libsodium": "libsodium-dev", "inih": "libinih-dev", "jansson": "libjansson-dev",
       "libpq": "libpq-dev"}
pkgs = []
for line in open(sys.argv[1]):
    m = re.match(r"^PKGS\s*(:=|\+=|=)\s*(.*)$", line)
    if m:
        pkgs = (pkgs if m.group(1) == "+=" else []) + m.group(2).split()
missing = [p for p in pkgs if p not in dev]
if missing:
    sys.exit(f"no Debian -dev package known for {missing}: add it here and to examples/Dockerfile")
print(" ".join(dev[p] for p in pkgs))
PY
}

@test "the Dockerfile builds on debian:trixie-slim: every library the Makefile links, unit tests in the build, no -dev package in the image" {
    dockerfile_stages >"$T/stages.json"
    local devs
    devs="$(makefile_dev_packages)"
    [[ "$devs" == *libsqlite3-dev*libjansson-dev* ]]
    python3 - "$T/stages.json" $devs <<'PY'
import json, sys
stages, devs = json.load(open(sys.argv[1])), sys.argv[2:]
assert len(stages) == 2, stages
build, image = stages
assert all(s["from"] == "debian:trixie-slim" for s in stages), [s["from"] for s in stages]
assert build["as"] == "build", build
for p in devs + ["build-essential", "pkg-config", "libcmocka-dev"]:
    assert p in build["install"], f"the build stage does not install {p}"
assert any("make -C /src" in r and " all unit" in r for r in build["run"]), build["run"]
assert "restic" in image["install"] and "ca-certificates" in image["install"], image["install"]
assert not [p for p in image["install"] if p.endswith("-dev")], image["install"]
assert any("rm -rf /var/lib/apt/lists/*" in r for r in image["run"]), image["run"]
PY
    # the build context leaves the host's build directories (the Debian 13 chroot) out
    grep -qx 'build\*' "$SC_ROOT/.dockerignore"
}

@test "the Dockerfile's packages exist in Debian 13, and the image has the run-time library of every library the Makefile links" {
    # trixie's package list, as scripts/install-deps.sh fetched it for restic 0.18
    local apt_dir="${SC_TEST_PREFIX:-/opt/stagecoach-test}/restic-0.18.apt"
    [ -f "$apt_dir/etc/sources.list" ] || skip "no Debian 13 package list in $apt_dir (scripts/install-deps.sh)"
    dockerfile_stages >"$T/stages.json"
    # shellcheck disable=SC2046 # one word per package
    python3 - "$T/stages.json" "$apt_dir" $(makefile_dev_packages) <<'PY'
import json, re, subprocess, sys
stages, d, devs = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3:]
opts = ["-o", f"Dir::Etc::sourcelist={d}/etc/sources.list", "-o", f"Dir::Etc::sourceparts={d}/etc/sources.list.d",
        "-o", f"Dir::State={d}/state", "-o", f"Dir::State::status={d}/state/status", "-o", f"Dir::Cache={d}/cache"]
def show(pkg):
    r = subprocess.run(["apt-cache", *opts, "show", "--no-all-versions", pkg], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip(), f"{pkg} is not a Debian 13 package"
    return r.stdout
build, image = stages
for p in build["install"] + image["install"]:
    show(p)
for dev in devs:
    stem = dev[:-4]
    deps = re.search(r"^Depends: (.*)$", show(dev), re.M)
    names = [re.split(r"[ (]", x.strip())[0] for x in deps.group(1).split(",")] if deps else []
    runtime = [n for n in names if n.startswith(stem) and not n.endswith("-dev")]
    for n in runtime:
        assert n in image["install"], f"{dev} links {n}: the image does not install it"
PY
}
