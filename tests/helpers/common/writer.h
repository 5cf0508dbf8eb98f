/* What the SQLite writers of the tests (tests/helpers/sqlite_writer.c) and
 * of make bench (scripts/bench/sqlite_load.c) share: stopping on
 * SIGTERM/SIGINT, the clock, dying on an unexpected SQLite error, and
 * statements retried while a backup holds the lock. Linked into both. */
#ifndef SC_TEST_WRITER_H
#define SC_TEST_WRITER_H

#include <signal.h>
#include <sqlite3.h>

/* Set by SIGTERM or SIGINT once writer_catch_stop() ran. */
extern volatile sig_atomic_t writer_stop;
/* The program's name in messages ("sqlite_writer"). */
extern const char *writer_prog;

void writer_catch_stop(void);
/* Seconds of the monotonic clock. */
double writer_now(void);
/* "PROG: what: SQLite's message" on stderr, exit 1. */
void writer_die(sqlite3 *db, const char *what) __attribute__((noreturn));
/* Open path with a busy timeout and the journal mode ("wal", "delete"). */
sqlite3 *writer_open(const char *path, int busy_timeout_ms, const char *journal_mode);
sqlite3_stmt *writer_prepare(sqlite3 *db, const char *sql);
/* Run sql; while the database is busy (the busy handler already waited:
 * a backup may hold its lock longer than any timeout) retry every
 * retry_ms. A stop request while waiting ends the wait, except for COMMIT:
 * the transaction is rolled back and -1 returned. Any other error dies. */
int writer_exec_retry(sqlite3 *db, const char *sql, int retry_ms);

#endif
