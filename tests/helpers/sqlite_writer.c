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

#include "common/writer.h"

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
    writer_prog = "sqlite_writer";
    writer_catch_stop();
    sqlite3 *db = writer_open(path, 600000, mode);
    writer_exec_retry(db,
                      "CREATE TABLE IF NOT EXISTS c(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);"
                      "CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, a INTEGER, pad BLOB);"
                      "INSERT OR IGNORE INTO c VALUES (1, 0, 0)",
                      5);

    sqlite3_stmt *upd = writer_prepare(db, "UPDATE c SET a = a + 1, b = b + 1 WHERE id = 1");
    sqlite3_stmt *ins =
        writer_prepare(db, "INSERT INTO log(a, pad) SELECT a, randomblob(64) FROM c WHERE id = 1");

    long commits = 0;
    double end = writer_now() + seconds;
    while (!writer_stop && (seconds <= 0 || writer_now() < end)) {
        writer_exec_retry(db, "BEGIN IMMEDIATE", 5);
        if (writer_stop && sqlite3_get_autocommit(db))
            break; /* BEGIN gave up because of the stop request */
        int rc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (rc != SQLITE_DONE)
            writer_die(db, "update");
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            writer_die(db, "insert");
        writer_exec_retry(db, "COMMIT", 5);
        commits++;
        if (ready && (commits == 20 || (commits > 20 && commits % 50 == 0)))
            write_progress(ready, commits);
    }
    sqlite3_finalize(upd);
    sqlite3_finalize(ins);
    if (sqlite3_close(db) != SQLITE_OK)
        writer_die(db, "close");
    printf("%ld\n", commits);
    return 0;
}
