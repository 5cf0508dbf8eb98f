/* Allocation that cannot return NULL: running out of memory ends the process
 * with a message (exit 1), as git's xmalloc does. Every caller owns what it
 * gets and frees it. */
#ifndef SC_XALLOC_H
#define SC_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable array of owned strings, NULL-terminated (usable as argv). */
struct strvec {
    char **v;
    size_t n, cap;
};
void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strvec_free(struct strvec *sv);

#endif
