/* The JSON report of --json (docs/reports.md): one object per command on
 * stdout. Commands add their own keys while they run; report_finish adds
 * the envelope every report has, whatever the exit path. */
#ifndef SC_REPORT_H
#define SC_REPORT_H

#include <jansson.h>
#include "err.h"

#define REPORT_SCHEMA "stagecoach-report/1"

/* Set key to value (a new reference, stolen) when r is not NULL; without a
 * report (no --json) the value is dropped. */
void report_set(json_t *r, const char *key, json_t *value);
/* The envelope: schema, tool, command, status ("success" exactly when rc
 * is 0), exit_code, error_kind, error (null on success), started and
 * duration_s. */
void report_finish(json_t *r, const char *command, int rc, const sc_err *err, const char *started,
                   double duration_s);
/* Print r on stdout, indented, followed by a newline. */
void report_print(json_t *r);

#endif
