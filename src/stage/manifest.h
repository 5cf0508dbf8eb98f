/* Reading a published set back: MANIFEST.json and B2SUMS, and checking the
 * files against them. Parsers take explicit lengths (fuzzed). */
#ifndef SC_MANIFEST_H
#define SC_MANIFEST_H

#include <stddef.h>
#include <jansson.h>
#include "../core/err.h"

/* Parse MANIFEST.json text: a stagecoach-set/1 object whose "files" are
 * {path, bytes, blake2b}. Exit 7 describing the first problem. */
int manifest_parse(const char *data, size_t len, json_t **manifest, sc_err *err);
/* Parse B2SUMS text ("<128 hex>  <path>" lines) into {path: hex}. Exit 7. */
int b2sums_parse(const char *data, size_t len, json_t **map, sc_err *err);
/* Read and parse both files of the set in dir. */
int manifest_read(const char *dir, json_t **manifest, json_t **b2map, sc_err *err);
/* A relative path that stays inside the set ("a/b", no "..", no leading "/"). */
int manifest_path_ok(const char *path);

#endif
