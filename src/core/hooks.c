#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "spawn.h"
#include "words.h"

static const char *const names[HOOK_COUNT] = {
    "before_stage", "after_stage", "before_ship", "after_ship", "on_success", "on_failure",
};

/* Without a policy: a hook that prepares (before_*) or restores the service
 * (after_stage) must work, or the run fails; notifications only warn. */
static const bool fail_by_default[HOOK_COUNT] = {true, true, true, false, false, false};

const char *hook_name(enum hook_point p)
{
    return names[p];
}

bool hook_policy_fails(const struct config *cfg, enum hook_point p)
{
    const char *policy = cfg->hooks.on_error[p];
    if (policy == NULL)
        return fail_by_default[p];
    return strcmp(policy, "fail") == 0;
}

static void hook_env(struct strvec *env, const struct hook_info *info)
{
    char code[16];
    snprintf(code, sizeof code, "%d", info->exit_code);
    env_inherit_scrubbed(env);
    env_set(env, "STAGECOACH_COMMAND", info->command ? info->command : "");
    env_set(env, "STAGECOACH_SET", info->set ? info->set : "");
    env_set(env, "STAGECOACH_SNAPSHOT", info->snapshot ? info->snapshot : "");
    env_set(env, "STAGECOACH_STATUS", info->status ? info->status : "running");
    env_set(env, "STAGECOACH_EXIT_CODE", code);
    env_set(env, "STAGECOACH_ERROR", info->error ? info->error : "");
}

/* Run argv; returns 0, or a reason in why (static text plus exit code). */
static int run_argv(const struct config *cfg, enum hook_point p, struct strvec *argv,
                    struct strvec *env, char *why, size_t why_len)
{
    struct spawn_opts o = {
        .argv = argv->v,
        .env = env->v,
        .timeout_s = cfg->hooks.timeout_s,
        .grace_s = 5,
        /* stdout stays free for the JSON report: a hook's output goes to stderr */
        .stdout_fd = STDERR_FILENO,
        .stderr_passthrough = true,
        /* Restarting the service and reporting a failure must happen even
         * when the run is being stopped. */
        .ignore_stop = p == HOOK_AFTER_STAGE || p == HOOK_ON_FAILURE,
    };
    struct spawn_result r;
    sc_err e = {0};
    if (spawn_run(&o, &r, SC_EFAIL, &e) != 0) {
        snprintf(why, why_len, "%s", e.msg);
        return -1;
    }
    if (r.timed_out)
        snprintf(why, why_len, "timed out after %ld s", cfg->hooks.timeout_s);
    else if (r.interrupted)
        snprintf(why, why_len, "interrupted");
    else if (r.exit_code == 127)
        snprintf(why, why_len, "cannot run %s", argv->v[0]);
    else if (r.exit_code != 0)
        snprintf(why, why_len, "exit %d", r.exit_code);
    int rc = r.interrupted ? -2 : (r.timed_out || r.exit_code != 0) ? -1 : 0;
    spawn_result_free(&r);
    return rc;
}

int hook_run(const struct config *cfg, enum hook_point p, const struct hook_info *info, sc_err *err)
{
    const char *cmd = cfg->hooks.cmd[p];
    if (cmd == NULL)
        return 0;
    struct strvec argv = {0}, env = {0};
    const char *bad = words_split(cmd, &argv);
    char why[sizeof(((sc_err *)0)->msg)] = "";
    int rc = 0;
    if (bad != NULL || argv.n == 0) {
        snprintf(why, sizeof why, "%s", bad ? bad : "names no program");
        rc = -1;
    } else {
        log_info("hook %s: %s", names[p], argv.v[0]);
        hook_env(&env, info);
        rc = run_argv(cfg, p, &argv, &env, why, sizeof why);
    }
    if (rc == -2 || (rc != 0 && sc_stop_requested)) {
        /* A stop request ends the run whatever the hook's policy. */
        rc = sc_fail(err, SC_EINTR, "interrupted during hook %s", names[p]);
    } else if (rc != 0) {
        if (hook_policy_fails(cfg, p))
            rc = sc_fail(err, SC_EFAIL, "hook %s failed: %s", names[p], why);
        else {
            log_warn("hook %s failed: %s (policy: warn)", names[p], why);
            rc = 0;
        }
    }
    strvec_free(&argv);
    strvec_free(&env);
    return rc;
}
