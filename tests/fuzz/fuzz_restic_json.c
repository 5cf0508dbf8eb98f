/* libFuzzer target: everything that reads restic's output (src/restic/).
 * restic is a separate program, maybe a newer version than we know, and
 * its text carries repository names and file names from elsewhere, so each
 * input is read every way stagecoach reads restic:
 *
 * - stdout of `backup --json` (status and summary lines), `ls --json`
 *   (node lines), `snapshots --json` and `forget --json` (arrays), with the
 *   snapshot lookups done on an array (latest, id prefix, full id);
 * - stderr of a failed call: cleaned lines, the failure kind, the retry
 *   decision, the lock holder, what restic 0.17+ was retrying, check's
 *   problem line and the one-line classified message, whose URL
 *   credentials must be gone.
 *
 * Properties checked (a violation traps): ids taken from a summary are hex
 * of 8 to 64 digits; nodes kept by ls are "node" objects; a classified
 * failure has exit code 6 or 7 and a message; cleaned lines hold no control
 * character but tab and no surrounding blanks; no URL in redacted text
 * still carries a user name or password. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/restic/internal.h"

/* In redacted text, every "scheme://" authority with an '@' reads "***@". */
static void check_redacted(const char *s)
{
    for (const char *p = strstr(s, "://"); p != NULL; p = strstr(p + 1, "://")) {
        const char *auth = p + 3;
        size_t n = strcspn(auth, "/ \t\"'<>");
        const char *at = memrchr(auth, '@', n);
        if (at != NULL && at > auth && !(at - auth == 3 && memcmp(auth, "***", 3) == 0))
            __builtin_trap();
    }
}

static void check_lines(const struct strvec *lines)
{
    for (size_t i = 0; i < lines->n; i++) {
        const char *l = lines->v[i];
        size_t n = strlen(l);
        if (n == 0 || l[0] == ' ' || l[n - 1] == ' ' || l[n - 1] == '\t')
            __builtin_trap();
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)l[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                __builtin_trap();
        }
    }
}

static void check_msg(const sc_err *e, int rc)
{
    if (rc != e->code || (rc != SC_ERESTIC && rc != SC_EVERIFY) || e->msg[0] == '\0' ||
        memchr(e->msg, '\0', sizeof e->msg) == NULL)
        __builtin_trap();
}

static bool hex_id(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, "0123456789abcdef") == n;
}

/* stdout, one line at a time, as spawn_run hands it to the callbacks. */
static void read_stdout(const char *text, size_t size)
{
    struct restic_backup_result out;
    memset(&out, 0, sizeof out);
    struct rx_backup_ctx bc = {.out = &out};
    json_t *nodes = json_array();
    for (size_t i = 0; i < size;) {
        const char *nl = memchr(text + i, '\n', size - i);
        size_t len = nl ? (size_t)(nl - (text + i)) : size - i;
        rx_backup_line(&bc, text + i, len);
        rx_ls_line(nodes, text + i, len);
        i += len + 1;
    }
    if (out.snapshot_id[0] != '\0' &&
        (!bc.have_summary || !hex_id(out.snapshot_id, 8, 64) || !hex_id(out.short_id, 8, 8)))
        __builtin_trap();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *st = json_string_value(json_object_get(n, "struct_type"));
        if (st == NULL || strcmp(st, "node") != 0)
            __builtin_trap();
    }
    json_decref(nodes);

    /* The whole text as an array: snapshots, and the lookups on them. */
    json_t *list = NULL;
    sc_err err = {0};
    int rc = rx_json_array("snapshots", text, size, &list, &err);
    if (rc != 0) {
        check_msg(&err, rc);
        if (list != NULL)
            __builtin_trap();
    } else {
        json_t *latest = rx_latest(list);
        if (latest != NULL && json_array_size(list) == 0)
            __builtin_trap();
        const char *id = json_string_value(json_object_get(latest, "id"));
        bool ambiguous;
        if (id != NULL && hex_id(id, 8, 64)) {
            char prefix[9];
            memcpy(prefix, id, 8);
            prefix[8] = '\0';
            if (rx_match_id(list, prefix, &ambiguous) == NULL)
                __builtin_trap(); /* the newest one at least starts with it */
        }
        if (out.snapshot_id[0] != '\0') {
            struct restic_backup_result copy = out;
            sc_err e2 = {0};
            rc = rx_full_id(list, "20261127T000000Z", &copy, &e2);
            if (rc != 0)
                check_msg(&e2, rc);
            else if (!hex_id(copy.snapshot_id, 64, 64) ||
                     strncmp(copy.snapshot_id, out.snapshot_id, strlen(out.snapshot_id)) != 0)
                __builtin_trap();
        }
        json_decref(list);
    }

    struct restic_forget_result f = {0};
    sc_err e3 = {0};
    rc = restic_forget_parse(text, size, &f, &e3);
    if (rc != 0) {
        check_msg(&e3, rc);
        if (f.keep != NULL || f.remove != NULL)
            __builtin_trap();
    } else {
        if (!json_is_array(f.keep) || !json_is_array(f.remove))
            __builtin_trap();
        restic_forget_result_free(&f);
    }
}

/* stderr of a failed call (a NUL-terminated string, as spawn_run keeps it). */
static void read_stderr(const char *text, int exit_code)
{
    static const char *const whats[] = {"backup", "cat config", "check", "snapshots"};
    const char *what = whats[(unsigned)exit_code % 4];
    struct strvec lines = {0};
    rx_clean_lines(text, &lines);
    check_lines(&lines);
    const char *line = NULL;
    enum rx_failure kind = rx_failure_kind(what, exit_code, &lines, &line);
    if (kind == RX_BACKEND && line == NULL)
        __builtin_trap();
    (void)rx_transient(&lines);
    char *holder = rx_lock_holder(&lines);
    if (holder != NULL) {
        check_redacted(holder);
        free(holder);
    }
    strvec_free(&lines);

    char *red = rx_redact(text);
    check_redacted(red);
    free(red);

    char *retrying = rx_retry_reason(text); /* 0.17+: what a timed-out call retried */
    if (retrying != NULL) {
        check_redacted(retrying);
        if (strchr(retrying, '\n') != NULL)
            __builtin_trap();
        free(retrying);
    }

    if (rx_check_damaged(text)) {
        char *problem = rx_check_problem(text);
        if (problem != NULL) {
            check_redacted(problem);
            free(problem);
        }
    }

    sc_err err = {0};
    int rc = restic_classify(what, exit_code, text, &err);
    check_msg(&err, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks restic's exit code; the rest is its output. */
    int exit_code = size > 0 ? data[0] : 1;
    const uint8_t *body = size > 0 ? data + 1 : data;
    size_t len = size > 0 ? size - 1 : 0;
    char *text = malloc(len + 1);
    if (text == NULL)
        return 0;
    memcpy(text, body, len);
    text[len] = '\0';
    read_stdout(text, len);
    read_stderr(text, exit_code);
    free(text);
    return 0;
}
