/* Private to the [paths NAME] source (src/source/paths/): configuration
 * files and directories into a pax archive, and back.
 *
 *   paths.c     keys, validation, which paths a source names, the ops table
 *   archive.c   the archive: libarchive through the set's sink (stage)
 *   extract.c   restore --apply: a guarded two-pass extraction
 *   pathlist.c  the Torrust POC's paths file (one path a line)
 *   doctor.c    doctor's pre-flight check of the paths
 * Calls src/core/ and src/stage/; called only through source_paths
 * (src/source/source.h), and pathlist by the config loader's POC support. */
#ifndef SC_SOURCE_PATHS_PATHS_H
#define SC_SOURCE_PATHS_PATHS_H

#include <stdbool.h>
#include <jansson.h>
#include "../../core/config.h"
#include "../../core/err.h"
#include "../../core/xalloc.h"

struct set;
struct probe;
struct archive;

/* Every path the source names (path = and from_file), canonical. */
int pa_collect_paths(const struct source_cfg *cfg, struct strvec *out, sc_err *err);
/* Whether paths[i] lies inside an earlier entry's tree (archived once). */
bool pa_already_covered(const struct strvec *paths, size_t i);
/* libarchive's message for a, never NULL. */
const char *pa_reason(struct archive *a);

void paths_doctor(const struct source_cfg *s, struct probe *p);
int paths_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err);
int paths_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
                  bool force, sc_err *err);

#endif
