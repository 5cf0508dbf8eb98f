/* The Prometheus textfile ([run] metrics_file), for node_exporter's
 * textfile collector. Everything in it is derived from state.json, so a
 * run, a check and a forget all write the same consistent picture; names
 * and meanings are in docs/reports.md. */
#ifndef SC_METRICS_H
#define SC_METRICS_H

#include <stddef.h>
#include <jansson.h>
#include "err.h"

/* What state.json does not hold. */
struct metrics_extra {
    const char *host;         /* [restic] host, or the machine's name */
    long long next_check_due; /* epoch seconds; 0: now; -1: never */
    size_t local_sets;        /* published sets in STAGING/sets */
    size_t unshipped_sets;    /* of those, not shipped yet */
};

/* The textfile's content (owned), in the exposition format. */
char *metrics_render(json_t *state, const struct metrics_extra *x);
/* Render and write it atomically (temp file, fsync, rename), mode 0644 so
 * the exporter can read it. */
int metrics_write(const char *path, json_t *state, const struct metrics_extra *x, sc_err *err);

#endif
