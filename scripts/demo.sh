#!/usr/bin/env bash
# make demo: a real backup end to end on an embedded default.
# Creates demo/ with a SQLite database, a config directory, a local restic
# repository with a generated password file, then runs `stagecoach run`.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
demo=$top/demo

need_install=0
for cmd in restic sqlite3 pkg-config cc; do
  command -v "$cmd" >/dev/null 2>&1 || need_install=1
done
pkg-config --exists sqlite3 libmariadb libpq libarchive libsodium inih jansson 2>/dev/null || need_install=1
if [ "$need_install" = 1 ]; then
  echo "demo: installing missing dependencies (scripts/install-deps.sh)"
  if [ "$(id -u)" -eq 0 ]; then scripts/install-deps.sh; else sudo scripts/install-deps.sh; fi
fi
make -s

umask 077
mkdir -p "$demo/service/config"
if [ ! -f "$demo/service/tracker.db" ]; then
  echo "demo: creating a demo tracker database"
  sqlite3 "$demo/service/tracker.db" >/dev/null <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT UNIQUE NOT NULL, completed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE whitelist (id INTEGER PRIMARY KEY, info_hash TEXT UNIQUE NOT NULL);
CREATE TABLE keys (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, valid_until INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO torrents (info_hash, completed) SELECT printf('%040x', i * 2654435761), i % 97 FROM n;
INSERT INTO whitelist (info_hash) SELECT info_hash FROM torrents WHERE id % 10 = 0;
INSERT INTO keys (key, valid_until) VALUES ('demo-key-1', 1893456000), ('demo-key-2', NULL);
SQL
fi
printf 'TORRUST_TRACKER_CONFIG_OVERRIDE_CORE__DATABASE__DRIVER=sqlite3\n' > "$demo/service/config/.env"
printf '[core]\nlisten = "0.0.0.0:6969"\n' > "$demo/service/config/tracker.toml"
printf 'a file whose name has spaces\n' > "$demo/service/config/notes with spaces.txt"
[ -f "$demo/restic.pass" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$demo/restic.pass"
chmod 600 "$demo/restic.pass"

cat > "$demo/stagecoach.conf" <<CONF
; The demo configuration (made by scripts/demo.sh). Relative paths are
; relative to this file.
[staging]
dir = staging
keep = 3

[sqlite tracker]
path = service/tracker.db

[paths config]
path = service/config

[restic]
repository = $demo/repo
password_file = restic.pass
host = demo
tag = demo
init = yes
CONF

bin=$top/build/stagecoach
echo "demo: stagecoach run"
"$bin" -c "$demo/stagecoach.conf" run
echo
echo "demo: stagecoach snapshots"
"$bin" -c "$demo/stagecoach.conf" snapshots
echo
echo "demo: the staged set, checked with coreutils alone"
latest=$(ls "$demo/staging/sets" | tail -n 1)
(cd "$demo/staging/sets/$latest" && b2sum -c B2SUMS)
