/* Splitting a command line into words the way a shell would, without a
 * shell and without any expansion: hooks (hooks.c) run their commands with
 * the argv this makes, and the config loader checks them with it. */
#ifndef SC_WORDS_H
#define SC_WORDS_H

#include "xalloc.h"

/* Split cmd into words appended to argv: blanks separate; '...' is
 * literal; "..." allows \" \\ \$ \`; a backslash outside quotes escapes
 * the next character. Returns NULL, or why it cannot (unbalanced quotes). */
const char *words_split(const char *cmd, struct strvec *argv);

#endif
