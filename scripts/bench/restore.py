"""make bench, issue 16's parts (imported by run.py, which passes itself as R):

  restore  MySQL `restore --apply` of 1M rows of the second shape vs
           `myloader -t 2` (of a mydumper dump of the same table) and the
           stock `mariadb < dump.sql`, all into an empty target server
  mysql2   the MySQL stage on the second shape (a unique key on a random
           BINARY(20), DOUBLE, DECIMAL(12,4), DATETIME(6), JSON) vs
           mariadb-dump and mydumper -t 2
  rss      peak RSS of every stagecoach stage and restore of the run

The second shape lives in database `bench2` of run.py's MariaDB (generated
once, cached with its own marker); restores go to a second server started
the same way (scripts/test-mariadb.sh: binary logging on, as the source).
python3 standard library only.
"""
import os
import statistics

SHAPE_DB = "bench2"
SHAPE_TABLE = "shape"
STEP = 100_000


def shape_rows_sql(lo, hi):
    # Deterministic from the row number: SHA1 for the random BINARY(20)
    # (unique), RAND(seed) for a DOUBLE with all its digits, microseconds.
    return f"""INSERT INTO {SHAPE_DB}.{SHAPE_TABLE}
SELECT seq, UNHEX(SHA1(seq)), RAND(seq) * 1000000, (seq * 7919 % 100000000) / 10000,
       TIMESTAMP('2020-01-01 00:00:00') + INTERVAL seq * 37 SECOND + INTERVAL (seq * 7919 % 1000000) MICROSECOND,
       JSON_OBJECT('id', seq, 'user', CONCAT('user-', seq), 'peer', SHA1(seq * 3),
                   'event', ELT(1 + seq % 4, 'started', 'completed', 'stopped', 'announce'),
                   'port', 6881 + seq % 100, 'agent', 'qBittorrent/4.6.2', 'left', seq * 13 % 100000,
                   'ratio', ROUND(RAND(seq * 5) * 10, 3), 'tags', JSON_ARRAY('a', seq % 10, 'b'),
                   'note', MD5(seq))
FROM seq_{lo}_to_{hi}"""


def ensure_shape(R):
    sock = R.ensure_mysql()
    marker = os.path.join(R.MYDIR, "bench2-data")
    want = f"{R.TAG} rows={R.MYSQL_ROWS} shape=1"
    have = open(marker).read().strip() if os.path.exists(marker) else ""
    if have != want:
        R.log(f"generating the second MariaDB shape ({R.MYSQL_ROWS} rows)")
        R.mysql(f"DROP DATABASE IF EXISTS {SHAPE_DB}; CREATE DATABASE {SHAPE_DB};"
                f" CREATE TABLE {SHAPE_DB}.{SHAPE_TABLE} (id BIGINT PRIMARY KEY, h BINARY(20) NOT NULL,"
                " d DOUBLE NOT NULL, m DECIMAL(12,4) NOT NULL, t DATETIME(6) NOT NULL, j JSON NOT NULL,"
                " UNIQUE KEY uh (h)) ENGINE=InnoDB")
        for lo in range(1, R.MYSQL_ROWS + 1, STEP):
            hi = min(R.MYSQL_ROWS, lo + STEP - 1)
            R.mysql("SET SESSION sql_log_bin=0; " + shape_rows_sql(lo, hi), db=SHAPE_DB)
        with open(marker, "w") as f:
            f.write(want + "\n")
    return sock


def shape_conf(R, path, staging, sock, extra=""):
    return R.write_conf(path, f"[mysql shape]\nsocket = {sock}\nuser = root\ndatabase = {SHAPE_DB}\n{extra}",
                        staging)


def target_dir(R):
    return os.path.join(R.BUILD, f"my-target-{R.TAG}")


def start_target(R):
    d = target_dir(R)
    R.subprocess.run([os.path.join(R.ROOT, "scripts/test-mariadb.sh"), "start", d], check=True)
    return os.path.join(d, "sock")


def stop_target(R):
    R.subprocess.run([os.path.join(R.ROOT, "scripts/test-mariadb.sh"), "stop", target_dir(R)], check=False)


def target_sql(R, sock, sql):
    r = R.subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-uroot", "-N", "-B", "-e", sql],
                         capture_output=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"mariadb (target): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def server_cpu(R):
    """CPU seconds (user + system) the target server has used so far: what
    a load costs the server, less disturbed by other work than wall time."""
    with open(os.path.join(target_dir(R), "mariadbd.pid")) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def checksum(R, sock):
    return target_sql(R, sock, f"CHECKSUM TABLE {SHAPE_DB}.{SHAPE_TABLE} EXTENDED").split()[-1]


RSS = []  # (what, KiB) of every stagecoach run of these parts


def part_mysql2(R):
    """The stage on the second shape, beside mariadb-dump and mydumper."""
    sock = ensure_shape(R)
    work = R.fresh_dir(os.path.join(R.OUT, "mysql2"))
    staging = os.path.join(work, "staging")
    conf = shape_conf(R, os.path.join(work, "sc.conf"), staging, sock)
    tools = {"stagecoach stage": [], "mariadb-dump": [], "mydumper": []}
    rss = {k: 0 for k in tools}
    size = {}
    for r in range(R.RUNS):
        R.log(f"mysql (second shape): round {r + 1}/{R.RUNS}")
        res = R.sc_stage(R.SC, conf, staging)
        tools["stagecoach stage"].append(res.secs)
        rss["stagecoach stage"] = max(rss["stagecoach stage"], res.rss_kb)
        sid, _ = R.manifest_of(staging)
        size["stagecoach stage"] = R.dir_bytes(os.path.join(staging, "sets", sid, "mysql"))
        out = os.path.join(work, "mariadb-dump.sql")
        res = R.measure_rss(["mariadb-dump", "--no-defaults", "-S", sock, "-uroot", "--single-transaction",
                             "--hex-blob", SHAPE_DB], stdout=out)
        tools["mariadb-dump"].append(res.secs)
        rss["mariadb-dump"] = max(rss["mariadb-dump"], res.rss_kb)
        size["mariadb-dump"] = os.path.getsize(out)
        os.unlink(out)
        outdir = R.fresh_dir(os.path.join(work, "mydumper"))
        res = R.measure_rss(["mydumper", "-S", sock, "-u", "root", "-B", SHAPE_DB, "-t", "2", "-r", "100000",
                             "-o", outdir])
        tools["mydumper"].append(res.secs)
        rss["mydumper"] = max(rss["mydumper"], res.rss_kb)
        size["mydumper"] = R.dir_bytes(outdir)
        R.rmtree(outdir)
    R.rmtree(staging)
    RSS.append(("stage, second shape", rss["stagecoach stage"]))
    med = {k: statistics.median(v) for k, v in tools.items()}
    sc = med["stagecoach stage"]
    ra = round(sc / med["mariadb-dump"], 2)
    rm = round(sc / med["mydumper"], 2)
    R.row("mysql2", "stagecoach stage (second shape)", tools["stagecoach stage"], size["stagecoach stage"],
          rss["stagecoach stage"], ra, "<= 0.7x mariadb-dump", ra <= 0.7,
          f"{R.MYSQL_ROWS} rows: unique BINARY(20), DOUBLE, DECIMAL(12,4), DATETIME(6), JSON; default threads")
    R.row("mysql2", "  vs mydumper", [], None, None, rm, "<= 1.0x mydumper", rm <= 1.0, "")
    R.row("mysql2", "mariadb-dump --single-transaction --hex-blob", tools["mariadb-dump"], size["mariadb-dump"],
          rss["mariadb-dump"], 1.0, None, None, "reference")
    R.row("mysql2", "mydumper -t 2 -r 100000", tools["mydumper"], size["mydumper"], rss["mydumper"],
          round(med["mydumper"] / med["mariadb-dump"], 2), None, None, "")
    R.results["details"]["mysql2"] = {"rows": R.MYSQL_ROWS, "sizes": size, "times": tools}


def part_restore(R):
    """restore --apply of the second shape into an empty server, beside
    myloader -t 2 (of mydumper's dump) and the stock client."""
    sock = ensure_shape(R)
    work = R.fresh_dir(os.path.join(R.OUT, "restore"))
    staging = os.path.join(work, "staging")
    tsock = start_target(R)
    try:
        # the inputs, made once: stagecoach's set and mydumper's directory
        conf = shape_conf(R, os.path.join(work, "sc.conf"), staging, sock)
        R.sc_stage(R.SC, conf, staging)
        sid, manifest = R.manifest_of(staging)
        dump = os.path.join(staging, "sets", sid, "mysql", "shape", "dump.sql")
        dump_bytes = os.path.getsize(dump)
        mydir = R.fresh_dir(os.path.join(work, "mydumper"))
        R.measure(["mydumper", "-S", sock, "-u", "root", "-B", SHAPE_DB, "-t", "2", "-r", "100000", "-o", mydir])
        want = R.mysql(f"CHECKSUM TABLE {SHAPE_DB}.{SHAPE_TABLE} EXTENDED").split()[-1]
        # the restores go to the target server, under the same name
        rconf = shape_conf(R, os.path.join(work, "sc-restore.conf"), staging, tsock)
        nolog = shape_conf(R, os.path.join(work, "sc-restore-nolog.conf"), staging, tsock, "restore_binlog = no\n")
        tools = {"stagecoach restore --apply": [], "stagecoach restore --apply, restore_binlog = no": [],
                 "mariadb < dump.sql": [], "myloader -t 2": [], "myloader -t 2 -e": []}
        rss = {k: 0 for k in tools}
        cpu = {k: [] for k in tools}  # (client, server) CPU seconds of each run
        to = os.path.join(work, "to")
        for r in range(R.RUNS):
            R.log(f"restore: round {r + 1}/{R.RUNS}")
            for tool in tools:
                target_sql(R, tsock, f"DROP DATABASE IF EXISTS {SHAPE_DB}")
                R.rmtree(to)
                before = server_cpu(R)
                if tool.startswith("stagecoach"):
                    res = R.measure_rss([R.SC, "-q", "-c", nolog if "binlog" in tool else rconf, "restore", "--set",
                                         sid, "--to", to, "--apply", "--source", "shape"], timeout=3600)
                elif tool.startswith("mariadb"):
                    res = R.measure_rss(["sh", "-c", 'mariadb --no-defaults -S "$1" -uroot < "$2"', "sh", tsock,
                                         dump], timeout=3600)
                else:
                    argv = ["myloader", "-S", tsock, "-u", "root", "-t", "2", "-d", mydir]
                    res = R.measure_rss(argv + (["-e"] if tool.endswith("-e") else []), timeout=3600)
                tools[tool].append(res.secs)
                rss[tool] = max(rss[tool], res.rss_kb)
                cpu[tool].append((round(res.cpu_s, 2), round(server_cpu(R) - before, 2)))
                got = checksum(R, tsock)
                if got != want:
                    raise RuntimeError(f"{tool}: restored checksum {got}, the source's is {want}")
        RSS.append(("restore --apply", max(rss["stagecoach restore --apply"],
                                           rss["stagecoach restore --apply, restore_binlog = no"])))
    finally:
        stop_target(R)
        R.rmtree(os.path.join(work, "to"))
        R.rmtree(staging)
    med = {k: statistics.median(v) for k, v in tools.items()}
    cpu_note = {k: "CPU s (client + server) %.1f + %.1f" % (statistics.median(c for c, _ in v),
                                                              statistics.median(s for _, s in v))
                for k, v in cpu.items()}
    sc = med["stagecoach restore --apply"]
    rl = round(sc / med["myloader -t 2"], 2)
    rc = round(sc / med["mariadb < dump.sql"], 2)
    R.row("restore", "stagecoach restore --apply", tools["stagecoach restore --apply"], dump_bytes,
          rss["stagecoach restore --apply"], rl, "<= 1.0x myloader -t 2", rl <= 1.0,
          f"{R.MYSQL_ROWS} rows of the second shape; verify + copy of the set, load, row counts; default threads; "
          + cpu_note["stagecoach restore --apply"])
    R.row("restore", "  vs mariadb < dump.sql", [], None, None, rc, "<= 0.5x mariadb", rc <= 0.5, "")
    R.row("restore", "  vs myloader -t 2 -e", [], None, None, round(sc / med["myloader -t 2 -e"], 2), None, None,
          "myloader with the binary log on, as stagecoach and the stock client keep it")
    nl = "stagecoach restore --apply, restore_binlog = no"
    R.row("restore", nl, tools[nl], dump_bytes, rss[nl], round(med[nl] / med["myloader -t 2"], 2), None, None,
          "ratio to myloader -t 2: both without the binary log; " + cpu_note[nl])
    R.row("restore", "mariadb < dump.sql", tools["mariadb < dump.sql"], dump_bytes, rss["mariadb < dump.sql"],
          1.0, None, None, "reference: the stock client, stagecoach's dump; " + cpu_note["mariadb < dump.sql"])
    R.row("restore", "myloader -t 2", tools["myloader -t 2"], R.dir_bytes(mydir), rss["myloader -t 2"],
          round(med["myloader -t 2"] / med["mariadb < dump.sql"], 2), None, None,
          "mydumper -t 2 -r 100000 dump; myloader's default: no binary log, 1000 statements a transaction; "
          + cpu_note["myloader -t 2"])
    R.row("restore", "myloader -t 2 -e", tools["myloader -t 2 -e"], R.dir_bytes(mydir), rss["myloader -t 2 -e"],
          round(med["myloader -t 2 -e"] / med["mariadb < dump.sql"], 2), None, None,
          "binary log on; " + cpu_note["myloader -t 2 -e"])
    R.results["details"]["restore"] = {"rows": R.MYSQL_ROWS, "dump_bytes": dump_bytes, "times": tools, "cpu_s": cpu,
                                       "manifest_threads": manifest["sources"][0].get("threads")}
    R.rmtree(mydir)


def part_rss(R):
    """The largest peak RSS of any stagecoach stage or restore in this run."""
    seen = list(RSS)
    for r in R.results["rows"]:
        if r["tool"].startswith("stagecoach") and r["peak_rss_mb"]:
            seen.append((f"{r['part']}: {r['tool']}", r["peak_rss_mb"] * 1024))
    if not seen:
        return
    what, kb = max(seen, key=lambda x: x[1])
    mbs = round(kb / 1024, 1)
    R.row("memory", "peak RSS of any stage or restore", [], None, None, mbs, "<= 64 MB", mbs <= 64,
          f"MB, largest of {len(seen)}: {what}")
