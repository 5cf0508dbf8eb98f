#include "env.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Inherited variables that must not reach children: a stray RESTIC_REPOSITORY
 * next to our RESTIC_REPOSITORY_FILE is fatal in restic, a stray password
 * could select another key, and database passwords have no business there. */
static const char *const secret_vars[] = {
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "MYSQL_PWD",
    "MYSQL_PASSWORD",
    "DB_PASSWORD", /* the deployer's name for it */
    "PGPASSWORD",
    NULL,
};

bool env_is_secret_name(const char *name, size_t name_len)
{
    if (name_len >= 11 && strncmp(name, "STAGECOACH_", 11) == 0)
        return true;
    for (size_t i = 0; secret_vars[i]; i++)
        if (strlen(secret_vars[i]) == name_len && strncmp(secret_vars[i], name, name_len) == 0)
            return true;
    return false;
}

void env_unset(struct strvec *env, const char *name, size_t name_len)
{
    size_t out = 0;
    for (size_t i = 0; i < env->n; i++) {
        if (strncmp(env->v[i], name, name_len) == 0 && env->v[i][name_len] == '=')
            free(env->v[i]);
        else
            env->v[out++] = env->v[i];
    }
    env->n = out;
    if (env->v)
        env->v[out] = NULL;
}

void env_set(struct strvec *env, const char *name, const char *value)
{
    env_unset(env, name, strlen(name));
    strvec_pushf(env, "%s=%s", name, value);
}

void env_inherit_scrubbed(struct strvec *env)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || env_is_secret_name(*e, (size_t)(eq - *e)))
            continue;
        strvec_push(env, *e);
    }
}

/* Variables whose value is itself a password (others, like a repository
 * location, are only kept from children). */
static bool is_password_var(const char *name, size_t len)
{
    static const char *const pw[] = {"MYSQL_PASSWORD", "MYSQL_PWD",  "RESTIC_PASSWORD",
                                     "DB_PASSWORD",    "PGPASSWORD", NULL};
    for (size_t i = 0; pw[i]; i++)
        if (strlen(pw[i]) == len && strncmp(pw[i], name, len) == 0)
            return true;
    return false;
}

void env_wipe_secrets(void)
{
    /* Collect names first: unsetenv reshuffles environ. */
    struct strvec names = {0};
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || !is_password_var(*e, (size_t)(eq - *e)))
            continue;
        /* The original bytes are what /proc/PID/environ shows: clear them. */
        memset((char *)eq + 1, 0, strlen(eq + 1));
        strvec_push(&names, "");
        free(names.v[names.n - 1]);
        names.v[names.n - 1] = xstrndup(*e, (size_t)(eq - *e));
    }
    for (size_t i = 0; i < names.n; i++)
        unsetenv(names.v[i]);
    strvec_free(&names);
}
