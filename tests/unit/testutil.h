/* What the unit tests share: scratch directories, small files, staging one
 * source into a fresh set, and string assertions. Linked into every
 * tests/unit/test_*.c binary (Makefile); include it after <cmocka.h>. */
#ifndef SC_TESTUTIL_H
#define SC_TESTUTIL_H

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>
#include <jansson.h>
#include "../../src/core/config.h"
#include "../../src/core/err.h"

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("'%s' does not contain '%s'", (hay), (needle));                               \
    } while (0)
#define assert_lacks(hay, needle)                                                                  \
    do {                                                                                           \
        if (strstr((hay), (needle)) != NULL)                                                       \
            fail_msg("'%s' contains '%s'", (hay), (needle));                                       \
    } while (0)

/* A new private directory /tmp/sc-test-NAME-XXXXXX (owned), or NULL: for
 * group setups, which return -1 instead of asserting. */
char *tu_mkdtemp(const char *name);
/* The same, asserting that it worked. */
char *tu_tmpdir(const char *name);
/* Remove it (the whole tree) and free the name; NULL is fine. */
void tu_rmdir(char *dir);
/* Write text into dir/name with mode; returns the path (owned). Asserts. */
char *tu_write_file(const char *dir, const char *name, const char *text, mode_t mode);
/* Load text as a configuration file (with the source kinds of source.c);
 * returns config_load's result, the problems in probs. */
int tu_load_config(const char *text, struct config *cfg, struct config_problems *probs);
/* Does some problem contain needle? */
bool tu_has_problem(const struct config_problems *p, const char *needle);
/* Stage the one source c into a new set under staging and publish it. On
 * success *setdir is the published set and *entry its manifest entry (both
 * owned). Returns 0 or the exit code, as the pipeline would. */
int tu_stage_one(const char *staging, const struct source_cfg *c, char **setdir, json_t **entry,
                 sc_err *err);

#endif
