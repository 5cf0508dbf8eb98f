#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fs.h"

int state_load(const char *staging, json_t **state, sc_err *err)
{
    *state = NULL;
    char *path = path_join(staging, "state.json");
    if (!fs_exists(path)) {
        free(path);
        *state = json_pack("{s:i, s:{}}", "version", 1, "sets");
        return 0;
    }
    json_error_t je;
    json_t *s = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    int rc = 0;
    if (s == NULL || !json_is_object(s))
        rc = sc_fail(err, SC_ESTAGING, "%s: corrupt state file (line %d: %s); move it aside", path,
                     je.line, je.text);
    free(path);
    if (rc != 0) {
        json_decref(s);
        return rc;
    }
    if (!json_is_object(json_object_get(s, "sets")))
        json_object_set_new(s, "sets", json_object());
    *state = s;
    return 0;
}

int state_save(const char *staging, json_t *state, sc_err *err)
{
    char *text = json_dumps(state, JSON_INDENT(2));
    if (text == NULL)
        return sc_fail(err, SC_ESTAGING, "cannot serialise the state");
    char *path = path_join(staging, "state.json");
    int rc = fs_write_atomic(path, text, strlen(text), 0600, err);
    free(path);
    free(text);
    return rc;
}

const char *state_set_snapshot(json_t *state, const char *set_id)
{
    json_t *set = json_object_get(json_object_get(state, "sets"), set_id);
    return json_string_value(json_object_get(set, "snapshot"));
}

void state_set_shipped(json_t *state, const char *set_id, const char *snapshot_id)
{
    char when[32];
    utc_timestamp(when, sizeof when);
    json_object_set_new(json_object_get(state, "sets"), set_id,
                        json_pack("{s:s, s:s}", "snapshot", snapshot_id, "shipped", when));
}

/* state.json times: "2026-11-27T07:44:35Z" (UTC). */
long long parse_utc(const char *s)
{
    struct tm tm = {0};
    char z;
    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        z != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

void format_utc(long long t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "?");
}

/* The object under key in state (created when missing; borrowed). */
json_t *state_section(json_t *state, const char *key)
{
    json_t *o = json_object_get(state, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(state, key, o);
    }
    return o;
}

/* Remember what the repository holds now, for status and metrics. */
void state_note_snapshots(json_t *state, size_t n)
{
    char now[32];
    utc_timestamp(now, sizeof now);
    json_object_set_new(state, "repository",
                        json_pack("{s:I, s:s}", "snapshots", (json_int_t)n, "counted", now));
}
