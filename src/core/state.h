/* STAGING/state.json: what happened in earlier runs (last run, shipped
 * sets and their snapshots). Written atomically. */
#ifndef SC_STATE_H
#define SC_STATE_H

#include <stddef.h>
#include <jansson.h>
#include "err.h"

/* Load (an empty object when the file does not exist yet). */
int state_load(const char *staging, json_t **state, sc_err *err);
int state_save(const char *staging, json_t *state, sc_err *err);
/* The snapshot id a set was shipped as, or NULL. */
const char *state_set_snapshot(json_t *state, const char *set_id);
void state_set_shipped(json_t *state, const char *set_id, const char *snapshot_id);

/* The object under key in state, created when missing (borrowed). */
json_t *state_section(json_t *state, const char *key);
/* "repository": {snapshots: n, counted: now}, for status and metrics. */
void state_note_snapshots(json_t *state, size_t n);

long long parse_utc(const char *s); /* "2026-11-27T07:44:35Z" -> epoch s, or -1 */
void format_utc(long long t, char *buf, size_t n);

#endif
