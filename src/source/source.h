/* One interface for every kind of source (design §4). A source writes its
 * files into the set being built through the set's sinks, describes what it
 * did in its manifest entry (a JSON object), puts its copy back on restore,
 * and checks beforehand that it can be staged (doctor).
 *
 * Each kind lives in its own folder, src/source/KIND/, and is one line in
 * the table in source.c. Sources call src/core/ and src/stage/; they are
 * called by src/pipeline/ (stage, restore, drill, doctor) through these ops
 * only, never by name. */
#ifndef SC_SOURCE_H
#define SC_SOURCE_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include "../core/config.h"
#include "../core/err.h"

struct set;

/* Findings of a pre-flight check (doctor), one line each, "NAME: message":
 * what precedes the first ": " names the check in the JSON report. The
 * doctor provides report; sources call probe_report and probe_secret. */
enum probe_status { PROBE_OK, PROBE_WARN, PROBE_FAIL };
struct probe {
    void (*report)(struct probe *p, enum probe_status st, int code, const char *line);
    void *ctx;
    const char *staging; /* [staging] dir: where a set will be written (free space) */
};
void probe_report(struct probe *p, enum probe_status st, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A secret file the source reads must be private (0600, owned by us):
 * FAIL with exit 3 otherwise. Nothing when path is NULL. */
void probe_secret(struct probe *p, const char *path, const char *what);

/* Where a drill puts a kind's scratch restore: a file or a directory in its
 * scratch directory, or a database beside the live one (<db>_drill_<id>,
 * dropped again through discard). */
enum source_target { TARGET_FILE, TARGET_DIR, TARGET_DATABASE };

struct source_ops {
    /* Section name, keys and validation: what the config loader needs. */
    struct cfg_kind cfg;
    enum source_target drill_target;
    /* The longest database name the kind allows (TARGET_DATABASE). */
    size_t db_name_max;
    /* --dry-run: what staging this source would do, one line or more on
     * out, each starting with two spaces. NULL: a generic line. */
    void (*plan)(const struct source_cfg *src, FILE *out);
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
    /* A source whose set holds its data in another shape than the one its
     * restore puts back (sqlite layout = pages: a page map and packs):
     * rebuild it from dir, a verified plaintext set, into the directory
     * into (dir itself, or scratch space beside a set that must not be
     * written), and check it against entry. Called by restore, drill and
     * verify for every source of the set, by kind; 0 when there is nothing
     * to rebuild. NULL: the kind never needs it. */
    int (*unpack)(const char *dir, const char *into, json_t *entry, sc_err *err);
    /* After local sets were pruned: drop what the kind keeps outside the
     * sets for this source (sqlite's page store) that no kept set needs.
     * report receives what it did. NULL: nothing kept outside the sets. */
    int (*upkeep)(const struct source_cfg *src, const char *staging, json_t *report, sc_err *err);
    /* Remove a scratch target that restore made with into, e.g. the
     * drill's <db>_drill_<id> database. NULL for kinds whose targets are
     * files: the drill removes those with its scratch directory. */
    int (*discard)(const struct source_cfg *src, const char *into, sc_err *err);
    /* Pre-flight: can this source be staged now? Changes nothing (no file
     * created, no lock taken); reports through probe. NULL: no check. */
    void (*doctor)(const struct source_cfg *src, struct probe *p);
    /* The modes of the secret files it reads (probe_secret each); doctor
     * lists them with the others before any check connects. NULL: none. */
    void (*secrets)(const struct source_cfg *src, struct probe *p);
};

/* NULL when the kind is unknown. */
const struct source_ops *source_find(const char *kind);
/* The ops of a loaded source (its kind is known once the config loaded). */
const struct source_ops *source_of(const struct source_cfg *src);
/* The table of kinds, as the config loader takes it. */
extern const struct cfg_kinds source_kinds;

/* Add a warning string to a manifest entry's "warnings" array. */
void source_warn(json_t *entry, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

extern const struct source_ops source_sqlite;
extern const struct source_ops source_paths;
extern const struct source_ops source_mysql;
extern const struct source_ops source_postgresql;

#endif
