/* libFuzzer target: the dump splitter of the MySQL restore (split.c). The
 * same bytes fed whole and in pieces of 1 to 16 bytes (the first input byte
 * picks the sizes) give the same statements, lines and outcome: the
 * stretches it copies in one go (quoted strings, code) must end where the
 * byte-wise state machine would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/source/mysql/mysql.h"

struct seen {
    uint64_t hash; /* of every statement and its line, in order */
    size_t n;
};

static int collect(void *ctx, const char *sql, size_t len, long line)
{
    struct seen *s = ctx;
    if (strlen(sql) != len)
        __builtin_trap(); /* NUL-terminated at len, no NUL inside... */
    for (size_t i = 0; i < len; i++)
        s->hash = (s->hash ^ (unsigned char)sql[i]) * 1099511628211ULL;
    s->hash = (s->hash ^ (uint64_t)line) * 1099511628211ULL;
    s->n++;
    return 0;
}

static int split(const uint8_t *data, size_t size, unsigned pieces, struct seen *out)
{
    struct my_splitter s;
    memset(out, 0, sizeof *out);
    my_split_init(&s, 1 << 16, collect, out);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < size;) {
        size_t n = pieces == 0 ? size : 1 + (pieces + i) % 16;
        if (n > size - i)
            n = size - i;
        rc = my_split_feed(&s, (const char *)data + i, n);
        i += n;
    }
    if (rc == 0)
        rc = my_split_finish(&s);
    my_split_free(&s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* ...so inputs with a NUL are not statements to compare */
    if (size < 1 || memchr(data, '\0', size) != NULL)
        return 0;
    struct seen whole, pieces;
    int a = split(data + 1, size - 1, 0, &whole);
    int b = split(data + 1, size - 1, data[0], &pieces);
    if (a != b || whole.n != pieces.n || whole.hash != pieces.hash)
        __builtin_trap();
    return 0;
}
