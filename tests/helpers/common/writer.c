#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t writer_stop;
const char *writer_prog = "writer";

static void on_signal(int sig)
{
    (void)sig;
    writer_stop = 1;
}

void writer_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

double writer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void writer_die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", writer_prog, what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

sqlite3 *writer_open(const char *path, int busy_timeout_ms, const char *journal_mode)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        writer_die(db, "open");
    sqlite3_busy_timeout(db, busy_timeout_ms);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal_mode);
    writer_exec_retry(db, sql, 1);
    return db;
}

sqlite3_stmt *writer_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        writer_die(db, sql);
    return st;
}

int writer_exec_retry(sqlite3 *db, const char *sql, int retry_ms)
{
    for (;;) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            writer_die(db, sql);
        if (writer_stop && strcmp(sql, "COMMIT") != 0) {
            /* a stop request while waiting: leave cleanly */
            if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        sqlite3_sleep(retry_ms);
    }
}
