/* What the files of src/restic/ share and nobody else needs: running
 * restic (call.c) and reading what it wrote on stderr (classify.c). */
#ifndef SC_RESTIC_INTERNAL_H
#define SC_RESTIC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "../core/spawn.h"
#include "restic.h"

/* ---- classify.c ---- */

enum rx_failure {
    RX_OTHER,
    RX_PASSWORD,
    RX_NO_REPO,
    RX_LOCKED,
    RX_BACKEND,
    RX_UNREADABLE,
    RX_INTERRUPTED,
    RX_CORRUPT, /* the repository's data failed its MAC: damaged or tampered */
};

/* A copy of s with the userinfo of every URL replaced by "***" (owned). */
char *rx_redact(const char *s);
/* stderr split into non-empty lines, terminal escapes removed. */
void rx_clean_lines(const char *text, struct strvec *lines);
/* What kind of failure restic reported; *line: the line that said so
 * (backend failures), else NULL. */
enum rx_failure rx_failure_kind(const char *what, int exit_code, const struct strvec *lines,
                                const char **line);
/* A backend failure that may pass if tried again (connection refused or
 * reset, timeouts, HTTP 5xx); not one that will not (credentials, TLS). */
bool rx_transient(const struct strvec *lines);
/* What restic 0.17+ was retrying when it had to be stopped: "OP: ERROR" of
 * its last "OP returned error, retrying after D: ERROR" line, redacted;
 * owned, or NULL when it retried nothing. */
char *rx_retry_reason(const char *stderr_text);
/* "PID 123 on host by user ..." and the lock's age, from restic's lock
 * message; owned, or NULL. */
char *rx_lock_holder(const struct strvec *lines);

/* ---- call.c ---- */

/* Before a retry: drop what the failed attempt's line callback collected. */
typedef void (*rx_reset_fn)(void *ctx);

/* first, then each of rest[0..n), sep between them (owned). */
char *rx_join(const char *first, char *const *rest, size_t n, char sep);
/* argv: the binary, global flags (--cacert), the subcommand. */
void rx_argv_start(const struct restic *r, struct strvec *argv, const char *subcommand);
/* Run restic with our environment, within the call's timeout (o->timeout_s,
 * else [restic] timeout), retrying a held lock (after `restic unlock`
 * removed stale ones) and transient backend failures as r->retry allows.
 * Returns 0 when restic ran to an exit (any exit code: res is filled and
 * owned by the caller); otherwise err is set: it could not be started,
 * timed out, or we were asked to stop. */
int rx_run(struct restic *r, const char *what, const struct strvec *argv, struct spawn_opts *o,
           rx_reset_fn reset, struct spawn_result *res, sc_err *err);
/* The same, and exit 0 required (res is freed on failure). */
int rx_run_ok(struct restic *r, const char *what, const struct strvec *argv, struct spawn_opts *o,
              rx_reset_fn reset, struct spawn_result *res, sc_err *err);
/* A failed call as one classified line (exit 6); restic's words at -v. */
int rx_fail_from(const char *what, const struct spawn_result *res, sc_err *err);
/* A command that prints one JSON array on stdout. */
int rx_run_json_array(struct restic *r, const char *what, const struct strvec *argv, json_t **out,
                      sc_err *err);
/* A line callback that shows restic's text at -v. */
void rx_debug_line(void *ctx, const char *line, size_t len);
/* One JSON value; numbers beyond int64 are read as doubles. */
json_t *rx_parse_json(const char *text, size_t len);
uint64_t rx_get_u64(json_t *obj, const char *key);
/* The host name snapshots are made with and filtered by. */
int rx_this_host(const struct restic *r, char *buf, size_t size, sc_err *err);
/* The repository for messages: never its credentials (owned). */
char *rx_repo_location(const struct restic *r);
/* Sleep, waking early when a stop is requested: 0, or -1 if stopped. */
int rx_sleep_ms(long ms);

/* ---- reading restic's JSON (restic.c, call.c, check.c) ----
 * Pure functions over restic's output, so the fuzz target
 * (tests/fuzz/fuzz_restic_json.c) reaches them without running restic. */

/* One text as a JSON array ("snapshots --json"); exit 6 when it is not. */
int rx_json_array(const char *what, const char *text, size_t len, json_t **out, sc_err *err);

/* What `backup --json` printed so far. */
struct rx_backup_ctx {
    struct restic_backup_result *out;
    bool have_summary;
};
/* One stdout line of `backup --json`: status (progress) or summary. */
void rx_backup_line(void *ctx, const char *line, size_t len);
/* The full id of out->snapshot_id (maybe 8 hex digits) among the snapshots
 * of list: exactly one must match. */
int rx_full_id(json_t *list, const char *set_id, struct restic_backup_result *out, sc_err *err);
/* One stdout line of `ls --json`: nodes appended to ctx (a JSON array). */
void rx_ls_line(void *ctx, const char *line, size_t len);
/* The snapshot whose id starts with prefix: NULL if none, *ambiguous when
 * several do. Borrowed from list. */
json_t *rx_match_id(json_t *list, const char *prefix, bool *ambiguous);
/* The newest snapshot of list (by "time"), or NULL; borrowed. */
json_t *rx_latest(json_t *list);
/* check's stderr says the repository is damaged. */
bool rx_check_damaged(const char *stderr_text);
/* The first line of a failed check that names a problem; owned, or NULL. */
char *rx_check_problem(const char *stderr_text);

#endif
