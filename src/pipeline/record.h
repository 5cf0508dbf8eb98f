/* What a run leaves behind for people and monitoring: state.json's
 * last_run and its numbers, the repository's snapshot count, and the
 * Prometheus textfile ([run] metrics_file), made from state.json only so
 * every command writes the same picture. Calls src/core/metrics.h,
 * src/restic/ and check.h; used by ship.h and run.h. */
#ifndef SC_PIPELINE_RECORD_H
#define SC_PIPELINE_RECORD_H

#include "ctx.h"

/* state.json last_run / last_success. Needs the lock. */
void record_run(struct ctx *c, const char *command, const char *started, const char *set_id, int rc,
                const sc_err *err);
/* The run's numbers (duration, bytes staged and added, per source) into
 * state.json's last_run, after record_run, and into the report. */
void record_run_stats(struct ctx *c, const char *set_id, double duration_s);
/* Count this host's snapshots into state.json (when retention did not). */
void record_snapshot_count(struct ctx *c);
/* Rewrite [run] metrics_file from state.json, when configured. A failure
 * is a warning: monitoring notices a stale file by its timestamps. */
void record_metrics(struct ctx *c);

#endif
