/* sqlite_walhold DB ROWS READYFILE
 *
 * Puts ROWS rows into table w(id INTEGER PRIMARY KEY, v TEXT) of DB in WAL
 * mode with automatic checkpoints off, one transaction per row, so that the
 * rows live only in DB-wal. Then it creates READYFILE and keeps the
 * connection open (a last close would checkpoint the WAL into DB) until
 * SIGTERM/SIGINT, when it exits 0 without checkpointing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_walhold: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    _exit(0); /* no sqlite3_close: leave the WAL as it is */
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: sqlite_walhold DB ROWS READYFILE\n");
        return 2;
    }
    long rows = atol(argv[2]);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        die(db, "open");
    sqlite3_busy_timeout(db, 60000);
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                     "CREATE TABLE IF NOT EXISTS w(id INTEGER PRIMARY KEY, v TEXT)",
                     NULL, NULL, NULL) != SQLITE_OK)
        die(db, "setup");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO w(v) VALUES (printf('row %d', ?1))", -1, &st, NULL) !=
        SQLITE_OK)
        die(db, "prepare");
    for (long i = 1; i <= rows; i++) {
        sqlite3_bind_int64(st, 1, i);
        if (sqlite3_step(st) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    FILE *f = fopen(argv[3], "w");
    if (f == NULL || fclose(f) != 0) {
        perror(argv[3]);
        return 1;
    }
    for (;;)
        pause();
}
