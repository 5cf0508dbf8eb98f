/* stagecoach: global options, the command table, and the one place where a
 * failure becomes an exit code, a line on stderr and the JSON report. */
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/log.h"
#include "core/report.h"
#include "core/spawn.h"
#include "source/source.h"

static const struct command *const commands[] = {
    &command_stage,  &command_ship,      &command_run,    &command_verify, &command_restore,
    &command_drill,  &command_snapshots, &command_check,  &command_forget, &command_status,
    &command_doctor, &command_config,    &command_keygen,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: stagecoach [-c FILE] [--json] [-v|-q] [--dry-run] COMMAND [ARGS]\n"
                 "       stagecoach COMMAND --help | --version | --help\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = commands[i];
        fprintf(out, "  %-18s %s\n", c->label ? c->label : c->name, c->summary);
    }
    fprintf(out, "\nglobal options:\n"
                 "  -c, --config FILE  the configuration (else $STAGECOACH_CONFIG, else\n"
                 "                     /etc/stagecoach/stagecoach.conf)\n"
                 "  --json             one JSON report on stdout (docs/reports.md)\n"
                 "  -v, -q             more, or fewer, messages on stderr\n"
                 "  --dry-run          say what would happen; touch nothing\n"
                 "\nexit codes: 0 ok, 1 failure, 2 usage, 3 config, 4 source, 5 staging, "
                 "6 restic, 7 verification, 8 locked, 130 interrupted\n"
                 "stagecoach COMMAND --help shows a command's options and an example; "
                 "man stagecoach has it all.\n");
}

/* stagecoach COMMAND --help: its usage, what it does, options, examples. */
static void command_usage(const struct command *c, FILE *out)
{
    fprintf(out, "usage: stagecoach %s\n\n%s\n", c->usage, c->help);
    if (c->options)
        fprintf(out, "\noptions:\n%s\n", c->options);
    fprintf(out,
            "\nglobal options (-c FILE, --json, -v, -q, --dry-run): stagecoach --help\n"
            "\nexample%s:\n",
            strchr(c->example, '\n') ? "s" : "");
    for (const char *line = c->example; *line;) {
        const char *end = strchr(line, '\n');
        int n = end ? (int)(end - line) : (int)strlen(line);
        fprintf(out, "  %.*s\n", n, line);
        line += n + (end != NULL);
    }
}

static void on_signal(int sig)
{
    int saved_errno = errno; /* nothing below should touch it; keep it so */
    if (sig == SIGHUP)
        sc_reload_requested = 1;
    else if (sig == SIGALRM)
        sc_stop_requested = STOP_TIMEOUT;
    else
        sc_stop_requested = STOP_SIGNAL;
    errno = saved_errno;
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Global options may stand anywhere before "--"; take them out of argv so
 * each command sees only its own. Returns -1 on a usage error. */
static int take_global_options(struct ctx *c, int *argc, char **argv, int *want)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= *argc)
                return -1;
            c->config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            c->config_path = a + 9;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            log_set_level(LOG_VERBOSE);
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            log_set_level(LOG_QUIET);
        } else if (strcmp(a, "--dry-run") == 0) {
            c->dry_run = true;
        } else if (strcmp(a, "--version") == 0) {
            *want = 'V';
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *want = 'h';
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* The moment the command started, for the report's envelope. */
static char report_started[32];
static struct timespec report_t0;

static void print_report(struct ctx *c, const char *command, int rc, const sc_err *err)
{
    json_t *r = c->report ? c->report : json_object();
    c->report = r;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double duration =
        (double)(t1.tv_sec - report_t0.tv_sec) + (double)(t1.tv_nsec - report_t0.tv_nsec) / 1e9;
    report_finish(r, command, rc, err, report_started, duration);
    report_print(r);
}

int main(int argc, char **argv)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    int want = 0;
    if (take_global_options(&c, &argc, argv, &want) != 0) {
        fprintf(stderr, "stagecoach: -c needs a file\n");
        return SC_EUSAGE;
    }
    if (want == 'V') {
        printf("stagecoach %s\n", SC_VERSION);
        return 0;
    }
    /* "stagecoach help [COMMAND]" is "stagecoach [COMMAND] --help". */
    if (argc >= 2 && strcmp(argv[1], "help") == 0) {
        want = 'h';
        argv++;
        argc--;
    }
    if (argc < 2) {
        usage(want == 'h' ? stdout : stderr);
        return want == 'h' ? 0 : SC_EUSAGE;
    }
    const struct command *cmd = find_command(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "stagecoach: unknown command '%s' (stagecoach --help lists them)\n",
                argv[1]);
        return SC_EUSAGE;
    }
    if (want == 'h') {
        command_usage(cmd, stdout);
        return 0;
    }
    const char *env_config = getenv("STAGECOACH_CONFIG");
    if (c.config_path == NULL && env_config != NULL && *env_config != '\0')
        c.config_path = env_config;
    if (c.config_path == NULL) {
        c.config_path = "/etc/stagecoach/stagecoach.conf";
        /* A Torrust container: the deployer's backup.conf or the POC's
         * variables stand in for the file. */
        if (access(c.config_path, F_OK) != 0 &&
            (config_deployer_file() != NULL || config_poc_env_present()))
            c.config_path = NULL;
    }
    /* Path names reach libarchive and JSON as UTF-8: without a UTF-8
     * locale, libarchive cannot store a non-ASCII name in a pax header. */
    if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
        setlocale(LC_CTYPE, "");
    if (sodium_init() < 0) {
        log_error("libsodium cannot initialise");
        return SC_EFAIL;
    }
    install_signal_handlers();
    clock_gettime(CLOCK_MONOTONIC, &report_t0);
    utc_timestamp(report_started, sizeof report_started);
    if (c.json)
        c.report = json_object();

    sc_err err = {0};
    int rc = 0;
    if (cmd->needs_config) {
        struct config_problems probs = {0};
        rc = config_load(&c.cfg, c.config_path, &source_kinds, &probs, &err);
        for (size_t i = 0; rc != 0 && i < probs.msgs.n; i++)
            log_error("%s", probs.msgs.v[i]);
        if (rc != 0 && probs.msgs.n > 0)
            log_error("the configuration has %zu problem%s", probs.msgs.n,
                      probs.msgs.n == 1 ? "" : "s");
        config_problems_free(&probs);
        c.config_loaded = rc == 0;
        if (rc != 0) {
            if (c.json)
                print_report(&c, cmd->name, rc, &err);
            config_free(&c.cfg);
            json_decref(c.report);
            return rc;
        }
    }
    /* From here on, messages also go to syslog when [run] syslog = yes. */
    if (c.config_loaded)
        log_syslog(c.cfg.run.syslog, c.cfg.run.syslog_facility);
    /* The configuration has taken what it needs from the environment. */
    env_wipe_secrets();
    c.command = cmd->name;
    rc = cmd->run(&c, argc - 1, argv + 1, &err);
    if (rc != 0 && err.code == 0)
        sc_fail(&err, rc, "%s failed", cmd->name);
    if (rc != 0 && err.code != 0 && !c.error_shown)
        log_error("%s", err.msg);
    if (c.json)
        print_report(&c, cmd->name, rc, &err);
    if (c.config_loaded || cmd->needs_config)
        config_free(&c.cfg);
    json_decref(c.report);
    log_syslog(false, NULL);
    return rc;
}
