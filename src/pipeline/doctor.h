/* doctor: pre-flight checks that change nothing (design §5): secret files'
 * modes, restic and the repository, every source through its kind's doctor
 * op, the staging directory and free space. One line per check, OK / WARN /
 * FAIL with the reason and what to do. Calls src/restic/, src/source/ and
 * src/stage/set.h; used by the doctor command. */
#ifndef SC_PIPELINE_DOCTOR_H
#define SC_PIPELINE_DOCTOR_H

#include <jansson.h>
#include "ctx.h"

struct doctor_result {
    json_t *checks; /* [{check, status, message, exit_code?}] (owned) */
    int nok, nwarn, nfail;
    int first_code;       /* exit code of the first FAIL */
    char first_msg[1024]; /* its line, for the error */
};

/* Run every check; show (may be NULL) gets each line as it is found,
 * status "OK", "WARN" or "FAIL". */
void doctor_run(struct ctx *c, void (*show)(const char *status, const char *line),
                struct doctor_result *r);

#endif
