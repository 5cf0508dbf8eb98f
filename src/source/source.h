/* One interface for every kind of source (design §4). A source writes its
 * files into the set being built through the set's sinks, and describes what
 * it did in its manifest entry (a JSON object). Adding a kind means one file
 * here and one line in the table in source.c. */
#ifndef SC_SOURCE_H
#define SC_SOURCE_H

#include <stdbool.h>
#include <jansson.h>
#include "../core/config.h"
#include "../core/err.h"

struct set;

struct source_ops {
    const char *kind;
    /* Keys accepted in a [KIND NAME] section; offsets into struct source_cfg. */
    const struct cfg_key *keys;
    /* Check required keys and value combinations after loading; append
     * problems with config_problem(). Return 0 when valid. */
    int (*validate)(const struct source_cfg *src, struct config_problems *probs, const char *file);
    /* Write the source into the set. entry is this source's manifest object,
     * already holding "name", "kind" and an empty "files" array; the source
     * adds "consistency", "warnings", counts. Returns 0 or an exit code. */
    int (*stage)(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err);
    /* Put this source's staged copy back (restore --apply). setdir holds the
     * verified plaintext set; entry is the source's manifest entry; into is
     * NULL for the configured target, else another one (a database name, a
     * path, a directory); force allows replacing a non-empty target. NULL
     * when the kind cannot restore yet. */
    int (*restore)(const struct source_cfg *src, const char *setdir, json_t *entry,
                   const char *into, bool force, sc_err *err);
    /* Remove a scratch target that restore made with into, e.g. the
     * drill's <db>_drill_<id> database. NULL for kinds whose targets are
     * files: the drill removes those with its scratch directory. */
    int (*discard)(const struct source_cfg *src, const char *into, sc_err *err);
};

/* NULL when the kind is unknown. */
const struct source_ops *source_find(const char *kind);

/* Append a problem message "FILE:LINE: [section] key: text". */
void config_problem(struct config_problems *probs, const char *file, int line, const char *section,
                    const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Add a warning string to a manifest entry's "warnings" array. */
void source_warn(json_t *entry, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

extern const struct source_ops source_sqlite;
extern const struct source_ops source_paths;
extern const struct source_ops source_mysql;

#endif
