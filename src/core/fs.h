/* File-system helpers with explicit error reporting (exit code 5 unless
 * stated). Paths are NUL-terminated; file contents carry explicit lengths. */
#ifndef SC_FS_H
#define SC_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "err.h"

/* Join two path parts with one '/'. Returns an owned string. */
char *path_join(const char *a, const char *b);
/* Create dir and missing parents with mode (existing ones are left alone). */
int fs_mkdir_p(const char *path, mode_t mode, sc_err *err);
/* Remove a tree; does not follow symlinks. Returns 0 or -1 (errno set). */
int fs_rm_rf(const char *path);
/* fsync a directory so that renames and creations in it are durable. */
int fs_fsync_dir(const char *path, sc_err *err);
/* Read a whole file (at most max bytes, else error). *buf is NUL-terminated
 * for convenience, *len excludes that NUL. */
int fs_read_file(const char *path, size_t max, char **buf, size_t *len, int code, sc_err *err);
/* Write data to path atomically: temp file in the same dir, fsync, rename,
 * fsync dir. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, sc_err *err);
/* write(2) all of buf, retrying on EINTR and short writes. 0 or -1. */
int fs_write_all(int fd, const void *buf, size_t len);
/* True when the path exists (lstat). */
bool fs_exists(const char *path);
/* Refuse a secret file (password, key, option file) that group or others
 * can read or write: exit code 3 naming the file. */
int fs_check_private(const char *path, const char *what, sc_err *err);
/* The same for a source's key (nothing when path is NULL): the message
 * names it "KIND NAME: KEY PATH". */
int fs_check_private_key(const char *path, const char *kind, const char *name, const char *key,
                         sc_err *err);
/* A password file: the password on one line (a trailing newline, CRLF
 * too, is not part of it), at most 4 KiB. *out is owned; wipe it with
 * fs_free_secret. Exit 3 naming what and path when it is missing, empty or
 * more than one line. */
int fs_read_secret_line(const char *path, const char *what, char **out, sc_err *err);
/* Overwrite a secret string with zeros, then free it (NULL is fine). */
void fs_free_secret(char *s);

/* Bytes of the regular files under path (symlinks not followed); 0 when
 * it cannot be walked. Not thread-safe (nftw has no context). */
unsigned long long fs_tree_bytes(const char *path);

#endif
