/* Environments for children (restic, hooks): ours, minus every variable that
 * may carry a secret or that we set ourselves. */
#ifndef SC_ENV_H
#define SC_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include "xalloc.h"

/* Our environment without database/restic passwords and without
 * STAGECOACH_* settings (overrides may hold a repository URL with
 * credentials). */
void env_inherit_scrubbed(struct strvec *env);
/* Set NAME=value, replacing an existing NAME. */
void env_set(struct strvec *env, const char *name, const char *value);
void env_unset(struct strvec *env, const char *name, size_t name_len);
/* Is this (NAME=value) entry or name one that never reaches a child? */
bool env_is_secret_name(const char *name, size_t name_len);

/* Clear the values of inherited password variables (MYSQL_PASSWORD,
 * MYSQL_PWD, RESTIC_PASSWORD, ...) in our own environment, including the
 * bytes /proc/PID/environ shows, and unset them. Call after the
 * configuration has taken what it needs. */
void env_wipe_secrets(void);

#endif
