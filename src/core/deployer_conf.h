/* The Torrust deployer's backup.conf (its backup.sh sources it): KEY=value
 * lines in bash syntax, read here without any shell, then translated into
 * stagecoach settings. Pure: bytes in, lists out; calls only xalloc.
 * Used by core/config.c (config_load with no stagecoach file), the unit test
 * and the fuzz target. */
#ifndef SC_DEPLOYER_CONF_H
#define SC_DEPLOYER_CONF_H

#include <stdbool.h>
#include <stddef.h>

/* The path backup.sh reads when $CONFIG_FILE is unset. */
#define DCONF_DEFAULT_PATH "/etc/backup/backup.conf"
/* The staging directory: the deployer's output mount. */
#define DCONF_STAGING_DIR "/backups"
/* A backup.conf is a dozen lines; a larger file is not one. */
#define DCONF_MAX_FILE ((size_t)64 * 1024)
#define DCONF_MAX_VALUE 4096
#define DCONF_MAX_NAME 128

struct dconf_var {
    char *name;
    char *value;
    int line;
};

/* A problem or a warning: the line it is about (0: the file) and a message
 * that names the variable but never shows a value of DB_PASSWORD. */
struct dconf_note {
    int line;
    char *msg;
};

/* One stagecoach setting: [section] key = value, from variable var at line
 * (0: a default). in_memory: the source's password (not a key; kept in
 * memory only). */
struct dconf_setting {
    const char *section;
    const char *key;
    const char *var;
    char *value;
    int line;
    bool in_memory;
};

struct dconf {
    struct dconf_var *vars;
    size_t nvars;
    struct dconf_setting *settings;
    size_t nsettings;
    struct dconf_note *problems;
    size_t nproblems;
    struct dconf_note *warnings;
    size_t nwarnings;
};

/* Read the KEY=value lines of data (explicit length) into d->vars. Accepted,
 * as bash reads them: blank lines; '#' comments (a whole line, or after a
 * blank following the value); an `export ` prefix; values unquoted, in
 * '...' (literal) or "..." (\\ \" \$ \` escaped), or pieces of each glued
 * together; a backslash outside quotes; CRLF line ends; a UTF-8 BOM.
 * Refused (a problem naming the line): anything a shell would expand or run
 * ($, `, a leading ~, ; & | < > ( ), an unquoted blank inside the value), blanks
 * around '=', a quote that does not end on its line, a NUL byte, a value
 * longer than DCONF_MAX_VALUE. A variable set twice: the last one counts
 * (a warning). Returns the number of problems. */
size_t dconf_parse(const char *data, size_t len, struct dconf *d);

/* Turn d->vars into d->settings (deployer semantics: DB_TYPE mysql, sqlite
 * or none; the variables each type requires; BACKUP_RETENTION_DAYS default
 * 7). Unknown variables are warnings. Returns the number of problems. */
size_t dconf_translate(struct dconf *d);

/* The value of a variable the file set (empty counts as unset), or NULL. */
const char *dconf_get(const struct dconf *d, const char *name);

/* Free everything; values are wiped first (DB_PASSWORD is among them). */
void dconf_free(struct dconf *d);

#endif
