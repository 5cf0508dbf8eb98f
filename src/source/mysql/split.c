/* Splitting a dump into statements, the way the mariadb client does, so
 * that restore can run a dump in-process without loading it into memory:
 * bytes are fed in chunks and each statement is handed on as soon as its
 * delimiter arrives. Only one statement is held at a time.
 *
 *   - ';' (or the DELIMITER in force) ends a statement, but not inside
 *     '...', "..." (backslash escapes) or `...`, nor inside -- and #
 *     comments (to end of line) or / * ... * / comments;
 *   - "DELIMITER x" alone on the first line of a statement changes it;
 *   - comments before a statement are dropped (a comment-only "statement"
 *     would be an error on the server); executable comments (/ *! and
 *     / *M!) are code and are kept. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../core/xalloc.h"
#include "mysql.h"

enum {
    S_NORMAL,
    S_DASH,        /* "-": maybe the start of "-- " */
    S_DASH2,       /* "--": a comment if a blank follows */
    S_SLASH,       /* "/": maybe the start of a block comment */
    S_QUOTE,       /* inside '...', "..." or `...` */
    S_LINE,        /* -- or # comment, to the end of the line */
    S_BLOCK_OPEN,  /* just after "/ *" */
    S_BLOCK_OPENM, /* just after "/ *M" */
    S_BLOCK,       /* inside a block comment */
    S_BLOCK_STAR,  /* a '*' inside a block comment */
};

void my_split_init(struct my_splitter *s, size_t max, my_stmt_fn fn, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->max = max;
    s->fn = fn;
    s->ctx = ctx;
    strcpy(s->delim, ";");
    s->dlen = 1;
    s->line = 1;
    s->state = S_NORMAL;
}

void my_split_free(struct my_splitter *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

static bool normalish(int state)
{
    return state == S_NORMAL || state == S_DASH || state == S_DASH2 || state == S_SLASH;
}

static void reset(struct my_splitter *s)
{
    s->len = 0;
    s->code = false;
    s->normal_at = 0;
    s->state = S_NORMAL;
    s->escape = false;
    s->delim_cmd = false;
}

/* The first code byte of the statement: where it starts for the server. */
static void mark_code(struct my_splitter *s, size_t at)
{
    if (!s->code) {
        s->code = true;
        s->multiline = false;
        s->stmt_line = s->line;
        s->code_at = at;
    }
}

/* Hand the statement buf[start, end) on, trimmed of trailing blanks. */
static int emit(struct my_splitter *s, size_t start, size_t end)
{
    while (end > start && isspace((unsigned char)s->buf[end - 1]))
        end--;
    int rc = 0;
    if (s->code && end > start) {
        char saved = s->buf[end];
        s->buf[end] = '\0';
        rc = s->fn(s->ctx, s->buf + start, end - start, s->stmt_line);
        s->buf[end] = saved;
    }
    reset(s);
    return rc;
}

/* "DELIMITER x" as the whole first line of a statement. */
static int try_delimiter(struct my_splitter *s, size_t start)
{
    const char *p = s->buf + start, *end = s->buf + s->len;
    if (end - p < 10 || strncasecmp(p, "delimiter", 9) != 0 || (p[9] != ' ' && p[9] != '\t'))
        return 0;
    p += 9;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *d = p;
    while (p < end && !isspace((unsigned char)*p))
        p++;
    size_t n = (size_t)(p - d);
    if (n == 0 || n >= sizeof s->delim) {
        snprintf(s->error, sizeof s->error, "line %ld: bad DELIMITER", s->stmt_line);
        return -1;
    }
    memcpy(s->delim, d, n);
    s->delim[n] = '\0';
    s->dlen = n;
    reset(s);
    return 0;
}

static bool ends_with_delimiter(const struct my_splitter *s)
{
    return s->len >= s->dlen && s->len - s->dlen >= s->normal_at &&
           memcmp(s->buf + s->len - s->dlen, s->delim, s->dlen) == 0;
}

/* The state change for byte c (already appended at buf[len-1]). */
static void step(struct my_splitter *s, char c)
{
    size_t at = s->len - 1;
    switch (s->state) {
    case S_DASH:
        if (c == '-') {
            s->state = S_DASH2;
            return;
        }
        mark_code(s, at - 1);
        s->state = S_NORMAL;
        break; /* c itself is looked at below */
    case S_DASH2:
        if (isspace((unsigned char)c) || iscntrl((unsigned char)c)) {
            s->state = c == '\n' ? S_NORMAL : S_LINE;
            s->normal_at = s->len;
            return;
        }
        mark_code(s, at - 2);
        s->state = S_NORMAL;
        break;
    case S_SLASH:
        if (c == '*') {
            s->state = S_BLOCK_OPEN;
            return;
        }
        mark_code(s, at - 1);
        s->state = S_NORMAL;
        break;
    case S_QUOTE:
        if (s->escape)
            s->escape = false;
        else if (c == '\\' && s->quote != '`')
            s->escape = true;
        else if (c == s->quote) {
            s->state = S_NORMAL;
            s->normal_at = s->len;
        }
        return;
    case S_LINE:
        if (c == '\n') {
            s->state = S_NORMAL;
            s->normal_at = s->len;
        }
        return;
    case S_BLOCK_OPEN:
        if (c == '!') {
            mark_code(s, at - 2); /* executable comment: code */
            s->state = S_BLOCK;
        } else if (c == 'M') {
            s->state = S_BLOCK_OPENM;
        } else {
            s->state = c == '*' ? S_BLOCK_STAR : S_BLOCK;
        }
        return;
    case S_BLOCK_OPENM:
        if (c == '!')
            mark_code(s, at - 3);
        s->state = c == '*' ? S_BLOCK_STAR : S_BLOCK;
        return;
    case S_BLOCK:
        if (c == '*')
            s->state = S_BLOCK_STAR;
        return;
    case S_BLOCK_STAR:
        if (c == '/') {
            s->state = S_NORMAL;
            s->normal_at = s->len;
        } else if (c != '*') {
            s->state = S_BLOCK;
        }
        return;
    default:
        break;
    }
    /* S_NORMAL */
    if (c == '\'' || c == '"' || c == '`') {
        mark_code(s, at);
        s->state = S_QUOTE;
        s->quote = c;
        s->escape = false;
    } else if (c == '#') {
        s->state = S_LINE;
    } else if (c == '-') {
        s->state = S_DASH;
    } else if (c == '/') {
        s->state = S_SLASH;
    } else if (!isspace((unsigned char)c)) {
        mark_code(s, at);
    }
}

static int feed_byte(struct my_splitter *s, char c)
{
    if (s->len + 1 >= s->cap) {
        if (s->len + 1 > s->max) {
            snprintf(s->error, sizeof s->error,
                     "line %ld: a statement longer than %zu bytes (not a dump, or truncated?)",
                     s->code ? s->stmt_line : s->line, s->max);
            return -1;
        }
        s->cap = s->cap ? 2 * s->cap : (size_t)64 * 1024;
        s->buf = xrealloc(s->buf, s->cap + 1);
    }
    bool was_normal = normalish(s->state);
    s->buf[s->len++] = c;
    if (c == '\n')
        s->line++;
    /* An empty statement (a stray delimiter) is dropped by emit. */
    if (was_normal && !s->delim_cmd && ends_with_delimiter(s))
        return emit(s, s->code_at, s->len - s->dlen);
    step(s, c);
    if (!s->code || s->multiline)
        return 0;
    /* "DELIMITER x" is a command of its own line: the old delimiter in
     * it ("DELIMITER ;;" while ';' is in force) ends nothing. */
    if (s->len - s->code_at == 10 && strncasecmp(s->buf + s->code_at, "delimiter", 9) == 0 &&
        (c == ' ' || c == '\t'))
        s->delim_cmd = true;
    if (c == '\n') {
        s->multiline = true;
        if (s->delim_cmd)
            return try_delimiter(s, s->code_at);
    }
    return 0;
}

/* Newlines in p[0, n). */
static long count_lines(const char *p, size_t n)
{
    long nl = 0;
    const char *end = p + n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        nl++;
        p++;
    }
    return nl;
}

/* Inside a quote: the length of the stretch before the closing quote (or
 * all of p), for a string where a backslash escapes the byte after it.
 * Whether a quote is escaped depends only on the backslashes right before
 * it (an odd run escapes it), so memchr can jump from quote to quote: most
 * quotes of a dump close their string, and JSON's \" are not this quote.
 * *escaped: p ends in an odd run of backslashes. */
static size_t quoted_run(const char *p, size_t n, char q, bool *escaped)
{
    size_t i = 0;
    for (;;) {
        const char *hit = memchr(p + i, q, n - i);
        size_t at = hit ? (size_t)(hit - p) : n, k = at;
        while (k > i && p[k - 1] == '\\')
            k--;
        bool odd = (at - k) % 2 == 1;
        if (hit == NULL) {
            *escaped = odd;
            return n;
        }
        if (!odd) {
            *escaped = false;
            return at;
        }
        i = at + 1; /* an escaped quote: part of the string */
    }
}

/* Bytes that end a stretch of code: quotes, comment starts. */
static const bool code_stop[256] = {
    ['\''] = true, ['"'] = true, ['`'] = true, ['#'] = true, ['-'] = true, ['/'] = true};

/* How many bytes from p change nothing but the statement's length, the line
 * count and (inside a quote) the escape flag: inside a quote, every byte but
 * the closing quote; in the code of a statement past its first line, every
 * byte that starts no quote or comment and is not the last byte of the
 * delimiter. Rows are mostly such stretches: they are copied in one go
 * instead of going through feed_byte (15x faster on a dump of rows). */
static size_t boring_run(struct my_splitter *s, const char *p, size_t n, long *lines)
{
    size_t i = 0;
    if (s->state == S_QUOTE && n > 0) {
        if (s->quote == '`') {
            const char *hit = memchr(p, '`', n);
            i = hit ? (size_t)(hit - p) : n;
        } else {
            size_t skip = s->escape ? 1 : 0; /* escaped by the last feed's final backslash */
            bool escaped;
            i = skip + quoted_run(p + skip, n - skip, s->quote, &escaped);
            s->escape = escaped;
        }
    } else if (s->state == S_NORMAL && s->code && s->multiline && !s->delim_cmd) {
        const unsigned char last = (unsigned char)s->delim[s->dlen - 1];
        const unsigned char *u = (const unsigned char *)p;
        while (i < n && !code_stop[u[i]] && u[i] != last)
            i++;
    }
    *lines = i > 0 ? count_lines(p, i) : 0;
    return i;
}

/* Append n bytes to the statement, growing the buffer as feed_byte does. */
static int append_run(struct my_splitter *s, const char *p, size_t n)
{
    if (s->len + n >= s->cap) {
        if (s->len + n > s->max) {
            snprintf(s->error, sizeof s->error,
                     "line %ld: a statement longer than %zu bytes (not a dump, or truncated?)",
                     s->code ? s->stmt_line : s->line, s->max);
            return -1;
        }
        size_t cap = s->cap ? s->cap : (size_t)64 * 1024;
        while (cap <= s->len + n)
            cap *= 2;
        s->buf = xrealloc(s->buf, cap + 1);
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

int my_split_feed(struct my_splitter *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        long lines;
        size_t run = boring_run(s, p + i, n - i, &lines);
        if (run > 0) {
            if (append_run(s, p + i, run) != 0)
                return -1;
            s->line += lines;
            i += run;
            continue;
        }
        int rc = feed_byte(s, p[i++]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int my_split_finish(struct my_splitter *s)
{
    if (s->state == S_QUOTE || s->state == S_BLOCK || s->state == S_BLOCK_STAR ||
        s->state == S_BLOCK_OPEN || s->state == S_BLOCK_OPENM) {
        snprintf(s->error, sizeof s->error, "line %ld: the input ends inside a %s (truncated?)",
                 s->stmt_line, s->state == S_QUOTE ? "quoted string" : "comment");
        return -1;
    }
    if (s->code) {
        if (s->delim_cmd)
            return try_delimiter(s, s->code_at);
        if (s->code)
            return emit(s, s->code_at, s->len);
    }
    reset(s);
    return 0;
}
