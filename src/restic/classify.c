/* Reading restic's stderr: terminal escapes, credentials in URLs, the line
 * that tells what went wrong, and the kind of failure (tech-facts §3).
 *
 * restic 0.14 reports "no repository", "locked" and "wrong password" as
 * exit 1 with a text on stderr; 0.17+ adds exit codes 10, 11 and 12. Both
 * are understood, and every failure becomes one line with exit code 6. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
/* Text from restic: escape sequences, credentials in URLs, the telling line */

/* A copy of s with the userinfo of every URL ("scheme://user:pass@host")
 * replaced by "***". restic already hides the password, but a user name
 * can be a key id, and a message must be safe whatever printed it. */
char *rx_redact(const char *s)
{
    char *out = xmalloc(2 * strlen(s) + 1); /* "x@" -> "***@" at worst doubles */
    size_t o = 0;
    while (*s) {
        const char *sep = strstr(s, "://");
        if (sep == NULL) {
            size_t n = strlen(s);
            memcpy(out + o, s, n);
            o += n;
            break;
        }
        const char *auth = sep + 3;
        size_t auth_len = strcspn(auth, "/ \t\"'<>");
        const char *at = memrchr(auth, '@', auth_len);
        memcpy(out + o, s, (size_t)(auth - s));
        o += (size_t)(auth - s);
        if (at != NULL && at > auth) {
            memcpy(out + o, "***", 3);
            o += 3;
            s = at;
        } else {
            s = auth;
        }
    }
    out[o] = '\0';
    return out;
}

/* Add cur[0..len) to lines without surrounding blanks, unless empty. */
static void push_trimmed(struct strvec *lines, const char *cur, size_t len)
{
    while (len > 0 && isspace((unsigned char)cur[len - 1]))
        len--;
    size_t start = 0;
    while (start < len && cur[start] == ' ')
        start++;
    if (start < len)
        strvec_pushf(lines, "%.*s", (int)(len - start), cur + start);
}

/* Length of the escape sequence at s[0] == ESC (at most n bytes): CSI
 * (ESC [ ... final byte 0x40-0x7e), OSC (ESC ] ... BEL or ESC \), or a
 * two-byte escape. */
static size_t escape_len(const char *s, size_t n)
{
    size_t i = 1;
    if (n > 1 && s[1] == '[') {
        for (i = 2; i < n; i++)
            if ((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)
                return i + 1;
        return n;
    }
    if (n > 1 && s[1] == ']') {
        for (i = 2; i < n; i++) {
            if (s[i] == '\a')
                return i + 1;
            if (s[i] == 0x1b)
                return i + 2 <= n ? i + 2 : n;
        }
        return n;
    }
    return n > 1 ? 2 : 1;
}

/* Split stderr into non-empty lines with terminal escape sequences and
 * control characters removed ('\r' ends a line: restic writes ESC[2K and
 * carriage returns even when stderr is not a terminal). Leading tabs stay:
 * they mark the frames of a Go stack trace. */
void rx_clean_lines(const char *text, struct strvec *lines)
{
    size_t n = text ? strlen(text) : 0;
    char *cur = xmalloc(n + 1);
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == 0x1b) {
            i += escape_len(text + i, n - i);
            continue;
        }
        if (ch == '\n' || ch == '\r') {
            push_trimmed(lines, cur, len);
            len = 0;
        } else if ((ch >= 0x20 && ch != 0x7f) || ch == '\t') {
            cur[len++] = (char)ch;
        }
        i++;
    }
    push_trimmed(lines, cur, len);
    free(cur);
}

/* The message of a JSON exit_error line (restic 0.18+ with --json), first
 * line only; owned, or NULL. */
static char *json_exit_message(const char *line)
{
    if (line[0] != '{')
        return NULL;
    json_t *j = json_loads(line, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "message_type"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    char *out = NULL;
    if (type && msg && strcmp(type, "exit_error") == 0)
        out = xstrndup(msg, strcspn(msg, "\n"));
    json_decref(j);
    return out;
}

static const char *skip_fatal(const char *s)
{
    return strncmp(s, "Fatal: ", 7) == 0 ? s + 7 : s;
}

/* The line that says what went wrong (owned, or NULL when there is none):
 * an exit_error message, else the last "Fatal:" line, else the message
 * above a Go stack trace (restic 0.14 prints "%+v" of unexpected errors:
 * message, then function name and "\tfile:line" pairs), else the last
 * line that is neither JSON nor a stack frame. */
static char *telling_line(const struct strvec *lines)
{
    size_t i;
    for (i = lines->n; i-- > 0;) {
        char *m = json_exit_message(lines->v[i]);
        if (m)
            return m;
    }
    for (i = lines->n; i-- > 0;)
        if (strncmp(lines->v[i], "Fatal: ", 7) == 0)
            return xstrdup(skip_fatal(lines->v[i]));
    for (i = 0; i < lines->n; i++) {
        if (lines->v[i][0] == '\t') {
            if (i >= 2)
                return xstrdup(lines->v[i - 2]);
            break;
        }
    }
    for (i = lines->n; i-- > 0;)
        if (lines->v[i][0] != '{' && lines->v[i][0] != '\t')
            return xstrdup(lines->v[i]);
    return NULL;
}

/* The first line containing needle (case-insensitive), or NULL. */
static const char *find_line(const struct strvec *lines, const char *needle, size_t *index)
{
    for (size_t i = 0; i < lines->n; i++) {
        if (strcasestr(lines->v[i], needle)) {
            if (index)
                *index = i;
            return lines->v[i];
        }
    }
    return NULL;
}

/* Texts that mean the backend could not be reached or refused us. On 0.14
 * they can come wrapped in "unable to open config file ... Is there a
 * repository", so they are looked for before the missing-repository texts. */
static const char *const backend_texts[] = {
    "connection refused",
    "no such host",
    "i/o timeout",
    "timeout awaiting",
    "TLS handshake",
    "x509:",
    "certificate",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "context deadline",
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
    "Access Denied",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Forbidden",
    "subprocess ssh",
    "ssh: ",
    "rclone: ",
    NULL,
};

enum rx_failure rx_failure_kind(const char *what, int exit_code, const struct strvec *lines,
                                const char **line)
{
    *line = NULL;
    switch (exit_code) { /* restic 0.17+ */
    case 10:
        return RX_NO_REPO;
    case 11:
        return RX_LOCKED;
    case 12:
        return RX_PASSWORD;
    case 130:
        return RX_INTERRUPTED;
    default:
        break;
    }
    if (exit_code == 3 && strcmp(what, "backup") == 0)
        return RX_UNREADABLE;
    /* restic 0.14-0.16: exit 1, and the text says which. */
    if (find_line(lines, "wrong password or no key found", NULL))
        return RX_PASSWORD;
    if (find_line(lines, "repository is already locked", NULL))
        return RX_LOCKED;
    if (find_line(lines, "ciphertext verification failed", NULL))
        return RX_CORRUPT;
    for (size_t i = 0; backend_texts[i]; i++)
        if ((*line = find_line(lines, backend_texts[i], NULL)) != NULL)
            return RX_BACKEND;
    if (find_line(lines, "Is there a repository at the following location?", NULL) ||
        find_line(lines, "unable to open config file", NULL))
        return RX_NO_REPO;
    return RX_OTHER;
}

char *rx_retry_reason(const char *stderr_text)
{
    static const char mark[] = " returned error, retrying after ";
    struct strvec lines = {0};
    rx_clean_lines(stderr_text, &lines);
    char *out = NULL;
    for (size_t i = lines.n; out == NULL && i-- > 0;) {
        const char *l = lines.v[i];
        const char *m = strstr(l, mark);
        const char *colon = m ? strstr(m + sizeof mark - 1, ": ") : NULL;
        if (colon == NULL)
            continue;
        char *raw = xasprintf("%.*s: %s", (int)(m - l), l, colon + 2);
        out = rx_redact(raw);
        free(raw);
    }
    strvec_free(&lines);
    return out;
}

/* "PID 123 on host by user (UID 0, GID 0)" from restic's lock message. */
char *rx_lock_holder(const struct strvec *lines)
{
    size_t i;
    const char *l = find_line(lines, "locked", &i);
    if (l == NULL)
        return NULL;
    const char *by = strstr(l, "by PID ");
    const char *who = by ? by + 3 : skip_fatal(l);
    /* 0.14: "lock was created at 2026-11-27 07:54:14 (2.28s ago)" follows. */
    const char *age = i + 1 < lines->n ? strstr(lines->v[i + 1], "lock was created at ") : NULL;
    const char *open = age ? strrchr(age, '(') : NULL;
    if (open == NULL)
        return rx_redact(who);
    char *raw = xasprintf("%s, created %s", who, open + 1);
    size_t n = strlen(raw);
    if (n > 0 && raw[n - 1] == ')')
        raw[n - 1] = '\0';
    /* Both parts redacted together: the age is restic's text too. */
    char *out = rx_redact(raw);
    free(raw);
    return out;
}

/* Texts of backend failures that may pass on a second try. Credentials,
 * certificates and missing buckets are left out: they never do. */
static const char *const transient_texts[] = {
    "connection refused",
    "connection reset",
    "broken pipe",
    "i/o timeout",
    "timeout awaiting",
    "TLS handshake timeout",
    "context deadline exceeded",
    "network is unreachable",
    "no route to host",
    "unexpected EOF",
    "server closed idle connection",
    "temporary failure in name resolution",
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
    "SlowDown",
    "RequestTimeout",
    NULL,
};

/* Permanent refusals: when one of these is there, retrying is useless
 * even if a transient text shows up too. */
static const char *const permanent_texts[] = {
    "x509:",
    "certificate",
    "Access Denied",
    "AccessDenied",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "no such host",
    NULL,
};

bool rx_transient(const struct strvec *lines)
{
    for (size_t i = 0; permanent_texts[i]; i++)
        if (find_line(lines, permanent_texts[i], NULL))
            return false;
    for (size_t i = 0; transient_texts[i]; i++)
        if (find_line(lines, transient_texts[i], NULL))
            return true;
    return false;
}

/* The repository location restic names after "Is there a repository at
 * the following location?", redacted; or NULL. */
static char *missing_location(const struct strvec *lines)
{
    size_t i;
    if (find_line(lines, "Is there a repository at the following location?", &i) &&
        i + 1 < lines->n)
        return rx_redact(lines->v[i + 1]);
    return NULL;
}

/* For backup exit 3: restic's JSON error lines on stderr name the items
 * it could not read ("error" is {} on 0.14, so only "item" is useful). */
static void unreadable_items(const char *stderr_text, char **first, size_t *count)
{
    *first = NULL;
    *count = 0;
    struct strvec lines = {0};
    rx_clean_lines(stderr_text, &lines);
    for (size_t i = 0; i < lines.n; i++) {
        if (lines.v[i][0] != '{')
            continue;
        json_t *j = json_loads(lines.v[i], 0, NULL);
        const char *type = json_string_value(json_object_get(j, "message_type"));
        const char *item = json_string_value(json_object_get(j, "item"));
        if (type && strcmp(type, "error") == 0) {
            (*count)++;
            if (*first == NULL && item)
                *first = rx_redact(item);
        }
        json_decref(j);
    }
    strvec_free(&lines);
}

static int fail_unreadable(const char *stderr_text, const char *telling, sc_err *err)
{
    char *first;
    size_t count;
    unreadable_items(stderr_text, &first, &count);
    int rc;
    if (first && count > 1)
        rc = sc_fail(err, SC_ERESTIC,
                     "restic backup could not read %zu files (first: %s); an incomplete "
                     "backup does not count",
                     count, first);
    else if (first)
        rc = sc_fail(err, SC_ERESTIC,
                     "restic backup could not read %s; an incomplete backup does not count", first);
    else
        rc = sc_fail(err, SC_ERESTIC,
                     "restic backup could not read some source files%s%s; an incomplete "
                     "backup does not count",
                     telling ? ": " : "", telling ? telling : "");
    free(first);
    return rc;
}

int restic_classify(const char *what, int exit_code, const char *stderr_text, sc_err *err)
{
    struct strvec lines = {0};
    rx_clean_lines(stderr_text, &lines);
    const char *line;
    enum rx_failure kind = rx_failure_kind(what, exit_code, &lines, &line);
    char *raw = telling_line(&lines);
    char *telling = raw ? rx_redact(raw) : NULL;
    char *detail = NULL, *raw2 = NULL;
    int rc;
    switch (kind) {
    case RX_PASSWORD:
        rc = sc_fail(err, SC_ERESTIC,
                     "restic %s: wrong password or no key found (check password_file)", what);
        break;
    case RX_NO_REPO:
        detail = missing_location(&lines);
        rc = sc_fail(err, SC_ERESTIC, "restic %s: repository does not exist%s%s", what,
                     detail ? " at " : "", detail ? detail : "");
        break;
    case RX_LOCKED:
        detail = rx_lock_holder(&lines);
        rc = sc_fail(err, SC_ERESTIC,
                     "restic %s: repository is locked by another process (%s); stale locks "
                     "were removed, this one belongs to a restic that is running (or ran "
                     "elsewhere less than 30 minutes ago)",
                     what, detail ? detail : "no details");
        break;
    case RX_BACKEND:
        raw2 = json_exit_message(line); /* 0.18+: the line may be JSON */
        detail = rx_redact(skip_fatal(raw2 ? raw2 : line));
        free(raw2);
        rc = sc_fail(err, SC_ERESTIC, "restic %s: backend error: %s", what, detail);
        break;
    case RX_UNREADABLE:
        rc = fail_unreadable(stderr_text, telling, err);
        break;
    case RX_CORRUPT:
        rc = sc_fail(err, SC_EVERIFY,
                     "restic %s: the repository's data failed verification (%s): damaged or "
                     "tampered; run restic check --read-data",
                     what, telling ? telling : "ciphertext verification failed");
        break;
    case RX_INTERRUPTED:
        rc = sc_fail(err, SC_ERESTIC, "restic %s was interrupted (exit %d)", what, exit_code);
        break;
    default:
        rc = sc_fail(err, SC_ERESTIC, "restic %s failed (exit %d)%s%s", what, exit_code,
                     telling ? ": " : "", telling ? telling : "");
        break;
    }
    free(detail);
    free(telling);
    free(raw);
    strvec_free(&lines);
    return rc;
}
