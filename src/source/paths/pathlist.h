/* The paths file of the Torrust POC (BACKUP_PATHS_FILE, `from_file =`): one
 * path a line. The parser is pure (bytes in, list out) so that it can be
 * fuzzed and unit-tested; reading the file is a separate step. */
#ifndef SC_PATHLIST_H
#define SC_PATHLIST_H

#include <stddef.h>
#include "../../core/err.h"
#include "../../core/xalloc.h"

/* A paths file larger than this is refused: it is a list of config paths,
 * not data, and reading it must stay bounded. */
#define PATHLIST_MAX_FILE ((size_t)1024 * 1024)
/* Longest path accepted (PATH_MAX less its NUL): a longer one cannot be opened. */
#define PATHLIST_MAX_PATH 4095

/* Parse a paths file and append its paths to out, in order.
 * - one path a line; LF or CRLF line ends; the last line needs no newline;
 * - surrounding whitespace (space, tab, CR, VT, FF) is trimmed, whitespace
 *   inside a path is kept as it is (unlike the POC's `xargs`, which collapsed
 *   it and choked on quotes);
 * - blank lines and lines whose first non-blank character is '#' are skipped;
 *   there are no inline comments: "/data/file#1.txt" is a path;
 * - a UTF-8 byte order mark at the start is ignored.
 * A NUL byte anywhere, or a path longer than PATHLIST_MAX_PATH, fails with
 * SC_ESOURCE and a message "NAME: line N: ..."; out is then left unchanged. */
int pathlist_parse(const char *data, size_t len, struct strvec *out, const char *name, sc_err *err);

/* Read path (at most PATHLIST_MAX_FILE bytes) and parse it. Every failure,
 * a missing file included, is SC_ESOURCE naming the file. */
int pathlist_read_file(const char *path, struct strvec *out, sc_err *err);

#endif
