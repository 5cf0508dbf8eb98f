/* A staging set (design §7): built in STAGING/.tmp-<id>, published by rename
 * to STAGING/sets/<id>. Every file in it goes through a sink (hashed as it is
 * written) or is hashed once after an external writer (SQLite) closed it. */
#ifndef SC_SET_H
#define SC_SET_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <jansson.h>
#include "../core/err.h"
#include "crypto.h"

#define SET_ID_MAX 40
#define MANIFEST_NAME "MANIFEST.json"
#define B2SUMS_NAME "B2SUMS"
#define MANIFEST_FORMAT "stagecoach-set/1"

struct set {
    char *staging; /* STAGING */
    char id[SET_ID_MAX];
    char *tmpdir;   /* STAGING/.tmp-<id> while building */
    char *finaldir; /* STAGING/sets/<id> */
    json_t *manifest;
    json_t *cur_entry;      /* the source being staged, receives its files */
    struct crypto_key *key; /* encrypt every file to this key; NULL: plaintext */
    bool published;
};

/* Make the staging directory (0700) and its sets/ dir, remove stale .tmp-*,
 * .verify-* and .drill-* directories (a crashed run's leftovers). */
int staging_prepare(const char *staging, sc_err *err);

/* A private scratch directory (0700) parent/<prefix>XXXXXX, held by an
 * flock on *fd for as long as it is open: staging_prepare removes a
 * .verify-* or .drill-* one only when no process holds it (a crash left it). */
int scratch_create(const char *parent, const char *prefix, char **dir, int *fd, sc_err *err);
/* Remove it, then release the hold. */
void scratch_remove(const char *dir, int fd);

/* Start a new set with a fresh UTC id. */
int set_create(struct set *s, const char *staging, sc_err *err);
/* Encrypt every file of the set from now on (the set owns key, NULL: no
 * encryption). Recorded in the manifest. */
void set_use_key(struct set *s, struct crypto_key *key);
const struct crypto_key *set_key(const struct set *s);
/* Begin a source's manifest entry; files added until the next call belong to it. */
json_t *set_begin_source(struct set *s, const char *name, const char *kind);
/* Absolute path (owned) of relpath inside the set being built; creates parent dirs (0700). */
char *set_file_path(struct set *s, const char *relpath, sc_err *err);
/* Record a file written through a sink. */
void set_record_file(struct set *s, const char *relpath, uint64_t bytes, const char *b2hex);
/* Record an encrypted file: as stored, and its plaintext. */
void set_record_sealed_file(struct set *s, const char *relpath, uint64_t bytes, const char *b2hex,
                            const char *plain_relpath, uint64_t plain_bytes,
                            const char *plain_b2hex);
/* Write MANIFEST.json and B2SUMS, fsync everything, rename into sets/. */
int set_publish(struct set *s, sc_err *err);
/* Remove the unpublished tmp dir (after a failure) and free memory. */
void set_discard(struct set *s);
void set_free(struct set *s);

/* IDs of published sets, oldest first. */
int set_list(const char *staging, char ***ids, size_t *n, sc_err *err);
void set_list_free(char **ids, size_t n);
/* Resolve "latest" or an ID into the set's directory (owned). Exit 1 when absent. */
int set_resolve(const char *staging, const char *which, char **dir, char **id, sc_err *err);

#endif
