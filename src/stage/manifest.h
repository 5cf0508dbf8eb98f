/* Reading a published set back: MANIFEST.json and B2SUMS, and checking the
 * files against them. Parsers take explicit lengths (fuzzed). */
#ifndef SC_MANIFEST_H
#define SC_MANIFEST_H

#include <stdbool.h>
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

/* The manifest says the set is encrypted ("encrypted": true). */
bool manifest_encrypted(json_t *manifest);
/* A file entry's plaintext {path, bytes, blake2b}: its "plaintext" object
 * when encrypted, else the entry itself. */
json_t *manifest_plaintext(json_t *file);

struct crypto_key;
/* Decrypt every encrypted file of the set in dir with key and compare the
 * plaintext with the manifest; nothing is written. Exit 7 naming the file
 * (every damaged file is logged), 1 for a key that is not the set's. */
int set_verify_plaintext(const char *dir, const struct crypto_key *key, sc_err *err);
/* Verify the set in dir, then write its plaintext into the existing
 * directory to: each file at its plaintext path (0600; checked against the
 * manifest before it gets its final name), MANIFEST.json as it was, and a
 * B2SUMS of the plaintext. key may be NULL for a set that is not encrypted.
 * *manifest receives the parsed manifest. */
int set_unpack(const char *dir, const char *to, const struct crypto_key *key, json_t **manifest,
               sc_err *err);
/* set_unpack for a set this run fetched into private scratch space (dir,
 * which is consumed): its plain files are renamed into to rather than
 * copied, after the same verification. */
int set_unpack_fetched(const char *dir, const char *to, const struct crypto_key *key,
                       json_t **manifest, sc_err *err);

/* Verify a published set: MANIFEST.json and B2SUMS agree with the files.
 * Exit 7 naming the first bad file; lists every problem through log_error. */
int set_verify(const char *dir, sc_err *err);

#endif
