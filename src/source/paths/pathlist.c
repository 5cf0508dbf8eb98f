#include "pathlist.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fs.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim blanks from both ends of [*start, *end). */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_blank(**start))
        (*start)++;
    while (*end > *start && is_blank((*end)[-1]))
        (*end)--;
}

/* Editors on Windows like to start UTF-8 files with EF BB BF; that is not
 * part of the first path. */
static size_t bom_length(const char *data, size_t len)
{
    static const char bom[] = "\xEF\xBB\xBF";
    return (len >= 3 && memcmp(data, bom, 3) == 0) ? 3 : 0;
}

int pathlist_parse(const char *data, size_t len, struct strvec *out, const char *name, sc_err *err)
{
    /* Collect into a list of our own so that a failure leaves out as it was. */
    struct strvec found = {0};
    const char *p = data + bom_length(data, len);
    const char *end = data + len;
    int rc = 0;
    for (size_t line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
            rc = sc_fail(err, SC_ESOURCE, "%s: line %zu: contains a NUL byte", name, line);
            break;
        }
        const char *s = p, *e = eol;
        trim(&s, &e);
        p = eol < end ? eol + 1 : end;
        if (s == e || *s == '#')
            continue;
        if ((size_t)(e - s) > PATHLIST_MAX_PATH) {
            rc = sc_fail(err, SC_ESOURCE, "%s: line %zu: path longer than %d bytes", name, line,
                         PATHLIST_MAX_PATH);
            break;
        }
        char *path = xstrndup(s, (size_t)(e - s));
        strvec_push(&found, path);
        free(path);
    }
    for (size_t i = 0; rc == 0 && i < found.n; i++)
        strvec_push(out, found.v[i]);
    strvec_free(&found);
    return rc;
}

int pathlist_read_file(const char *path, struct strvec *out, sc_err *err)
{
    char *data;
    size_t len;
    if (fs_read_file(path, PATHLIST_MAX_FILE, &data, &len, SC_ESOURCE, err) != 0)
        return err->code;
    int rc = pathlist_parse(data, len, out, path, err);
    free(data);
    return rc;
}
