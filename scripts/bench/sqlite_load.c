/* sqlite_load DB RATE wal|delete READYFILE
 *
 * The concurrent writer of `make bench` (scripts/bench/run.py): commits
 * about RATE small transactions a second on DB, the way an application
 * under load would, and measures how long each one took from BEGIN
 * IMMEDIATE to the return of COMMIT (waiting for locks included: that is
 * the latency the application sees while a backup runs).
 *
 * Each transaction inserts one row (about 200 bytes) into load_log and
 * bumps a counter in load_counter. The journal mode is set at start;
 * synchronous=NORMAL (the usual setting of a busy WAL application; in
 * rollback mode it still syncs the journal). Commits are paced against
 * the clock (commit n is due at start + n/RATE); a writer that fell more
 * than a second behind (it was blocked) starts a new schedule instead of
 * bursting.
 *
 * READYFILE is written once the first 20 commits are done. On SIGTERM or
 * SIGINT it stops and prints one JSON line on stdout:
 *   {"commits":N,"seconds":S,"rate":R,"worst_ms":W,"worst_at":T,"p99_ms":P,"over_250ms":K}
 * worst_at: when the worst commit started (Unix time, seconds), to place
 * it among the phases of the tool that ran meanwhile.
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

#include "../../tests/helpers/common/writer.h"

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - writer_now();
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: sqlite_load DB RATE wal|delete READYFILE\n");
        return 2;
    }
    const char *path = argv[1], *mode = argv[3], *ready = argv[4];
    double rate = atof(argv[2]);
    if (rate <= 0 || (strcmp(mode, "wal") != 0 && strcmp(mode, "delete") != 0)) {
        fprintf(stderr, "sqlite_load: RATE must be > 0, mode wal or delete\n");
        return 2;
    }
    writer_prog = "sqlite_load";
    writer_catch_stop();
    sqlite3 *db = writer_open(path, 100, mode);
    writer_exec_retry(db, "PRAGMA synchronous=NORMAL", 1);
    writer_exec_retry(db,
                      "CREATE TABLE IF NOT EXISTS load_counter(id INTEGER PRIMARY KEY, n INTEGER);"
                      "CREATE TABLE IF NOT EXISTS load_log(id INTEGER PRIMARY KEY, n INTEGER, "
                      "t REAL, pad TEXT);"
                      "INSERT OR IGNORE INTO load_counter VALUES (1, 0)",
                      1);
    sqlite3_stmt *upd = writer_prepare(db, "UPDATE load_counter SET n = n + 1 WHERE id = 1");
    sqlite3_stmt *ins = writer_prepare(db, "INSERT INTO load_log(n, t, pad) SELECT n, ?1, "
                                           "printf('%.190c', 'x') FROM load_counter WHERE id = 1");

    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    if (lat == NULL)
        writer_die(NULL, "out of memory");
    double worst = 0, worst_at = 0, start = writer_now(), sched = start;
    long k = 0;
    while (!writer_stop) {
        sleep_until(sched + (double)k / rate);
        if (writer_stop)
            break;
        double t0 = writer_now(), w0 = wall();
        if (writer_exec_retry(db, "BEGIN IMMEDIATE", 1) != 0)
            break;
        int rc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (rc != SQLITE_DONE)
            writer_die(db, "update");
        sqlite3_bind_double(ins, 1, t0);
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            writer_die(db, "insert");
        writer_exec_retry(db, "COMMIT", 1);
        double ms = (writer_now() - t0) * 1000.0;
        if (ms > worst) {
            worst = ms;
            worst_at = w0;
        }
        if (n == cap) {
            cap *= 2;
            double *p = realloc(lat, cap * sizeof *lat);
            if (p == NULL)
                writer_die(NULL, "out of memory");
            lat = p;
        }
        lat[n++] = ms;
        k++;
        if (n == 20) {
            FILE *f = fopen(ready, "w");
            if (f == NULL || fclose(f) != 0) {
                perror(ready);
                return 1;
            }
        }
        if (writer_now() - (sched + (double)k / rate) > 1.0) { /* blocked: new schedule */
            sched = writer_now();
            k = 0;
        }
    }
    double secs = writer_now() - start;
    sqlite3_finalize(upd);
    sqlite3_finalize(ins);
    if (sqlite3_close(db) != SQLITE_OK)
        writer_die(db, "close");
    double p99 = 0;
    long over = 0;
    if (n > 0) {
        qsort(lat, n, sizeof *lat, cmp_double);
        p99 = lat[(size_t)((double)(n - 1) * 0.99)];
        for (size_t i = 0; i < n; i++)
            over += lat[i] > 250.0;
    }
    free(lat);
    printf("{\"commits\":%zu,\"seconds\":%.3f,\"rate\":%.1f,\"worst_ms\":%.1f,\"worst_at\":%.3f,"
           "\"p99_ms\":%.1f,\"over_250ms\":%ld}\n",
           n, secs, secs > 0 ? (double)n / secs : 0.0, worst, worst_at, p99, over);
    return 0;
}
