#!/usr/bin/env python3
"""make bench: stagecoach side by side with what users would otherwise run.

Everything is generated here, deterministically, and cached under
build-bench/bench-data (keyed by GEN_VERSION and the scale); results go to
build-bench/results.json and a table on stdout. See docs/performance.md.

Environment:
  BENCH_SCALE   fraction of the full sizes (default 1; 0.05 for a smoke run)
  BENCH_RUNS    runs per tool, alternating A B C A B C ... (default 3)
  BENCH_ONLY    comma list of parts: sqlite,reflink,mysql,mysql2,restore,hash,incr,mem,pages,pg,pgincr (default all)
  BENCH_BACKUP_CAP  seconds `.backup` may run under load (default 20)
  BENCH_SQLITE_MODES  journal modes of the SQLite part (default wal,delete)
  SC_BENCH_BIN, SC_BENCH_NOHASH_BIN, SC_BENCH_LOAD_BIN: the programs (make sets them)

python3 standard library only.
"""
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

import restore as restore_parts  # scripts/bench/restore.py: restore, second MySQL shape, RSS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build-bench")
GEN_VERSION = 1
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY",
                                       "sqlite,reflink,mysql,mysql2,restore,hash,incr,mem,pages,pg,pgincr").split(",")))
BACKUP_CAP = float(os.environ.get("BENCH_BACKUP_CAP", "20"))
WRITER_RATE = 200
SC = os.environ.get("SC_BENCH_BIN", os.path.join(BUILD, "stagecoach"))
SC_NOHASH = os.environ.get("SC_BENCH_NOHASH_BIN", os.path.join(ROOT, "build-bench-nohash", "stagecoach"))
LOAD = os.environ.get("SC_BENCH_LOAD_BIN", os.path.join(BUILD, "bench", "sqlite_load"))

SQLITE_MB = 1024 * SCALE          # the database under load (§2), also the "big file" (§4)
SQLITE_BIG_FACTOR = 4             # §6: one four times larger
MYSQL_ROWS = int(1_000_000 * SCALE)
PG_ROWS = int(1_000_000 * SCALE)
TAG = f"v{GEN_VERSION}-s{SCALE:g}"
DATA = os.path.join(BUILD, "bench-data", TAG)
OUT = os.path.join(BUILD, "bench-out")
MYDIR = os.path.join(BUILD, f"my-{TAG}")  # short: the MariaDB socket lives here
PGDIR = os.path.join(BUILD, f"pg-{TAG}")  # the PostgreSQL cluster and its socket
T0 = time.monotonic()


def log(msg):
    print(f"[bench {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def mb(nbytes):
    return nbytes / 1e6


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAGECOACH_", "RESTIC_"))}
    env["XDG_CACHE_HOME"] = os.path.join(OUT, "cache")
    env["LC_ALL"] = "C.UTF-8"
    env.update(extra or {})
    return env


class Result:
    def __init__(self, secs, rss_kb, rc, out=b"", err=b"", cpu_s=None):
        self.secs, self.rss_kb, self.rc, self.out, self.err = secs, rss_kb, rc, out, err
        self.cpu_s = cpu_s  # user + system seconds (measure_rss only)


def measure(argv, env=None, timeout=600):
    """Run argv, capturing stdout; wall time only."""
    t = time.monotonic()
    r = subprocess.run(argv, capture_output=True, env=env or clean_env(), timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {' '.join(argv)}\n{r.stderr.decode(errors='replace')[-2000:]}")
    return Result(time.monotonic() - t, 0, r.returncode, r.stdout, r.stderr)


def settle():
    """Write out what earlier tools left dirty in the page cache, so that no
    tool is timed while the kernel writes back another's output (seen: `cp`
    of the idle file took 0.4 s in a round's first run, 1.1-2.3 s after
    `.backup` and `VACUUM INTO` had run)."""
    os.sync()


def measure_rss(argv, stdout=None, env=None, cwd=None, timeout=600, check=True, settled=False):
    """Run argv under GNU time for its peak RSS (%M, KiB). Not from Python's
    own wait4: a child's ru_maxrss keeps the high-water mark of the process
    it was forked from (Python itself, ~20 MB), a small `time` has ~2 MB.
    settled: the caller already called settle() (before starting a writer)."""
    if not settled:
        settle()
    rssf = os.path.join(OUT, "last-rss.txt")
    errp = os.path.join(OUT, "last-stderr.txt")
    outf = open(stdout, "wb") if stdout else subprocess.DEVNULL
    with open(errp, "wb") as errf:
        t = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", rssf] + argv, stdout=outf, stderr=errf,
                             env=env or clean_env(), cwd=cwd)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise RuntimeError(f"timed out after {timeout}s: {' '.join(argv)}")
        finally:
            if stdout:
                outf.close()
        secs = time.monotonic() - t
    with open(errp, "rb") as f:
        err = f.read()
    if check and p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(argv)}\n{err.decode(errors='replace')[-2000:]}")
    rss, cpu = 0, None
    with open(rssf) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0].isdigit():
                rss, cpu = int(parts[0]), float(parts[1]) + float(parts[2])
    return Result(secs, rss, p.returncode, b"", err, cpu)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def fresh_dir(path):
    rmtree(path)
    os.makedirs(path)
    return path


def dir_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(d, f)).st_size
    return total


# ---- data -------------------------------------------------------------------

def gen_sqlite(path, megabytes):
    """A tracker-like database: events with an index, varied row sizes, half
    of each payload random (incompressible), half text. Deterministic."""
    tmp = path + ".tmp"
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(tmp + suffix):
            os.unlink(tmp + suffix)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-65536")
    db.execute("CREATE TABLE peers(id INTEGER PRIMARY KEY, info_hash BLOB NOT NULL, peer_id TEXT NOT NULL,"
               " ts INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL)")
    rnd = random.Random(20261127)
    kinds = ["started", "completed", "stopped", "announce"]
    words = b"tracker announce scrape peer seeder leecher torrent swarm bytes left uploaded "
    target = int(megabytes * 1e6)
    avg = 900
    rows = max(1000, target // (avg + 60))

    def rowgen():
        for i in range(1, rows + 1):
            n = rnd.randint(200, 1400)
            half = n // 2
            yield (i, rnd.randbytes(20), f"-SC0001-{i:012d}", 1_700_000_000 + i * 3,
                   kinds[i % 4], rnd.randbytes(half) + (words * (1 + half // len(words)))[: n - half])

    db.executemany("INSERT INTO peers VALUES (?,?,?,?,?,?)", rowgen())
    db.commit()
    db.execute("CREATE INDEX peers_ts ON peers(ts)")
    db.execute("CREATE INDEX peers_hash ON peers(info_hash)")
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    os.rename(tmp, path)


def ensure_sqlite():
    os.makedirs(DATA, exist_ok=True)
    db = os.path.join(DATA, "app.db")
    if not os.path.exists(db):
        log(f"generating SQLite database ({SQLITE_MB:.0f} MB)")
        gen_sqlite(db, SQLITE_MB)
    return db


def ensure_sqlite_big(db):
    big = os.path.join(DATA, f"app-x{SQLITE_BIG_FACTOR}.db")
    if not os.path.exists(big):
        log(f"generating the x{SQLITE_BIG_FACTOR} SQLite database")
        tmp = big + ".tmp"
        shutil.copyfile(db, tmp)
        c = sqlite3.connect(tmp)
        c.execute("PRAGMA journal_mode=OFF")
        c.execute("PRAGMA synchronous=OFF")
        c.execute("PRAGMA cache_size=-1500000")  # the index updates stay in memory
        c.execute("DROP TABLE IF EXISTS load_log")
        c.execute("DROP TABLE IF EXISTS load_counter")
        # x2 then x2: the rows again with new ids (C speed, no Python loop)
        for _ in range(2):
            c.execute("INSERT INTO peers(info_hash, peer_id, ts, kind, payload)"
                      " SELECT info_hash, peer_id, ts, kind, payload FROM peers")
            c.commit()
        c.execute("PRAGMA journal_mode=DELETE")
        c.close()
        os.rename(tmp, big)
    return big


BIGFILE_MB = 256 * SCALE           # §4: one big file (the first part of the database)


def bigfile(db):
    """The one big file of §4: the first BIGFILE_MB of the idle database (a
    real file, about half incompressible)."""
    f = os.path.join(DATA, "big.bin")
    if not os.path.exists(f):
        left = int(BIGFILE_MB * 1e6)
        with open(db, "rb") as src, open(f + ".tmp", "wb") as dst:
            while left > 0:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
        os.rename(f + ".tmp", f)
    return f


# ---- MariaDB ----------------------------------------------------------------

def mysql(sql, db=None, timeout=900):
    argv = ["mariadb", "--no-defaults", "-S", os.path.join(MYDIR, "sock"), "-uroot", "-N", "-B"]
    if db:
        argv.append(db)
    r = subprocess.run(argv + ["-e", sql], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"mariadb: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def mysql_rows_sql(lo, hi):
    # Deterministic from the row number: md5/sha2 make text and binary that
    # do not compress away; JSON, DECIMAL and DATETIME as an application has.
    return f"""INSERT INTO bench.events
SELECT seq,
       CONCAT('user-', seq, '-', LEFT(MD5(seq), 10)),
       CONCAT('announce from ', SHA2(seq, 256), ' swarm ', MD5(seq * 7), ' left=', seq % 1000,
              ' uploaded=', seq * 13, ' downloaded=', seq * 17),
       UNHEX(CONCAT(SHA2(seq, 512), SHA2(seq + 1, 256))),
       JSON_OBJECT('id', seq, 'event', ELT(1 + seq % 4, 'started', 'completed', 'stopped', 'announce'),
                   'peer', LEFT(SHA1(seq), 20), 'port', 6881 + seq % 100, 'tags', JSON_ARRAY('a', seq % 10)),
       (seq * 7919 % 100000000) / 100,
       TIMESTAMP('2020-01-01 00:00:00') + INTERVAL seq * 37 SECOND
FROM seq_{lo}_to_{hi}"""


MYSQL_UP = False


def ensure_mysql():
    global MYSQL_UP
    if MYSQL_UP:
        return os.path.join(MYDIR, "sock")
    marker = os.path.join(MYDIR, "bench-data")
    want = f"{TAG} rows={MYSQL_ROWS}"
    have = open(marker).read().strip() if os.path.exists(marker) else ""
    if have != want:
        subprocess.run([os.path.join(ROOT, "scripts/test-mariadb.sh"), "stop", MYDIR], check=False)
        rmtree(MYDIR)
    subprocess.run([os.path.join(ROOT, "scripts/test-mariadb.sh"), "start", MYDIR], check=True)
    MYSQL_UP = True
    if have != want:
        log(f"generating MariaDB table ({MYSQL_ROWS} rows)")
        mysql("CREATE DATABASE bench; CREATE TABLE bench.events (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL,"
              " body TEXT NOT NULL, data BLOB NOT NULL, doc JSON NOT NULL, amount DECIMAL(12,2) NOT NULL,"
              " created DATETIME NOT NULL) ENGINE=InnoDB")
        step = 100_000
        for lo in range(1, MYSQL_ROWS + 1, step):
            hi = min(MYSQL_ROWS, lo + step - 1)
            mysql("SET SESSION sql_log_bin=0; SET unique_checks=0; " + mysql_rows_sql(lo, hi), db="bench")
        with open(marker, "w") as f:
            f.write(want + "\n")
    return os.path.join(MYDIR, "sock")


def stop_mysql():
    subprocess.run([os.path.join(ROOT, "scripts/test-mariadb.sh"), "stop", MYDIR], check=False)


# ---- stagecoach configs -----------------------------------------------------

def write_conf(path, sources, staging, extra="", restic=None):
    """A config; stage needs a [restic] section even when nothing is shipped."""
    if restic is None:
        pw = os.path.join(OUT, "restic.pass")
        if not os.path.exists(pw):
            with open(pw, "w") as f:
                f.write("bench-password\n")
        os.chmod(pw, 0o600)
        restic = f"[restic]\nrepository = {os.path.join(OUT, 'repo-unused')}\npassword_file = {pw}\n"
    with open(path, "w") as f:
        f.write(f"[staging]\ndir = {staging}\nkeep = 1\n{extra}\n{sources}\n{restic}")
    return path


def sc_stage(binary, conf, staging, verbose=False, settled=False):
    """One `stagecoach stage` from an empty staging directory."""
    fresh_dir(staging)
    os.chmod(staging, 0o700)
    return measure_rss([binary, "-v" if verbose else "-q", "-c", conf, "stage"], settled=settled)


def phase_at(stderr, when):
    """The last log line of stagecoach's stderr (-v: "[YYYY-mm-dd HH:MM:SS]
    ...", whole seconds) at or before the Unix time `when`."""
    last = None
    for line in stderr.decode(errors="replace").splitlines():
        if not line.startswith("[") or "]" not in line:
            continue
        try:
            t = time.mktime(time.strptime(line[1:20], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if t > when:
            break
        last = line[21:].strip()[:80]
    return last


def manifest_of(staging):
    sets = os.path.join(staging, "sets")
    sid = sorted(os.listdir(sets))[-1]
    with open(os.path.join(sets, sid, "MANIFEST.json")) as f:
        return sid, json.load(f)


# ---- the parts --------------------------------------------------------------

results = {"schema": "stagecoach-bench/1", "scale": SCALE, "runs": RUNS, "gen_version": GEN_VERSION,
           "rows": [], "details": {}}


def row(part, tool, secs_list, nbytes=None, rss_kb=None, ref=None, target=None, ok=None, note=""):
    med = statistics.median(secs_list) if secs_list else None
    r = {"part": part, "tool": tool, "runs_s": [round(s, 3) for s in secs_list],
         "median_s": round(med, 3) if med is not None else None,
         "mb_s": round(mb(nbytes) / med, 1) if nbytes and med else None,
         "bytes": nbytes, "peak_rss_mb": round(rss_kb / 1024, 1) if rss_kb else None,
         "ratio": ref, "target": target, "pass": ok, "note": note}
    results["rows"].append(r)
    return r


LIVE = []  # background processes to end if the bench fails half-way


class Writer:
    """sqlite_load in the background: ~200 commits/s on the database."""

    def __init__(self, db, mode):
        self.ready = os.path.join(OUT, "writer.ready")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.p = subprocess.Popen([LOAD, db, str(WRITER_RATE), mode, self.ready], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        LIVE.append(self.p)
        t = time.monotonic()
        while not os.path.exists(self.ready):
            if self.p.poll() is not None or time.monotonic() - t > 30:
                raise RuntimeError(f"writer did not start: {self.p.stderr.read().decode()}")
            time.sleep(0.02)
        time.sleep(1.0)  # let it settle into its rhythm

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, err = self.p.communicate(timeout=120)
        LIVE.remove(self.p)
        if self.p.returncode != 0:
            raise RuntimeError(f"writer failed: {err.decode()}")
        return json.loads(out.decode().strip().splitlines()[-1])


def io_wchar(pid):
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def sqlite_backup_capped(db, out):
    """sqlite3 .backup under load, at most BACKUP_CAP seconds. Returns
    (secs, finished, dest_bytes, written_bytes)."""
    for suffix in ("", "-journal"):
        if os.path.exists(out + suffix):
            os.unlink(out + suffix)
    t = time.monotonic()
    p = subprocess.Popen(["sqlite3", db, ".timeout 60000", f".backup '{out}'"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    wchar = 0
    finished = False
    while True:
        if p.poll() is not None:
            finished = p.returncode == 0
            break
        w = io_wchar(p.pid)
        if w is not None:
            wchar = w
        if time.monotonic() - t > BACKUP_CAP:
            break
        time.sleep(0.05)
    secs = time.monotonic() - t
    dest = os.path.getsize(out) if os.path.exists(out) else 0
    if p.poll() is None:
        p.kill()
    p.communicate()
    return secs, finished, dest, wchar


def part_sqlite():
    db = ensure_sqlite()
    size = os.path.getsize(db)
    work = fresh_dir(os.path.join(OUT, "sqlite"))
    staging = os.path.join(work, "staging")
    conf = write_conf(os.path.join(work, "sc.conf"), f"[sqlite app]\npath = {db}\n", staging)
    copy = os.path.join(work, "copy.db")
    details = {}
    for mode in os.environ.get("BENCH_SQLITE_MODES", "wal,delete").split(","):
        # The mode is set (and the WAL checkpointed away) before the rounds.
        c = sqlite3.connect(db)
        c.execute(f"PRAGMA journal_mode={mode}")
        c.close()
        size = os.path.getsize(db)
        t = {k: [] for k in ("cp", "cp+fsync", "b2sum", "stagecoach", "vacuum-into", "backup")}
        rss = {k: 0 for k in t}
        lat = {k: [] for k in t}
        bk = []
        for r in range(RUNS):
            log(f"sqlite {mode}: round {r + 1}/{RUNS}")
            res = measure_rss(["cp", db, copy])
            t["cp"].append(res.secs)
            rss["cp"] = max(rss["cp"], res.rss_kb)
            os.unlink(copy)
            res = measure_rss(["sh", "-c", 'cp "$1" "$2" && sync "$2"', "sh", db, copy])
            t["cp+fsync"].append(res.secs)
            os.unlink(copy)
            # BLAKE2b-512 of the file alone: B2SUMS needs it of every staged
            # file, so no stage can take less (design.md section 7)
            res = measure_rss(["b2sum", db], stdout=os.devnull)
            t["b2sum"].append(res.secs)
            fresh_dir(staging)
            settle()
            w = Writer(db, mode)
            t_start = time.time()
            res = sc_stage(SC, conf, staging, verbose=True, settled=True)
            wl = w.stop()
            # where the worst commit fell: seconds into the stage, and the
            # phase stagecoach's log had last announced by then
            wl["worst_at_stage_s"] = round(wl["worst_at"] - t_start, 2)
            wl["worst_phase"] = phase_at(res.err, wl["worst_at"])
            lat["stagecoach"].append(wl)
            t["stagecoach"].append(res.secs)
            rss["stagecoach"] = max(rss["stagecoach"], res.rss_kb)
            settle()
            w = Writer(db, mode)
            res = measure_rss(["sqlite3", db, ".timeout 60000", f"VACUUM INTO '{copy}'"], settled=True)
            lat["vacuum-into"].append(w.stop())
            t["vacuum-into"].append(res.secs)
            rss["vacuum-into"] = max(rss["vacuum-into"], res.rss_kb)
            os.unlink(copy)
            settle()
            w = Writer(db, mode)
            secs, fin, dest, wchar = sqlite_backup_capped(db, copy)
            lat["backup"].append(w.stop())
            t["backup"].append(secs)
            bk.append({"secs": round(secs, 2), "finished": fin, "dest_bytes": dest, "written_bytes": wchar})
            for suffix in ("", "-journal"):
                if os.path.exists(copy + suffix):
                    os.unlink(copy + suffix)
        rmtree(staging)
        part = f"sqlite-{mode}"
        # The reference is cp's fastest run, not its median: on this VM the
        # same cp of the idle, cached file took 0.34 s or 2.5 s from one run
        # to the next (kernel copy_file_range; ext4 mounted with online
        # discard; the host's I/O), while stagecoach's runs stay within 5%.
        # A slow cp must never make stagecoach look good.
        cp_med = min(t["cp"])
        sc_med = statistics.median(t["stagecoach"])
        worst = {k: max(x["worst_ms"] for x in v) for k, v in lat.items() if v}
        rates = {k: round(statistics.median(x["rate"] for x in v), 1) for k, v in lat.items() if v}
        r = row(part, "cp (idle file)", t["cp"], size, rss["cp"], 1.0, None, None,
                f"reference: its fastest run, {cp_med:.2f} s (ratios below are to it); no writer; no fsync")
        r["mb_s"] = round(mb(size) / cp_med, 1)
        row(part, "cp + fsync (idle file)", t["cp+fsync"], size, None, round(statistics.median(t["cp+fsync"]) / cp_med, 2),
            None, None, "no writer")
        b2_med = statistics.median(t["b2sum"])
        row(part, "b2sum (idle file): the floor", t["b2sum"], size, None, round(b2_med / cp_med, 2), None, None,
            "BLAKE2b-512 alone: the least any stage that writes B2SUMS can take")
        ratio = round(sc_med / cp_med, 2)
        row(part, "stagecoach stage", t["stagecoach"], size, rss["stagecoach"], ratio, "<= 2.0x cp", ratio <= 2.0,
            f"under load; restarts 0; writer worst commit {worst['stagecoach']:.0f} ms at {rates['stagecoach']}/s")
        if mode == "wal":
            wst = max(lat["stagecoach"], key=lambda x: x["worst_ms"])
            row(part, "writer worst commit during stagecoach", [], None, None, round(worst["stagecoach"], 1),
                "<= 250 ms", worst["stagecoach"] <= 250,
                f"ms, worst of all rounds; {wst['worst_at_stage_s']} s into the stage, during: {wst['worst_phase']}")
        row(part, "sqlite3 VACUUM INTO", t["vacuum-into"], size, rss["vacuum-into"],
            round(statistics.median(t["vacuum-into"]) / cp_med, 2), None, None,
            f"under load; writer worst commit {worst['vacuum-into']:.0f} ms")
        bk_fin = all(b["finished"] for b in bk)
        # throughput of .backup: how far it got (the destination's size, its
        # high-water mark) over the time it ran; a finished one: the whole DB
        bk_mbs = statistics.median((size if b["finished"] else b["dest_bytes"]) / 1e6 / b["secs"] for b in bk)
        sc_mbs = mb(size) / sc_med
        tr = round(sc_mbs / bk_mbs, 1) if bk_mbs > 0 else None  # None: .backup got nowhere
        bk_note = (f"capped at {BACKUP_CAP:g} s; finished {sum(b['finished'] for b in bk)}/{len(bk)}; "
                   f"got to {statistics.median(b['dest_bytes'] for b in bk) / 1e6:.1f} MB of {mb(size):.0f} MB "
                   f"(wrote {statistics.median(b['written_bytes'] for b in bk) / 1e6:.1f} MB); restarts unknown; "
                   f"writer worst commit {worst['backup']:.0f} ms")
        r = row(part, "sqlite3 .backup", t["backup"], None, None, None, None, None, bk_note)
        r["mb_s"] = round(bk_mbs, 2)
        row(part, "stagecoach vs .backup throughput", [], None, None, tr, ">= 100x", tr is None or tr >= 100,
            "MB/s of stagecoach / MB/s of .backup" + (" (.backup finished)" if bk_fin else "")
            + (" (.backup copied nothing: ratio unbounded)" if tr is None else ""))
        details[mode] = {"db_bytes": size, "times": t, "writer": lat, "backup": bk}
    results["details"]["sqlite"] = details


class LoopFs:
    """A file system of TYPE in a loop file under OUT, mounted for a part of
    the bench (xfs: with reflink=1). reason says why it cannot be made."""

    def __init__(self, fstype, size_bytes):
        self.fstype, self.dev, self.mnt, self.reason = fstype, None, None, None
        mkfs = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "ext4": ["mkfs.ext4", "-q", "-F"]}[fstype]
        if os.geteuid() != 0:
            self.reason = "loop mounts need root"
            return
        if shutil.which(mkfs[0]) is None:
            self.reason = f"no {mkfs[0]} (scripts/install-deps.sh installs it)"
            return
        img = os.path.join(OUT, f"{fstype}.img")
        if os.path.exists(img):
            os.unlink(img)
        with open(img, "wb") as f:
            f.truncate(int(size_bytes))
        self.img = img
        if subprocess.run(mkfs + [img], capture_output=True).returncode != 0:
            self.reason = f"{mkfs[0]} failed"
            return
        r = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True)
        if r.returncode != 0:
            self.reason = f"no loop device ({r.stderr.strip()})"
            return
        self.dev = r.stdout.strip()
        mnt = fresh_dir(os.path.join(OUT, f"mnt-{fstype}"))
        r = subprocess.run(["mount", "-t", fstype, self.dev, mnt], capture_output=True, text=True)
        if r.returncode != 0:
            self.reason = f"cannot mount a {fstype} loop device ({r.stderr.strip()})"
            return
        self.mnt = mnt

    def close(self):
        if self.mnt:
            subprocess.run(["umount", self.mnt], check=False)
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], check=False)
        if getattr(self, "img", None) and os.path.exists(self.img):
            os.unlink(self.img)


def stage_rollback_under_writer(fs, db_src):
    """The bench database in rollback-journal mode on fs, staged RUNS times
    (staging on the same fs) under the bench writer: stage times, the
    writer's worst commits, the manifest's copy_method and lock_ms."""
    db = os.path.join(fs.mnt, "app.db")
    shutil.copyfile(db_src, db)
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=DELETE")
    c.close()
    staging = os.path.join(fs.mnt, "staging")
    conf = write_conf(os.path.join(OUT, f"reflink-{fs.fstype}.conf"), f"[sqlite app]\npath = {db}\n", staging)
    out = {"secs": [], "worst_ms": [], "rate": [], "lock_ms": [], "method": set(), "phase": [], "alone_ms": []}
    for r in range(RUNS):
        log(f"reflink {fs.fstype}: round {r + 1}/{RUNS}")
        settle()
        w = Writer(db, "delete")
        res = sc_stage(SC, conf, staging, verbose=True, settled=True)
        wl = w.stop()
        _, m = manifest_of(staging)
        e = [s for s in m["sources"] if s["name"] == "app"][0]
        out["secs"].append(res.secs)
        out["worst_ms"].append(wl["worst_ms"])
        out["rate"].append(wl["rate"])
        out["lock_ms"].append(e.get("lock_ms"))
        out["method"].add(e.get("copy_method"))
        out["phase"].append(phase_at(res.err, wl["worst_at"]))
        rmtree(staging)
        # the floor: the same writer on the same file system, as long, alone
        settle()
        w = Writer(db, "delete")
        time.sleep(res.secs)
        out["alone_ms"].append(w.stop()["worst_ms"])
    return out


def part_reflink():
    """Issue 15 part B: a rollback-journal database staged under the bench
    writer, cloned on XFS reflink=1, beside the backup API on ext4 (same
    database, same writer): how long the writer's commits wait."""
    part = "sqlite-rollback-reflink"
    src = ensure_sqlite()
    size = os.path.getsize(src)
    # the database, its clone's new extents and the writer's growth; the
    # backup API's copy needs a second full size
    xfs = LoopFs("xfs", max(320e6, size * 1.5 + 200e6))
    ext4 = LoopFs("ext4", max(64e6, size * 2.5 + 100e6))
    try:
        details = {}
        for fs, label in ((xfs, "XFS reflink=1"), (ext4, "ext4, backup API")):
            if fs.reason:
                row(part, f"stagecoach stage ({label})", [], note=f"skipped: {fs.reason}")
                row(part, f"writer worst commit during stagecoach ({label})", [], note=f"skipped: {fs.reason}")
                continue
            o = stage_rollback_under_writer(fs, src)
            details[fs.fstype] = {k: (sorted(v) if isinstance(v, set) else v) for k, v in o.items()}
            worst = max(o["worst_ms"])
            locks = [x for x in o["lock_ms"] if x is not None]
            lock_med = statistics.median(locks) if locks else None
            methods = ",".join(sorted(str(x) for x in o["method"]))
            row(part, f"stagecoach stage ({label})", o["secs"], size, None, None, None, None,
                f"copy_method {methods}; writers held {lock_med} ms (median lock_ms); "
                f"writer at {statistics.median(o['rate']):.0f}/s")
            row(part, f"writer worst commit without a stage ({label})", [], None, None, round(max(o["alone_ms"]), 1),
                None, None, "ms, worst of all rounds: the same writer, as long as a stage, alone (the disk's floor)")
            if fs is xfs:
                # what stagecoach holds the writer for; the worst commit
                # below also carries the disk's own latency (the row above)
                lock_max = max(locks) if locks else None
                row(part, f"lock held: writers wait for us ({label})", [], None, None, lock_max,
                    "<= 50 ms", lock_max is not None and lock_max <= 50 and methods == "reflink",
                    "ms, the manifest's lock_ms, largest of all rounds")
                row(part, f"writer worst commit during stagecoach ({label})", [], None, None, round(worst, 1),
                    "<= 50 ms", worst <= 50 and methods == "reflink",
                    f"ms, worst of all rounds; during: {o['phase'][o['worst_ms'].index(worst)]}")
            else:
                row(part, f"writer worst commit during stagecoach ({label})", [], None, None, round(worst, 1),
                    None, None, f"ms, worst of all rounds (the reference: writers wait for the whole copy); "
                    f"during: {o['phase'][o['worst_ms'].index(worst)]}")
        results["details"]["reflink"] = details
    finally:
        xfs.close()
        ext4.close()


def mysql_conf(path, staging, sock, extra_sources=""):
    return write_conf(path, f"[mysql bench]\nsocket = {sock}\nuser = root\ndatabase = bench\n{extra_sources}",
                      staging)


def part_mysql():
    sock = ensure_mysql()
    work = fresh_dir(os.path.join(OUT, "mysql"))
    staging = os.path.join(work, "staging")
    conf = mysql_conf(os.path.join(work, "sc.conf"), staging, sock)
    tools = {"stagecoach stage": [], "stagecoach stage (no hashing)": [], "mariadb-dump": [], "mydumper": []}
    rss = {k: 0 for k in tools}
    size = {}
    for r in range(RUNS):
        log(f"mysql: round {r + 1}/{RUNS}")
        res = sc_stage(SC, conf, staging)
        tools["stagecoach stage"].append(res.secs)
        rss["stagecoach stage"] = max(rss["stagecoach stage"], res.rss_kb)
        sid, m = manifest_of(staging)
        size["stagecoach stage"] = dir_bytes(os.path.join(staging, "sets", sid, "mysql"))
        res = sc_stage(SC_NOHASH, conf, staging)
        tools["stagecoach stage (no hashing)"].append(res.secs)
        rss["stagecoach stage (no hashing)"] = max(rss["stagecoach stage (no hashing)"], res.rss_kb)
        out = os.path.join(work, "mariadb-dump.sql")
        res = measure_rss(["mariadb-dump", "--no-defaults", "-S", sock, "-uroot", "--single-transaction",
                           "--hex-blob", "bench"], stdout=out)
        tools["mariadb-dump"].append(res.secs)
        rss["mariadb-dump"] = max(rss["mariadb-dump"], res.rss_kb)
        size["mariadb-dump"] = os.path.getsize(out)
        os.unlink(out)
        outdir = fresh_dir(os.path.join(work, "mydumper"))
        res = measure_rss(["mydumper", "-S", sock, "-u", "root", "-B", "bench", "-t", "2", "-r", "100000",
                           "-o", outdir])
        tools["mydumper"].append(res.secs)
        rss["mydumper"] = max(rss["mydumper"], res.rss_kb)
        size["mydumper"] = dir_bytes(outdir)
        rmtree(outdir)
    rmtree(staging)
    med = {k: statistics.median(v) for k, v in tools.items()}
    sc = med["stagecoach stage"]
    ra = round(sc / med["mariadb-dump"], 2)
    rm = round(sc / med["mydumper"], 2)
    rss_mb = rss["stagecoach stage"] / 1024
    row("mysql", "stagecoach stage", tools["stagecoach stage"], size["stagecoach stage"], rss["stagecoach stage"],
        ra, "<= 0.7x mariadb-dump", ra <= 0.7, f"{MYSQL_ROWS} rows; default threads")
    row("mysql", "  vs mydumper", [], None, None, rm, "<= 1.0x mydumper", rm <= 1.0, "")
    row("mysql", "  peak RSS", [], None, None, round(rss_mb, 1), "<= 64 MB", rss_mb <= 64, "MB")
    row("mysql", "mariadb-dump --single-transaction --hex-blob", tools["mariadb-dump"], size["mariadb-dump"],
        rss["mariadb-dump"], 1.0, None, None, "reference")
    row("mysql", "mydumper -t 2 -r 100000", tools["mydumper"], size["mydumper"], rss["mydumper"],
        round(med["mydumper"] / med["mariadb-dump"], 2), None, None, "")
    over = round(sc / med["stagecoach stage (no hashing)"] - 1, 3)
    row("hash", "stagecoach stage, MySQL (no hashing build)", tools["stagecoach stage (no hashing)"],
        size["stagecoach stage"], rss["stagecoach stage (no hashing)"], 1.0, None, None,
        "bench-only -DSC_BENCH_NO_HASH")
    row("hash", "stagecoach stage, MySQL: hashing overhead", [], None, None, over, "<= 0.15", over <= 0.15,
        "time with hashing / without - 1")
    results["details"]["mysql"] = {"rows": MYSQL_ROWS, "sizes": size, "times": tools}


def part_hash():
    db = ensure_sqlite()
    big = bigfile(db)
    size = os.path.getsize(big)
    work = fresh_dir(os.path.join(OUT, "hash"))
    staging = os.path.join(work, "staging")
    conf = write_conf(os.path.join(work, "sc.conf"), f"[paths big]\npath = {big}\n", staging)
    key = os.path.join(work, "sc-key")
    subprocess.run([SC, "keygen", "--out", key], check=True, capture_output=True, env=clean_env())
    enc_staging = os.path.join(work, "staging-enc")
    enc_conf = write_conf(os.path.join(work, "sc-enc.conf"), f"[paths big]\npath = {big}\n", enc_staging,
                          f"encrypt = yes\nrecipient = {key}.pub\n")
    agekey = os.path.join(work, "age-key")
    subprocess.run(["age-keygen", "-o", agekey], check=True, capture_output=True)
    recipient = [ln.split(":", 1)[1].strip() for ln in open(agekey) if ln.startswith("# public key:")][0]
    t = {k: [] for k in ("stage", "stage-nohash", "verify", "b2sum", "stage-enc", "age")}
    cpu = {k: [] for k in t}  # user + system seconds, for the floor of the sealed stage
    rss = {k: 0 for k in t}
    tar_bytes = 0
    for r in range(RUNS):
        log(f"hash/encrypt: round {r + 1}/{RUNS}")
        res = sc_stage(SC, conf, staging)
        t["stage"].append(res.secs)
        rss["stage"] = max(rss["stage"], res.rss_kb)
        sid, m = manifest_of(staging)
        tar = os.path.join(staging, "sets", sid, "paths", "big.tar")
        tar_bytes = os.path.getsize(tar)
        res = measure_rss([SC, "-q", "-c", conf, "verify", "--set", sid])
        t["verify"].append(res.secs)
        rss["verify"] = max(rss["verify"], res.rss_kb)
        res = measure_rss(["b2sum", tar], stdout=os.devnull)
        t["b2sum"].append(res.secs)
        cpu["b2sum"].append(res.cpu_s)
        rss["b2sum"] = max(rss["b2sum"], res.rss_kb)
        res = sc_stage(SC_NOHASH, conf, staging)
        t["stage-nohash"].append(res.secs)
        rss["stage-nohash"] = max(rss["stage-nohash"], res.rss_kb)
        res = sc_stage(SC, enc_conf, enc_staging)
        t["stage-enc"].append(res.secs)
        cpu["stage-enc"].append(res.cpu_s)
        rss["stage-enc"] = max(rss["stage-enc"], res.rss_kb)
        out = os.path.join(work, "big.age")
        res = measure_rss(["age", "-r", recipient, "-o", out, big])
        t["age"].append(res.secs)
        cpu["age"].append(res.cpu_s)
        rss["age"] = max(rss["age"], res.rss_kb)
        os.unlink(out)
    rmtree(staging)
    rmtree(enc_staging)
    med = {k: statistics.median(v) for k, v in t.items()}
    over = round(med["stage"] / med["stage-nohash"] - 1, 3)
    row("hash", "stagecoach stage, 1 big file (paths)", t["stage"], size, rss["stage"], 1.0, None, None,
        "tar + BLAKE2b + fsync")
    row("hash", "stagecoach stage, 1 big file (no hashing build)", t["stage-nohash"], size, rss["stage-nohash"],
        None, None, None, "bench-only -DSC_BENCH_NO_HASH")
    row("hash", "stagecoach stage, 1 big file: hashing overhead", [], None, None, over, "<= 0.15", over <= 0.15,
        "time with hashing / without - 1")
    floor = round(max(0.0, med["b2sum"] / med["stage-nohash"] - 1), 3)
    row("hash", "  floor: b2sum of the file / no-hash stage - 1", [], None, None, floor, None, None,
        "the overhead even if BLAKE2b ran wholly beside the rest, on another core")
    b2 = round(med["b2sum"] / med["verify"], 2)
    row("hash", "stagecoach verify --set (BLAKE2b-512)", t["verify"], tar_bytes, rss["verify"], b2,
        ">= 0.9x b2sum MB/s", b2 >= 0.9, "hashes the set's files (tar + MANIFEST.json) against B2SUMS")
    row("hash", "b2sum (BLAKE2b-512)", t["b2sum"], tar_bytes, rss["b2sum"], 1.0, None, None, "reference, same tar")
    enc = round(med["age"] / med["stage-enc"], 2)
    row("encrypt", "stagecoach stage, encrypt = yes", t["stage-enc"], size, rss["stage-enc"], enc,
        ">= 1.5x age MB/s", enc >= 1.5, "read + tar + encrypt + BLAKE2b of plaintext and ciphertext + fsync")
    seal = round(med["stage-enc"] / med["b2sum"], 2)
    row("encrypt", "  sealed stage vs b2sum of the file", [], None, None, seal, "<= 1.3x b2sum", seal <= 1.3,
        "time ratio: the BLAKE2b floor of a stage (issue 16)")
    # CPU seconds vary less than wall time on a shared machine
    cmed = {k: statistics.median(v) for k, v in cpu.items() if v}
    row("encrypt", "  floor on 2 cores: CPU (2 x b2sum + age) / 2 vs b2sum", [], None, None,
        round(1 + cmed["age"] / (2 * cmed["b2sum"]), 2), None, None,
        "two BLAKE2b passes (plaintext, stored bytes) and a read-encrypt-write pass shared by two cores")
    row("encrypt", "  sealed stage: its CPU / 2 vs b2sum's CPU", [], None, None,
        round(cmed["stage-enc"] / (2 * cmed["b2sum"]), 2), None, None,
        f"the wall time its work needs on two idle cores; CPU s: stage {cmed['stage-enc']:.2f}, "
        f"b2sum {cmed['b2sum']:.2f}, age {cmed['age']:.2f}")
    row("encrypt", "age -r (X25519)", t["age"], size, rss["age"], 1.0, None, None,
        "reference: read + encrypt + write, no fsync")
    row("encrypt", "  ceiling: b2sum of the file alone vs age", [], None, None,
        round(med["age"] / med["b2sum"], 2), None, None,
        "BLAKE2b-512 of the stored bytes (B2SUMS) alone, as a throughput ratio to age")
    results["details"]["hash"] = {"file_bytes": size, "tar_bytes": tar_bytes, "times": t, "cpu_s": cpu}


def restic_json_added(out):
    for line in out.decode().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("message_type") == "summary":
            return j["data_added"]
    raise RuntimeError("restic printed no summary")


def shipping_work(name):
    """A fresh work directory for stage+ship runs: its staging directory and
    the [restic] (and [check]) sections of a local repository in it."""
    work = fresh_dir(os.path.join(OUT, name))
    staging = os.path.join(work, "staging")
    os.makedirs(staging, mode=0o700)
    pw = os.path.join(work, "restic.pass")
    with open(pw, "w") as f:
        f.write("bench-password\n")
    os.chmod(pw, 0o600)
    repo = os.path.join(work, "repo")
    restic = (f"[restic]\nrepository = {repo}\npassword_file = {pw}\nhost = bench\ninit = yes\n\n"
              "[check]\nevery = 0\n")
    return work, staging, restic


def part_incr():
    """Three stage+ship runs of the MySQL source: the base; with 1% of rows
    appended (the issue's case); then, appended rows gone, with 1% of rows
    updated in ten places (ten runs of 0.1% of the rows, spread over the
    table: recently active rows, say). Beside them, the same dumps
    gzip-compressed and backed up with restic the way a script would."""
    sock = ensure_mysql()
    work, staging, restic = shipping_work("incr")
    conf = write_conf(os.path.join(work, "sc.conf"),
                      f"[mysql bench]\nsocket = {sock}\nuser = root\ndatabase = bench\n", staging,
                      restic=restic)
    extra = max(1, MYSQL_ROWS // 100)
    hot = f"id % {max(1, MYSQL_ROWS // 10)} < {max(1, MYSQL_ROWS // 1000)}"  # 10 x 0.1%
    cases = ["base", "append 1%", "update 1%"]
    reports, dumps = [], []
    try:
        for i, case in enumerate(cases):
            if case == "append 1%":
                mysql("SET SESSION sql_log_bin=0; " + mysql_rows_sql(MYSQL_ROWS + 1, MYSQL_ROWS + extra), db="bench")
            if case == "update 1%":
                mysql(f"SET SESSION sql_log_bin=0; DELETE FROM bench.events WHERE id > {MYSQL_ROWS};"
                      f" UPDATE bench.events SET amount = amount + 1 WHERE {hot}")
            log(f"incremental: stagecoach run {i + 1}/{len(cases)} ({case})")
            res = measure([SC, "--json", "-q", "-c", conf, "run"], timeout=900)
            rep = json.loads(res.out.decode())
            reports.append(rep)
            plain = os.path.join(rep["set_path"], "mysql", "bench", "dump.sql")
            dump = os.path.join(work, f"dump{i + 1}.sql.gz")
            with open(dump, "wb") as f:
                subprocess.run(["gzip", "-c", plain], stdout=f, check=True)
            dumps.append((os.path.getsize(plain), dump))
    finally:
        mysql(f"SET SESSION sql_log_bin=0; DELETE FROM bench.events WHERE id > {MYSQL_ROWS};"
              f" UPDATE bench.events SET amount = amount - 1 WHERE {hot}" if len(reports) == 3 else
              f"SET SESSION sql_log_bin=0; DELETE FROM bench.events WHERE id > {MYSQL_ROWS}")
    gzrepo = os.path.join(work, "repo-gz")
    env = clean_env({"RESTIC_PASSWORD": "bench-password", "RESTIC_REPOSITORY": gzrepo})
    subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
    gz_added = []
    gzdir = fresh_dir(os.path.join(work, "gz"))
    for i, (_, dump) in enumerate(dumps):
        log(f"incremental: restic backup of the gzip dump {i + 1}/{len(cases)}")
        shutil.copyfile(dump, os.path.join(gzdir, "dump.sql.gz"))
        r = subprocess.run(["restic", "backup", "--json", "--host", "bench", gzdir], env=env, check=True,
                           capture_output=True)
        gz_added.append(restic_json_added(r.stdout))
    added = [rep["snapshot"]["data_added"] for rep in reports]
    for i in (1, 2):
        dump_b = dumps[i][0]
        gz_b = os.path.getsize(dumps[i][1])
        frac = round(added[i] / dump_b, 4)
        gfrac = round(gz_added[i] / gz_b, 4)
        target = "<= 0.03" if i == 1 else None
        row("incremental", f"stagecoach run, {cases[i]} rows: data_added / dump", [], added[i], None, frac, target,
            (frac <= 0.03) if i == 1 else None,
            f"dump {mb(dump_b):.0f} MB; base run added {mb(added[0]):.1f} MB, this run {mb(added[i]):.2f} MB")
        row("incremental", f"gzip dump + restic, {cases[i]} rows: data_added / gz", [], gz_added[i], None, gfrac,
            None, None, f"gz {mb(gz_b):.0f} MB; base added {mb(gz_added[0]):.1f} MB, this one {mb(gz_added[i]):.1f} MB")
    results["details"]["incremental"] = {"cases": cases, "rows_changed": extra, "dump_bytes": [d[0] for d in dumps],
                                         "stagecoach_data_added": added,
                                         "gz_bytes": [os.path.getsize(d[1]) for d in dumps], "gz_data_added": gz_added,
                                         "run_durations_s": [rep["duration_s"] for rep in reports]}
    rmtree(work)


# ---- layout = pages (issue 15 part A) ---------------------------------------

TRACKER_ROWS = int(3_000_000 * SCALE)  # the 3M torrents, ~317 MB at scale 1


def gen_tracker(path, rows):
    """The issue's tracker shape: torrents with a random unique 20-byte
    info_hash (its index spreads over the whole file). Deterministic."""
    if os.path.exists(path):
        return
    log(f"generating a tracker-shaped database of {rows} torrents")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    for p in (tmp, tmp + "-wal", tmp + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    rnd = random.Random(15)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash BLOB UNIQUE NOT NULL,"
                " completed INTEGER NOT NULL DEFAULT 0)")
    batch = 100_000
    for lo in range(0, rows, batch):
        con.executemany("INSERT INTO torrents (info_hash, completed) VALUES (?, ?)",
                        ((rnd.randbytes(20), rnd.randrange(1000)) for _ in range(min(batch, rows - lo))))
        con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.rename(tmp, path)


def tracker_day(path, rows):
    """Skewed `completed = completed + 1` on the hot 3% of torrents and 0.1%
    new ones, as in the issue (deterministic)."""
    rnd = random.Random(1515)
    con = sqlite3.connect(path)
    con.execute("UPDATE torrents SET completed = completed + 1 WHERE id <= ?", (max(1, rows * 3 // 100),))
    con.executemany("INSERT INTO torrents (info_hash) VALUES (?)",
                    ((rnd.randbytes(20),) for _ in range(max(1, rows // 1000))))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def pages_changed(a, b):
    """The share of b's pages that are not byte-equal to a's page at the same number."""
    with open(a, "rb") as fa:
        ps = int.from_bytes(fa.read(18)[16:18], "big")
    ps = 65536 if ps == 1 else ps
    n = changed = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            pb = fb.read(ps)
            if not pb:
                break
            n += 1
            changed += fa.read(ps) != pb
    return changed / n


def part_pages():
    """[sqlite NAME] layout = pages beside layout = file on the same
    tracker-shaped database: stage+ship, the issue's change, stage+ship
    again: restic's data_added of the second run against the file's size;
    then stage (the store warm) and restore --set times."""
    base = os.path.join(DATA, "tracker.db")
    gen_tracker(base, TRACKER_ROWS)
    size = os.path.getsize(base)
    out = {}
    for layout in ("file", "pages"):
        work, staging, restic = shipping_work(f"pages-{layout}")
        db = os.path.join(work, "tracker.db")
        shutil.copyfile(base, db)
        day0 = os.path.join(work, "day0.db")
        shutil.copyfile(base, day0)
        conf = write_conf(os.path.join(work, "sc.conf"), f"[sqlite tracker]\npath = {db}\nlayout = {layout}\n",
                          staging, restic=restic)
        log(f"pages: layout = {layout}: first run")
        measure([SC, "--json", "-q", "-c", conf, "run"], timeout=1800)
        tracker_day(db, TRACKER_ROWS)
        log(f"pages: layout = {layout}: second run, after the change")
        rep = json.loads(measure([SC, "--json", "-q", "-c", conf, "run"], timeout=1800).out.decode())
        stage, restore = [], []
        for r in range(RUNS):
            log(f"pages: layout = {layout}: stage and restore {r + 1}/{RUNS}")
            res = measure_rss([SC, "-q", "-c", conf, "stage"], timeout=1800)
            stage.append((res.secs, res.rss_kb))
            to = os.path.join(work, f"restore-{r}")
            res = measure_rss([SC, "-q", "-c", conf, "restore", "--set", "latest", "--to", to, "--apply",
                               "--source", "tracker", "--into", os.path.join(work, f"restored-{r}.db")],
                              timeout=1800)
            restore.append((res.secs, res.rss_kb))
            rmtree(to)
        out[layout] = {"data_added": rep["snapshot"]["data_added"], "stage": stage, "restore": restore,
                       "db_bytes": os.path.getsize(db), "changed": pages_changed(day0, db)}
        rmtree(work)
    changed = out["pages"]["changed"]
    for layout in ("pages", "file"):
        o = out[layout]
        frac = round(o["data_added"] / o["db_bytes"], 4)
        ok = frac <= min(0.10, 2 * changed) if layout == "pages" else None
        row("pages", f"layout = {layout}, 2nd run: data_added / database", [], o["data_added"], None, frac,
            "<= 2x changed, <= 0.10" if layout == "pages" else None, ok,
            f"{o['db_bytes'] / 1e6:.0f} MB database, {changed:.1%} of its pages changed")
    med = {k: {w: statistics.median(s for s, _ in out[k][w]) for w in ("stage", "restore")} for k in out}
    for what, target, limit in (("stage", "<= 1.3", 1.3), ("restore", "<= 1.5", 1.5)):
        ratio = round(med["pages"][what] / med["file"][what], 2)
        for layout in ("file", "pages"):
            runs = out[layout][what]
            row("pages", f"stagecoach {what}{' --set --apply' if what == 'restore' else ''}, layout = {layout}",
                [s for s, _ in runs], out[layout]["db_bytes"], max(k for _, k in runs),
                ratio if layout == "pages" else None, target if layout == "pages" else None,
                (ratio <= limit) if layout == "pages" else None,
                "pages / file" if layout == "pages" else
                ("the page store warm for pages" if what == "stage" else "--into a new file; check included"))
    # layout = auto (pages from 1 GiB): what pages buys per run, per GiB of
    # database, against what it costs, from the runs above
    gib = out["file"]["db_bytes"] / (1 << 30)
    saved = (out["file"]["data_added"] - out["pages"]["data_added"]) / gib
    added = (med["pages"]["stage"] - med["file"]["stage"]) / gib
    slower = (med["pages"]["restore"] - med["file"]["restore"]) / gib
    link_s = saved / (100e6 / 8)
    row("pages", "layout = auto: upload saved / stage time added, per GiB, at 100 Mbit/s", [], int(saved), None,
        round(link_s / added, 1) if added > 0 else None, None, None,
        f"per GiB of database and run: {saved / 1e6:.0f} MB less uploaded ({link_s:.0f} s at 100 Mbit/s) "
        f"for {added:+.1f} s of stage and {slower:+.1f} s of restore")
    results["details"]["pages"] = {"rows": TRACKER_ROWS, "base_bytes": size, "layouts": out,
                                   "auto_per_gib": {"upload_saved_bytes": saved, "stage_added_s": added,
                                                    "restore_added_s": slower}}


def part_mem():
    db = ensure_sqlite()
    big = ensure_sqlite_big(db)
    work = fresh_dir(os.path.join(OUT, "mem"))
    staging = os.path.join(work, "staging")
    out = {}
    for name, path in (("1x", db), (f"x{SQLITE_BIG_FACTOR}", big)):
        conf = write_conf(os.path.join(work, f"sc-{name}.conf"), f"[sqlite app]\npath = {path}\n", staging)
        log(f"memory: staging the {name} database")
        res = sc_stage(SC, conf, staging)
        out[name] = (res, os.path.getsize(path))
    rmtree(staging)
    a, b = out["1x"][0].rss_kb, out[f"x{SQLITE_BIG_FACTOR}"][0].rss_kb
    d = round(abs(b - a) / a, 3)
    row("memory", "stagecoach stage, SQLite 1x", [out["1x"][0].secs], out["1x"][1], a, None, None, None, "no writer")
    row("memory", f"stagecoach stage, SQLite x{SQLITE_BIG_FACTOR}", [out[f"x{SQLITE_BIG_FACTOR}"][0].secs],
        out[f"x{SQLITE_BIG_FACTOR}"][1], b, d, "RSS differs <= 0.10", d <= 0.10, "relative RSS difference")


# ---- PostgreSQL ---------------------------------------------------------------

PG_UP = False


def pg_port():
    with open(os.path.join(PGDIR, "port")) as f:
        return f.read().strip()


def pg_args(db):
    return ["-h", PGDIR, "-p", pg_port(), "-U", "postgres", "-d", db]


def pg(sql, db="bench", timeout=1800):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"] + pg_args(db) + ["-c", sql],
                       capture_output=True, timeout=timeout, env=clean_env({"PGOPTIONS": "-c client_min_messages=warning"}))
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def pg_rows_sql(lo, hi):
    # The MariaDB part's rows, in PostgreSQL: text, bytea (that does not
    # compress away), jsonb, numeric and timestamptz.
    return f"""INSERT INTO events SELECT g,
  'user-' || g || '-' || left(md5(g::text), 10),
  'announce from ' || encode(sha256(g::text::bytea), 'hex') || ' swarm ' || md5((g * 7)::text) ||
    ' left=' || g % 1000 || ' uploaded=' || g * 13 || ' downloaded=' || g * 17,
  sha512(g::text::bytea) || sha256((g + 1)::text::bytea),
  jsonb_build_object('id', g, 'event', (ARRAY['started', 'completed', 'stopped', 'announce'])[1 + g % 4],
                     'peer', left(md5(g::text), 20), 'port', 6881 + g % 100, 'tags', jsonb_build_array('a', g % 10)),
  (g * 7919 % 100000000) / 100.0,
  timestamptz '2020-01-01 00:00:00+00' + g * interval '37 seconds'
FROM generate_series({lo}::bigint, {hi}) g"""


def ensure_pg():
    """A private cluster (scripts/test-postgres.sh) holding bench.events:
    PG_ROWS rows, a primary key and a unique secondary index; bench_q, a
    quarter of it (for RSS against size). Kept between runs."""
    global PG_UP
    if PG_UP:
        return
    marker = os.path.join(PGDIR, "bench-data")
    want = f"{TAG} rows={PG_ROWS}"
    have = open(marker).read().strip() if os.path.exists(marker) else ""
    script = os.path.join(ROOT, "scripts/test-postgres.sh")
    if have != want:
        subprocess.run([script, "stop", PGDIR], check=False)
        rmtree(PGDIR)
    subprocess.run([script, "start", PGDIR], check=True)
    PG_UP = True
    if have != want:
        log(f"generating PostgreSQL table ({PG_ROWS} rows)")
        pg("CREATE DATABASE bench", db="postgres")
        pg("CREATE TABLE events (id bigint PRIMARY KEY, name text NOT NULL, body text NOT NULL, data bytea NOT NULL,"
           " doc jsonb NOT NULL, amount numeric(12,2) NOT NULL, created timestamptz NOT NULL)")
        step = 250_000
        for lo in range(1, PG_ROWS + 1, step):
            pg(pg_rows_sql(lo, min(PG_ROWS, lo + step - 1)))
        pg("CREATE UNIQUE INDEX events_name ON events (name)")
        pg("VACUUM ANALYZE events")
        pg("CREATE DATABASE bench_q TEMPLATE bench", db="postgres")
        pg(f"DELETE FROM events WHERE id > {PG_ROWS // 4}", db="bench_q")
        pg("VACUUM FULL events", db="bench_q")
        with open(marker, "w") as f:
            f.write(want + "\n")


def stop_pg():
    subprocess.run([os.path.join(ROOT, "scripts/test-postgres.sh"), "stop", PGDIR], check=False)


def pg_conf(path, staging, db="bench", restic=None):
    return write_conf(path, f"[postgresql bench]\nhost = {PGDIR}\nport = {pg_port()}\nuser = postgres\n"
                      f"database = {db}\n", staging, restic=restic)


def part_pg():
    ensure_pg()
    work = fresh_dir(os.path.join(OUT, "pg"))
    staging = os.path.join(work, "staging")
    conf = pg_conf(os.path.join(work, "sc.conf"), staging)
    stage_tools = ["stagecoach stage", "pg_dump -Fd -j 2", "pg_dump (plain)"]
    restore_tools = ["stagecoach restore --apply", "pg_restore -j 2"]
    tools = {k: [] for k in stage_tools + restore_tools}
    rss = {k: 0 for k in tools}
    size = {}
    fd = os.path.join(work, "fd")
    for r in range(RUNS):
        log(f"postgresql: round {r + 1}/{RUNS}")
        res = sc_stage(SC, conf, staging)
        tools["stagecoach stage"].append(res.secs)
        rss["stagecoach stage"] = max(rss["stagecoach stage"], res.rss_kb)
        sid, m = manifest_of(staging)
        size["stagecoach stage"] = dir_bytes(os.path.join(staging, "sets", sid, "postgresql"))
        rmtree(fd)
        res = measure_rss(["pg_dump", "-Fd", "-j", "2", "-f", fd] + pg_args("bench"))
        tools["pg_dump -Fd -j 2"].append(res.secs)
        rss["pg_dump -Fd -j 2"] = max(rss["pg_dump -Fd -j 2"], res.rss_kb)
        size["pg_dump -Fd -j 2"] = dir_bytes(fd)
        out = os.path.join(work, "plain.sql")
        res = measure_rss(["pg_dump"] + pg_args("bench"), stdout=out)
        tools["pg_dump (plain)"].append(res.secs)
        rss["pg_dump (plain)"] = max(rss["pg_dump (plain)"], res.rss_kb)
        size["pg_dump (plain)"] = os.path.getsize(out)
        os.unlink(out)
        # the way back: the set just staged, and pg_dump's directory
        pg("DROP DATABASE IF EXISTS bench_r", db="postgres")
        to = os.path.join(work, "restored")
        rmtree(to)
        res = measure_rss([SC, "-q", "-c", conf, "restore", "--set", sid, "--to", to, "--apply", "--into",
                           "bench_r"])
        tools["stagecoach restore --apply"].append(res.secs)
        rss["stagecoach restore --apply"] = max(rss["stagecoach restore --apply"], res.rss_kb)
        rmtree(to)
        pg("DROP DATABASE IF EXISTS bench_pr", db="postgres")
        res = measure_rss(["sh", "-c", 'createdb "$@" bench_pr && pg_restore -j 2 "$@" -d bench_pr "$0"', fd,
                           "-h", PGDIR, "-p", pg_port(), "-U", "postgres"])
        tools["pg_restore -j 2"].append(res.secs)
        rss["pg_restore -j 2"] = max(rss["pg_restore -j 2"], res.rss_kb)
    rows_r = pg("SELECT count(*) FROM events", db="bench_r").strip()
    pg("DROP DATABASE IF EXISTS bench_r", db="postgres")
    pg("DROP DATABASE IF EXISTS bench_pr", db="postgres")
    if rows_r != str(PG_ROWS):
        raise RuntimeError(f"stagecoach restored {rows_r} rows, not {PG_ROWS}")
    # memory against size: the same stage of a quarter of the table, as often
    conf_q = pg_conf(os.path.join(work, "sc-q.conf"), staging, db="bench_q")
    rss_q = max(sc_stage(SC, conf_q, staging).rss_kb for _ in range(RUNS))
    rmtree(staging)
    rmtree(fd)
    med = {k: statistics.median(v) for k, v in tools.items()}
    sc = med["stagecoach stage"]
    rd = round(sc / med["pg_dump -Fd -j 2"], 2)
    rp = round(sc / med["pg_dump (plain)"], 2)
    rr = round(med["stagecoach restore --apply"] / med["pg_restore -j 2"], 2)
    rss_mb = rss["stagecoach stage"] / 1024
    flat = round(abs(rss["stagecoach stage"] - rss_q) / rss_q, 3)
    row("postgresql", "stagecoach stage", tools["stagecoach stage"], size["stagecoach stage"],
        rss["stagecoach stage"], rd, "<= 1.0x pg_dump -Fd -j 2", rd <= 1.0, f"{PG_ROWS} rows; default threads (2)")
    row("postgresql", "  vs plain pg_dump", [], None, None, rp, None, None, "")
    row("postgresql", "  peak RSS", [], None, None, round(rss_mb, 1), "<= 64 MB", rss_mb <= 64, "MB")
    row("postgresql", "  peak RSS, 1x vs 0.25x rows", [], None, rss_q, flat, "differs <= 0.15", flat <= 0.15,
        "relative difference of the highest RSS of each (allocator noise is ~2 MB): flat with size")
    row("postgresql", "pg_dump -Fd -j 2", tools["pg_dump -Fd -j 2"], size["pg_dump -Fd -j 2"],
        rss["pg_dump -Fd -j 2"], 1.0, None, None, "reference (gzip-compressed by default)")
    row("postgresql", "pg_dump (plain)", tools["pg_dump (plain)"], size["pg_dump (plain)"], rss["pg_dump (plain)"],
        round(med["pg_dump (plain)"] / med["pg_dump -Fd -j 2"], 2), None, None, "")
    row("postgresql", "stagecoach restore --set ID --apply", tools["stagecoach restore --apply"],
        size["stagecoach stage"], rss["stagecoach restore --apply"], rr, "<= 1.0x pg_restore -j 2", rr <= 1.0,
        "verify + unpack the set, create, psql pre-data, COPY over 2 connections, psql post-data, count")
    row("postgresql", "createdb + pg_restore -j 2", tools["pg_restore -j 2"], size["pg_dump -Fd -j 2"],
        rss["pg_restore -j 2"], 1.0, None, None, "reference")
    results["details"]["postgresql"] = {"rows": PG_ROWS, "sizes": size, "times": tools,
                                        "rss_kb": rss, "rss_kb_quarter": rss_q}


def part_pgincr():
    """Two stage+ship runs of the PostgreSQL source: the base, then with 1%
    of rows appended: what restic adds, against the dump's size."""
    ensure_pg()
    work, staging, restic = shipping_work("pgincr")
    conf = pg_conf(os.path.join(work, "sc.conf"), staging, restic=restic)
    extra = max(1, PG_ROWS // 100)
    reports = []
    try:
        for i, case in enumerate(["base", "append 1%"]):
            if i == 1:
                pg(pg_rows_sql(PG_ROWS + 1, PG_ROWS + extra))
            log(f"postgresql incremental: stagecoach run {i + 1}/2 ({case})")
            res = measure([SC, "--json", "-q", "-c", conf, "run"], timeout=1800)
            reports.append(json.loads(res.out.decode()))
    finally:
        pg(f"DELETE FROM events WHERE id > {PG_ROWS}")
        pg("VACUUM events")
    dump_b = dir_bytes(os.path.join(reports[1]["set_path"], "postgresql"))
    added = [rep["snapshot"]["data_added"] for rep in reports]
    frac = round(added[1] / dump_b, 4)
    row("postgresql", "stagecoach run, append 1% rows: data_added / dump", [], added[1], None, frac, "<= 0.03",
        frac <= 0.03, f"dump {mb(dump_b):.0f} MB; base run added {mb(added[0]):.1f} MB, this run {mb(added[1]):.2f} MB")
    results["details"]["postgresql_incremental"] = {"rows_appended": extra, "dump_bytes": dump_b,
                                                    "data_added": added}
    rmtree(work)


# ---- report -----------------------------------------------------------------

def fmt(v, f="{:.2f}"):
    return "-" if v is None else (f.format(v) if isinstance(v, (int, float)) else str(v))


def print_table():
    head = ["part", "tool", "median s", "MB/s", "RSS MB", "ratio", "target", "result"]
    lines = [head]
    for r in results["rows"]:
        res = "" if r["pass"] is None else ("PASS" if r["pass"] else "MISS")
        lines.append([r["part"], r["tool"], fmt(r["median_s"]), fmt(r["mb_s"], "{:.1f}"),
                      fmt(r["peak_rss_mb"], "{:.1f}"), fmt(r["ratio"], "{:g}"), r["target"] or "", res])
    w = [max(len(str(x[i])) for x in lines) for i in range(len(head))]
    for i, ln in enumerate(lines):
        print("| " + " | ".join(str(c).ljust(w[j]) for j, c in enumerate(ln)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    print()
    for r in results["rows"]:
        if r["note"]:
            print(f"  {r['part']} / {r['tool']}: {r['note']}")


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def ver(argv):
        try:
            return subprocess.run(argv, capture_output=True, timeout=10).stdout.decode().splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gb": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
            "stagecoach": ver([SC, "--version"]), "sqlite3": ver(["sqlite3", "--version"]),
            "mariadb-dump": ver(["mariadb-dump", "--version"]), "mydumper": ver(["mydumper", "--version"]),
            "age": ver(["age", "--version"]), "b2sum": ver(["b2sum", "--version"]),
            "pg_dump": ver(["pg_dump", "--version"]),
            "restic": ver(["restic", "version"]), "kernel": os.uname().release}


def main():
    for p in (SC, SC_NOHASH, LOAD):
        if not os.access(p, os.X_OK):
            sys.exit(f"bench: {p} is missing (run make bench)")
    missing = [t for t in ("/usr/bin/time", "sqlite3", "cp", "sync", "gzip", "b2sum", "age", "age-keygen", "restic",
                           "mariadb", "mariadb-dump", "mariadb-install-db", "mydumper")
               if shutil.which(t) is None]
    if ONLY & {"pg", "pgincr"}:
        missing += [t for t in ("pg_dump", "pg_restore", "psql", "createdb") if shutil.which(t) is None]
    if missing:
        sys.exit(f"bench: missing {' '.join(missing)} (scripts/install-deps.sh installs them)")
    os.makedirs(OUT, exist_ok=True)
    results["machine"] = machine()
    results["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        if "sqlite" in ONLY:
            part_sqlite()
        if "reflink" in ONLY:
            part_reflink()
        if "hash" in ONLY:
            part_hash()
        if "mysql" in ONLY:
            part_mysql()
        if "mysql2" in ONLY:
            restore_parts.part_mysql2(sys.modules[__name__])
        if "restore" in ONLY:
            restore_parts.part_restore(sys.modules[__name__])
        if "incr" in ONLY:
            part_incr()
        if "mem" in ONLY:
            part_mem()
        if "pages" in ONLY:
            part_pages()
        if "pg" in ONLY:
            part_pg()
        if "pgincr" in ONLY:
            part_pgincr()
        restore_parts.part_rss(sys.modules[__name__])
    finally:
        for p in LIVE:
            p.kill()
            p.wait()
        if ONLY & {"mysql", "mysql2", "restore", "incr"}:
            stop_mysql()
        if ONLY & {"pg", "pgincr"}:
            stop_pg()
        results["total_s"] = round(time.monotonic() - T0, 1)
        with open(os.path.join(BUILD, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    print_table()
    print(f"\nscale {SCALE:g}, {RUNS} runs per tool, total {results['total_s']} s; "
          f"JSON: {os.path.relpath(os.path.join(BUILD, 'results.json'), ROOT)}")


if __name__ == "__main__":
    main()
