/* sqlite_writer DB SECONDS [wal|delete] [READYFILE]
 *
 * A busy writer for the concurrent-staging test. Creates (if missing)
 *   c(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER)  with the row (1, 0, 0)
 *   log(id INTEGER PRIMARY KEY, a INTEGER, pad BLOB)
 * then commits, as fast as it can, transactions that increment c.a and c.b
 * together and insert one log row holding the new value of a. So in every
 * consistent state of the database:  a == b == count(*) FROM log.
 *
 * It stops after SECONDS (0: only on SIGTERM/SIGINT), prints the number of
 * commits on stdout and exits 0. READYFILE, when given, is written after the
 * first 20 commits (so that a test can wait for the writer to be busy) and
 * then every 50 commits, holding the number of commits so far: a test can
 * follow the writer's progress without taking a lock on the database.
 * Exit 1 on any unexpected SQLite error (message on stderr). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_writer: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

/* Run sql; retry while the database is busy (the busy handler already waited). */
static void exec_retry(sqlite3 *db, const char *sql)
{
    for (;;) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return;
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
            if (stop && strcmp(sql, "COMMIT") != 0) {
                /* a stop request while waiting: leave cleanly */
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                return;
            }
            sqlite3_sleep(5);
            continue;
        }
        die(db, sql);
    }
}

/* Replace path with the number n, atomically (write a temp file, rename). */
static void write_progress(const char *path, long n)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%ld\n", n) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: sqlite_writer DB SECONDS [wal|delete] [READYFILE]\n");
        return 2;
    }
    const char *path = argv[1];
    double seconds = atof(argv[2]);
    const char *mode = argc >= 4 ? argv[3] : "wal";
    const char *ready = argc >= 5 ? argv[4] : NULL;
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "delete") != 0) {
        fprintf(stderr, "sqlite_writer: mode must be wal or delete\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(db, "open");
    sqlite3_busy_timeout(db, 600000);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
    exec_retry(db, sql);
    exec_retry(db, "CREATE TABLE IF NOT EXISTS c(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);"
                   "CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, a INTEGER, pad BLOB);"
                   "INSERT OR IGNORE INTO c VALUES (1, 0, 0)");

    sqlite3_stmt *upd, *ins;
    if (sqlite3_prepare_v2(db, "UPDATE c SET a = a + 1, b = b + 1 WHERE id = 1", -1, &upd, NULL) !=
        SQLITE_OK)
        die(db, "prepare update");
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO log(a, pad) SELECT a, randomblob(64) FROM c WHERE id = 1",
                           -1, &ins, NULL) != SQLITE_OK)
        die(db, "prepare insert");

    long commits = 0;
    double end = now() + seconds;
    while (!stop && (seconds <= 0 || now() < end)) {
        exec_retry(db, "BEGIN IMMEDIATE");
        if (stop && sqlite3_get_autocommit(db))
            break; /* BEGIN gave up because of the stop request */
        int rc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (rc != SQLITE_DONE)
            die(db, "update");
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            die(db, "insert");
        exec_retry(db, "COMMIT");
        commits++;
        if (ready && (commits == 20 || (commits > 20 && commits % 50 == 0)))
            write_progress(ready, commits);
    }
    sqlite3_finalize(upd);
    sqlite3_finalize(ins);
    if (sqlite3_close(db) != SQLITE_OK)
        die(db, "close");
    printf("%ld\n", commits);
    return 0;
}
