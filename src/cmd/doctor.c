/* doctor: pre-flight checks that change nothing (src/pipeline/doctor.h).
 * The exit code is 0 when nothing FAILs, else the code of the first failing
 * check's kind (design §6): permissions 3, restic and the repository 6,
 * sources 4, staging and disk space 5. */
#include <stdio.h>

#include "../core/report.h"
#include "../pipeline/doctor.h"
#include "cmd.h"

static void show_line(const char *status, const char *line)
{
    printf("%-4s %s\n", status, line);
}

static int cmd_doctor(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (opts_parse(argc, argv, NULL, err) != 0)
        return err->code;
    struct doctor_result r;
    doctor_run(c, c->json ? NULL : show_line, &r);
    if (!c->json)
        printf("doctor: %d OK, %d WARN, %d FAIL\n", r.nok, r.nwarn, r.nfail);
    report_set(c->report, "checks", r.checks);
    report_set(c->report, "summary",
               json_pack("{s:i, s:i, s:i}", "ok", r.nok, "warn", r.nwarn, "fail", r.nfail));
    if (r.nfail == 0)
        return 0;
    return sc_fail(err, r.first_code ? r.first_code : SC_EFAIL,
                   "doctor: %d check%s failed; first: %s", r.nfail, r.nfail == 1 ? "" : "s",
                   r.first_msg);
}

const struct command command_doctor = {
    .name = "doctor",
    .run = cmd_doctor,
    .usage = "doctor",
    .summary = "pre-flight checks that change nothing: restic, repository, sources, disk",
    .help = "Checks, changing nothing: the modes of secret files, restic and its version,\n"
            "the repository (reachable, password accepted), every source (opens, reads,\n"
            "privileges), the staging directory and free space. One line per check, OK,\n"
            "WARN or FAIL with what to do; the exit code is the first failure's kind.",
    .options = NULL,
    .example = "stagecoach doctor\n"
               "stagecoach --json doctor",
    .needs_config = true,
};
