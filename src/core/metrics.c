/* The Prometheus textfile: one gauge per fact, read from state.json.
 *
 * "A failed run never reports success anywhere": the success gauge comes
 * from last_run.status, which record_run writes for every exit path of a
 * run that got the lock; last_success only moves on a successful run. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "state.h"
#include "xalloc.h"

/* A growing text buffer. */
struct out {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (o->len + (size_t)n + 1 > o->cap) {
        o->cap = (o->len + (size_t)n + 1) * 2;
        o->p = xrealloc(o->p, o->cap);
    }
    va_start(ap, fmt);
    vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

static void header(struct out *o, const char *name, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
    header(o, name, help);
    put(o, "%s %.15g\n", name, v);
}

/* A label value with \, " and newline escaped (exposition format). */
static char *label_escape(const char *s)
{
    char *out = xmalloc(2 * strlen(s) + 1);
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            out[n++] = '\\';
            out[n++] = *s;
        } else if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return out;
}

/* A state.json time as epoch seconds; -1 when absent or malformed. */
static long long epoch_of(json_t *v)
{
    return parse_utc(json_string_value(v));
}

static bool is_success(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "status"));
    return s && strcmp(s, "success") == 0;
}

static void run_metrics(struct out *o, json_t *state)
{
    json_t *last = json_object_get(state, "last_run");
    long long ok = epoch_of(json_object_get(state, "last_success"));
    gauge(o, "stagecoach_last_success_timestamp_seconds",
          "When the last successful run finished (0: never).", ok > 0 ? (double)ok : 0);
    if (!json_is_object(last))
        return;
    gauge(o, "stagecoach_last_run_success", "1 if the last run succeeded, 0 if it failed.",
          is_success(last) ? 1 : 0);
    long long fin = epoch_of(json_object_get(last, "finished"));
    if (fin > 0)
        gauge(o, "stagecoach_last_run_timestamp_seconds", "When the last run finished.",
              (double)fin);
    gauge(o, "stagecoach_last_run_exit_code", "Exit code of the last run (docs: exit codes).",
          (double)json_integer_value(json_object_get(last, "exit_code")));
    json_t *st = json_object_get(last, "stats");
    if (!json_is_object(st))
        return;
    gauge(o, "stagecoach_last_run_duration_seconds", "How long the last run took.",
          json_number_value(json_object_get(st, "duration_s")));
    gauge(o, "stagecoach_last_run_staged_bytes", "Bytes in the set the last run staged.",
          json_number_value(json_object_get(st, "staged_bytes")));
    gauge(o, "stagecoach_last_run_added_bytes",
          "Bytes restic added to the repository in the last run.",
          json_number_value(json_object_get(st, "added_bytes")));
    gauge(o, "stagecoach_last_run_shipped_sets", "Sets the last run shipped and verified.",
          json_number_value(json_object_get(st, "shipped_sets")));
}

/* Per source of the last run's set: bytes and files staged, rows (SQLite,
 * MySQL) where the source counts them. */
static void source_metrics(struct out *o, json_t *state)
{
    json_t *sources =
        json_object_get(json_object_get(json_object_get(state, "last_run"), "stats"), "sources");
    if (json_array_size(sources) == 0)
        return;
    static const struct {
        const char *key, *name, *help;
    } m[] = {
        {"bytes", "stagecoach_source_staged_bytes", "Bytes a source staged in the last run."},
        {"files", "stagecoach_source_files", "Files a source staged in the last run."},
        {"rows", "stagecoach_source_rows", "Rows a database source copied in the last run."},
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        bool shown = false;
        size_t i;
        json_t *s;
        json_array_foreach(sources, i, s)
        {
            json_t *v = json_object_get(s, m[k].key);
            const char *name = json_string_value(json_object_get(s, "name"));
            if (!json_is_number(v) || name == NULL)
                continue;
            if (!shown)
                header(o, m[k].name, m[k].help);
            shown = true;
            char *label = label_escape(name);
            put(o, "%s{source=\"%s\"} %.15g\n", m[k].name, label, json_number_value(v));
            free(label);
        }
    }
}

static void check_metrics(struct out *o, json_t *state, const struct metrics_extra *x)
{
    json_t *cs = json_object_get(state, "check");
    json_t *last = json_object_get(cs, "last");
    if (json_is_object(last)) {
        gauge(o, "stagecoach_last_check_success",
              "1 if the last restic check passed, 0 if it failed.", is_success(last) ? 1 : 0);
        long long fin = epoch_of(json_object_get(last, "finished"));
        if (fin > 0)
            gauge(o, "stagecoach_last_check_timestamp_seconds", "When the last check finished.",
                  (double)fin);
    }
    long long ok = epoch_of(json_object_get(cs, "last_success"));
    gauge(o, "stagecoach_last_check_success_timestamp_seconds",
          "When the last passing check finished (0: never).", ok > 0 ? (double)ok : 0);
    if (x->next_check_due >= 0)
        gauge(o, "stagecoach_next_check_timestamp_seconds",
              "When the next check is due (0: at the next run).", (double)x->next_check_due);
}

static void repository_metrics(struct out *o, json_t *state, const struct metrics_extra *x)
{
    json_t *n = json_object_get(json_object_get(state, "repository"), "snapshots");
    if (json_is_integer(n))
        gauge(o, "stagecoach_snapshots",
              "Snapshots of this host under retention, when last counted.",
              (double)json_integer_value(n));
    json_t *ret = json_object_get(json_object_get(state, "retention"), "last");
    if (json_is_object(ret))
        gauge(o, "stagecoach_last_retention_success",
              "1 if the last retention (forget, prune) succeeded, 0 if it failed.",
              is_success(ret) ? 1 : 0);
    gauge(o, "stagecoach_local_sets", "Staging sets on local disk.", (double)x->local_sets);
    gauge(o, "stagecoach_unshipped_sets", "Local sets not shipped yet.", (double)x->unshipped_sets);
}

char *metrics_render(json_t *state, const struct metrics_extra *x)
{
    struct out o = {0};
    put(&o, "# stagecoach " SC_VERSION " metrics; see docs/reports.md\n");
    header(&o, "stagecoach_info", "Constant 1, labelled with the version and host.");
    char *host = label_escape(x->host ? x->host : "");
    put(&o, "stagecoach_info{version=\"%s\",host=\"%s\"} 1\n", SC_VERSION, host);
    free(host);
    run_metrics(&o, state);
    source_metrics(&o, state);
    check_metrics(&o, state, x);
    repository_metrics(&o, state, x);
    return o.p;
}

int metrics_write(const char *path, json_t *state, const struct metrics_extra *x, sc_err *err)
{
    char *text = metrics_render(state, x);
    int rc = fs_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}
