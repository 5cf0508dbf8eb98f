/* One table's rows as SQL, exactly.
 *
 * Rows stream with mysql_use_result (constant memory whatever the table
 * size) on the data connection, which holds the snapshot. Values:
 *   - NULL is NULL; '' is '' (a non-NULL pointer of length 0);
 *   - numbers go out as the server's text, unquoted. FLOAT columns are
 *     selected as CAST(... AS DOUBLE): the server prints a FLOAT with 6
 *     digits (3.40282e38, 16777200), which does not round-trip, while the
 *     shortest text of the same value as a DOUBLE does (tested: 20000
 *     random bit patterns of each, tests/integration/mysql.bats);
 *   - binary strings, BLOBs, BIT and spatial values (charset 63 and a
 *     string/blob/bit/geometry type; BINARY_FLAG is not the test: *_bin
 *     text and TIMESTAMP carry it too) as 0x hex, so the dump is valid UTF-8
 *     and NUL or 0xFF bytes survive any client;
 *   - everything else (text, dates in UTC, ENUM/SET, JSON, INET6/UUID) as a
 *     quoted string escaped as mysql_real_escape_string does on the utf8mb4
 *     connection, but for '"' (left as it is: it needs no escape inside
 *     '...'); lengths always from mysql_fetch_lengths, never strlen.
 * Generated columns are left out of the column list (the server computes
 * them); invisible ones are named explicitly (SELECT * would miss them).
 * Rows come in primary-key order (else a unique NOT NULL key) so an
 * unchanged table dumps to the same bytes and restic stores it once. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/xalloc.h"
#include "mysql.h"

#define PROGRESS_EVERY_ROWS 4096
#define PROGRESS_EVERY_MS 250

/* ---- values --------------------------------------------------------------- */

enum my_enc my_encoding_of(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL:
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
    case MYSQL_TYPE_YEAR:
        if (f->flags & NUM_FLAG)
            return ENC_NUMBER;
        return ENC_TEXT;
    case MYSQL_TYPE_BIT:
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_GEOMETRY:
        return f->charsetnr == 63 ? ENC_HEX : ENC_TEXT;
    default:
        return ENC_TEXT;
    }
}

/* A number as the server prints it: digits, sign, point, exponent. Anything
 * else ("inf", "nan") is refused rather than written as something else. */
static bool is_number(const char *v, unsigned long n)
{
    if (n == 0)
        return false;
    for (unsigned long i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            return false;
    }
    return true;
}

static size_t hex(char *o, const unsigned char *v, size_t n)
{
    /* the two digits of every byte value, one copy a byte */
    static const char pairs[513] =
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
        "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"
        "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"
        "606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F"
        "808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F"
        "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF"
        "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
        "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF";
    for (size_t i = 0; i < n; i++)
        memcpy(o + 2 * i, pairs + 2 * (size_t)v[i], 2);
    return 2 * n;
}

/* Does any byte of the 8 at p need an escape, or a closer look (0x00-0x0D
 * take one: NUL, \n and \r are among them)? Word at a time: text is mostly
 * bytes that need none. */
static bool word_needs_look(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t low = (w - ones * 0x0E) & ~w & high; /* a byte below 0x0E */
    uint64_t z = w ^ (ones * 0x1A), q = w ^ (ones * 0x27), b = w ^ (ones * 0x5C);
    uint64_t eq = ((z - ones) & ~z) | ((q - ones) & ~q) | ((b - ones) & ~b);
    return (low | (eq & high)) != 0;
}

/* mysql_real_escape_string for a utf8mb4 connection, without its per-byte
 * multibyte checks (no byte of a UTF-8 sequence but its first is below
 * 0x80, so escaping byte by byte gives the same text), and without
 * escaping '"', which needs none inside '...' (JSON is full of them: the
 * dump is smaller and the server unescapes less when it loads). The dump
 * sets sql_mode itself, so backslash escapes always apply when it loads.
 * Tested against the library in test_mysql_server.c. */
static size_t escape(char *o, const char *v, size_t n)
{
    /* The escape letter of each byte that needs one, else 0. */
    static const char code[256] = {
        ['\0'] = '0', ['\n'] = 'n', ['\r'] = 'r', ['\032'] = 'Z', ['\\'] = '\\', ['\''] = '\''};
    size_t k = 0, run = 0, i = 0;
    while (i < n) {
        if (i + 8 <= n && !word_needs_look(v + i)) {
            i += 8;
            continue;
        }
        for (size_t stop = i + 8 < n ? i + 8 : n; i < stop; i++) {
            char e = code[(unsigned char)v[i]];
            if (e == 0)
                continue;
            /* the plain bytes before this one, in one copy */
            memcpy(o + k, v + run, i - run);
            k += i - run;
            o[k++] = '\\';
            o[k++] = e;
            run = i + 1;
        }
    }
    memcpy(o + k, v + run, n - run);
    return k + n - run;
}

static void reserve(char **buf, size_t *len, size_t *cap, size_t more)
{
    if (*len + more <= *cap)
        return;
    size_t want = *cap ? *cap : 256;
    while (want < *len + more)
        want *= 2;
    *buf = xrealloc(*buf, want);
    *cap = want;
}

int my_encode_value(enum my_enc enc, const char *v, unsigned long vlen, char **buf, size_t *len,
                    size_t *cap)
{
    reserve(buf, len, cap, 2 * (size_t)vlen + 3);
    char *o = *buf + *len;
    switch (enc) {
    case ENC_NUMBER:
        if (!is_number(v, vlen))
            return -1;
        memcpy(o, v, vlen);
        *len += vlen;
        return 0;
    case ENC_HEX:
        if (vlen == 0) {
            o[0] = '\'';
            o[1] = '\'';
            *len += 2;
            return 0;
        }
        o[0] = '0';
        o[1] = 'x';
        *len += 2 + hex(o + 2, (const unsigned char *)v, vlen);
        return 0;
    case ENC_TEXT:
        o[0] = '\'';
        size_t k = escape(o + 1, v, vlen);
        o[k + 1] = '\'';
        *len += k + 2;
        return 0;
    }
    return -1;
}

/* ---- the plan: columns and order ----------------------------------------- */

/* Extra of SHOW COLUMNS: values the server computes cannot be inserted. */
static bool is_generated(const char *extra)
{
    static const char *const marks[] = {"VIRTUAL GENERATED", "STORED GENERATED",
                                        "PERSISTENT GENERATED", "ROW START", "ROW END"};
    if (extra == NULL)
        return false;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(extra, marks[i]) != NULL)
            return true;
    return false;
}

static void append(char **s, const char *piece)
{
    size_t a = *s ? strlen(*s) : 0, b = strlen(piece);
    *s = xrealloc(*s, a + b + 1);
    memcpy(*s + a, piece, b + 1);
}

/* An integer column type of SHOW COLUMNS: "int(11)", "bigint unsigned". */
static bool is_integer_type(const char *type)
{
    static const char *const names[] = {"tinyint", "smallint", "mediumint", "int", "bigint"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(type, names[i], n) == 0 &&
            (type[n] == '\0' || type[n] == '(' || type[n] == ' '))
            return true;
    }
    return false;
}

/* Build the select and insert column lists from SHOW FULL COLUMNS; note
 * whether key_col (the ordering key's one column, or NULL) is an integer. */
static int plan_columns(MYSQL *meta, const struct source_cfg *cfg, const char *qname,
                        const char *key_col, struct my_rows_plan *p, char **select_cols,
                        char **insert_cols, sc_err *err)
{
    char *sql = xasprintf("SHOW FULL COLUMNS FROM %s", qname);
    MYSQL_RES *res;
    int rc = my_query(meta, cfg, sql, &res, err);
    free(sql);
    if (rc != 0)
        return rc;
    /* Field, Type, Collation, Null, Key, Default, Extra, ... */
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (row[0] != NULL && row[1] != NULL && key_col != NULL && strcmp(row[0], key_col) == 0 &&
            is_integer_type(row[1])) {
            p->range_col = my_ident(row[0]);
            p->range_unsigned = strstr(row[1], "unsigned") != NULL;
        }
        if (row[0] == NULL || is_generated(row[6]))
            continue;
        char *id = my_ident(row[0]);
        char *sel = row[1] != NULL && strncmp(row[1], "float", 5) == 0
                        ? xasprintf("CAST(%s AS DOUBLE)", id)
                        : xstrdup(id);
        if (p->ncols > 0) {
            append(select_cols, ",");
            append(insert_cols, ",");
        }
        append(select_cols, sel);
        append(insert_cols, id);
        free(sel);
        free(id);
        p->ncols++;
    }
    mysql_free_result(res);
    return 0;
}

/* One index from SHOW INDEX rows: name, columns in order, usable. */
struct key {
    char *name;
    char *cols;  /* `a`,`b` */
    char *first; /* the first column, unquoted */
    size_t ncols;
    bool unique, nullable, hash;
};

static void key_free(struct key *k)
{
    free(k->name);
    free(k->cols);
    free(k->first);
    memset(k, 0, sizeof *k);
}

/* The best key to order by: PRIMARY, else the first (by name) unique key
 * over NOT NULL columns that is not a hash of a long value. */
static bool better_key(const struct key *k, const struct key *best)
{
    if (!k->unique || k->nullable || (k->hash && strcmp(k->name, "PRIMARY") != 0))
        return false;
    if (best->name == NULL)
        return true;
    if (strcmp(best->name, "PRIMARY") == 0)
        return false;
    return strcmp(k->name, "PRIMARY") == 0 || strcmp(k->name, best->name) < 0;
}

static void consider(struct key *cur, struct key *best)
{
    if (cur->name != NULL && better_key(cur, best)) {
        key_free(best);
        *best = *cur;
    } else {
        key_free(cur);
    }
    memset(cur, 0, sizeof *cur);
}

static int plan_order(MYSQL *meta, const struct source_cfg *cfg, const char *qname,
                      struct my_rows_plan *p, char **order_cols, char **key_col, sc_err *err)
{
    char *sql = xasprintf("SHOW INDEX FROM %s", qname);
    MYSQL_RES *res;
    int rc = my_query(meta, cfg, sql, &res, err);
    free(sql);
    if (rc != 0)
        return rc;
    /* Table, Non_unique, Key_name, Seq_in_index, Column_name, Collation,
     * Cardinality, Sub_part, Packed, Null, Index_type, ... (by key, seq) */
    struct key cur = {0}, best = {0};
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (row[2] == NULL || row[4] == NULL)
            continue;
        if (cur.name == NULL || strcmp(cur.name, row[2]) != 0) {
            consider(&cur, &best);
            cur.name = xstrdup(row[2]);
            cur.unique = row[1] != NULL && strcmp(row[1], "0") == 0;
            cur.hash = row[10] != NULL && strcmp(row[10], "HASH") == 0;
        }
        char *id = my_ident(row[4]);
        if (cur.first == NULL)
            cur.first = xstrdup(row[4]);
        cur.ncols++;
        if (cur.cols != NULL)
            append(&cur.cols, ",");
        append(&cur.cols, id);
        free(id);
        cur.nullable |= row[9] != NULL && strcmp(row[9], "YES") == 0;
    }
    consider(&cur, &best);
    mysql_free_result(res);
    if (best.name != NULL) {
        p->order = strcmp(best.name, "PRIMARY") == 0 ? xstrdup("PRIMARY KEY")
                                                     : xasprintf("unique key %s", best.name);
        *order_cols = best.cols;
        best.cols = NULL;
        if (best.ncols == 1) {
            *key_col = best.first;
            best.first = NULL;
        }
    }
    key_free(&best);
    return 0;
}

int my_rows_plan(MYSQL *meta, const struct source_cfg *cfg, const char *db, const char *table,
                 struct my_rows_plan *p, sc_err *err)
{
    memset(p, 0, sizeof *p);
    char *qname = my_qualified(db, table), *tid = my_ident(table);
    char *select_cols = NULL, *insert_cols = NULL, *order_cols = NULL, *key_col = NULL;
    int rc = plan_order(meta, cfg, qname, p, &order_cols, &key_col, err);
    if (rc == 0)
        rc = plan_columns(meta, cfg, qname, key_col, p, &select_cols, &insert_cols, err);
    if (rc == 0 && p->ncols > 0) {
        p->qname = xstrdup(qname);
        p->select_head =
            xasprintf("SELECT /*!40001 SQL_NO_CACHE */ %s FROM %s", select_cols, qname);
        p->order_by = order_cols ? xasprintf(" ORDER BY %s", order_cols) : xstrdup("");
        p->select_sql = xasprintf("%s%s", p->select_head, p->order_by);
        p->insert_head = xasprintf("INSERT INTO %s (%s) VALUES\n", tid, insert_cols);
    }
    free(key_col);
    free(select_cols);
    free(insert_cols);
    free(order_cols);
    free(qname);
    free(tid);
    if (rc != 0)
        my_rows_plan_free(p);
    return rc;
}

void my_rows_plan_free(struct my_rows_plan *p)
{
    free(p->select_sql);
    free(p->insert_head);
    free(p->order);
    free(p->select_head);
    free(p->order_by);
    free(p->range_col);
    free(p->qname);
    memset(p, 0, sizeof *p);
}

/* ---- chunks: key ranges ---------------------------------------------------- */

/* A key as its type holds it: BIGINT or BIGINT UNSIGNED (the smaller
 * integer types fit in either). */
union ikey {
    int64_t s;
    uint64_t u;
};

static bool key_parse(const char *v, bool is_unsigned, union ikey *k)
{
    char *end;
    errno = 0;
    if (is_unsigned) {
        if (*v == '-')
            return false;
        k->u = (uint64_t)strtoull(v, &end, 10);
    } else {
        k->s = (int64_t)strtoll(v, &end, 10);
    }
    return errno == 0 && end != v && *end == '\0';
}

/* The cell of a key on the grid of multiples of w: floor(key / w). */
static union ikey key_cell(union ikey k, bool is_unsigned, uint64_t w)
{
    union ikey c;
    if (is_unsigned) {
        c.u = k.u / w;
    } else if (w > (uint64_t)INT64_MAX) {
        c.s = k.s < 0 ? -1 : 0;
    } else {
        int64_t sw = (int64_t)w;
        c.s = k.s / sw - (k.s % sw < 0 ? 1 : 0);
    }
    return c;
}

/* Cells from a to b (b >= a): the number of grid points in (lo, hi]. */
static uint64_t cells_between(union ikey a, union ikey b, bool is_unsigned)
{
    return is_unsigned ? b.u - a.u : (uint64_t)b.s - (uint64_t)a.s;
}

void my_chunk_plan(const char *min, const char *max, bool is_unsigned, uint64_t keys_per_chunk,
                   size_t max_chunks, struct my_chunks *c)
{
    c->n = 1;
    c->lo = xcalloc(1, sizeof *c->lo);
    union ikey lo, hi;
    if (min == NULL || max == NULL || keys_per_chunk == 0 || max_chunks < 2 ||
        !key_parse(min, is_unsigned, &lo) || !key_parse(max, is_unsigned, &hi) ||
        (is_unsigned ? hi.u < lo.u : hi.s < lo.s))
        return;
    /* The bounds are the multiples of w in (min, max]: fixed points of the
     * key space, so rows appended past max (or removed below min) only add
     * (or drop) ranges at the ends, and the rest of the dump keeps its
     * bytes. w doubles until there are at most max_chunks ranges. */
    uint64_t w = keys_per_chunk, n;
    for (;;) {
        n = cells_between(key_cell(lo, is_unsigned, w), key_cell(hi, is_unsigned, w), is_unsigned);
        if (n < max_chunks || w > UINT64_MAX / 2)
            break;
        w *= 2;
    }
    if (n == 0 || n >= max_chunks)
        return;
    union ikey first = key_cell(lo, is_unsigned, w);
    c->n = (size_t)n + 1;
    c->lo = xrealloc(c->lo, c->n * sizeof *c->lo);
    c->lo[0] = NULL;
    /* (first + i) * w lies in (min, max]: no overflow */
    for (size_t i = 1; i < c->n; i++)
        c->lo[i] = is_unsigned ? xasprintf("%" PRIu64, (first.u + i) * w)
                               : xasprintf("%" PRId64, w > (uint64_t)INT64_MAX
                                                           ? 0 /* the one multiple in range */
                                                           : (first.s + (int64_t)i) * (int64_t)w);
}

void my_chunks_free(struct my_chunks *c)
{
    for (size_t i = 0; c->lo != NULL && i < c->n; i++)
        free(c->lo[i]);
    free(c->lo);
    c->lo = NULL;
    c->n = 0;
}

char *my_chunk_select(const struct my_rows_plan *p, const struct my_chunks *c, size_t i)
{
    if (p->select_head == NULL)
        return NULL;
    if (c->n <= 1 || p->range_col == NULL)
        return xstrdup(p->select_sql);
    const char *k = p->range_col;
    if (i == 0)
        return xasprintf("%s WHERE %s < %s%s", p->select_head, k, c->lo[1], p->order_by);
    if (i + 1 == c->n)
        return xasprintf("%s WHERE %s >= %s%s", p->select_head, k, c->lo[i], p->order_by);
    return xasprintf("%s WHERE %s >= %s AND %s < %s%s", p->select_head, k, c->lo[i], k,
                     c->lo[i + 1], p->order_by);
}

int my_chunks_of(MYSQL *meta, const struct source_cfg *cfg, const struct my_rows_plan *p,
                 struct my_chunks *c, sc_err *err)
{
    if (p->range_col == NULL || p->select_head == NULL) {
        my_chunk_plan(NULL, NULL, false, 0, 0, c);
        return 0;
    }
    char *sql = xasprintf("SELECT MIN(%s), MAX(%s) FROM %s", p->range_col, p->range_col, p->qname);
    MYSQL_RES *res;
    int rc = my_query(meta, cfg, sql, &res, err);
    free(sql);
    if (rc != 0)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    my_chunk_plan(row && mysql_num_fields(res) == 2 ? row[0] : NULL,
                  row && mysql_num_fields(res) == 2 ? row[1] : NULL, p->range_unsigned,
                  MY_CHUNK_KEYS, MY_MAX_CHUNKS, c);
    mysql_free_result(res);
    return 0;
}

/* ---- streaming ------------------------------------------------------------ */

/* Encode one row as "(v1,v2,...)" into *buf. */
static int encode_row(struct my_rows_job *j, MYSQL_ROW row, const unsigned long *lengths,
                      const enum my_enc *enc, unsigned n, char **buf, size_t *len, size_t *cap,
                      const MYSQL_FIELD *fields)
{
    *len = 0;
    reserve(buf, len, cap, 2);
    (*buf)[(*len)++] = '(';
    for (unsigned i = 0; i < n; i++) {
        if (i > 0) {
            reserve(buf, len, cap, 1);
            (*buf)[(*len)++] = ',';
        }
        if (row[i] == NULL) {
            reserve(buf, len, cap, 4);
            memcpy(*buf + *len, "NULL", 4);
            *len += 4;
            continue;
        }
        if (my_encode_value(enc[i], row[i], lengths[i], buf, len, cap) != 0)
            return sc_fail(j->err, SC_ESOURCE,
                           "mysql %s: %s: column %s holds '%.40s', which is not a number",
                           j->cfg->name, j->label, fields[i].name, row[i]);
    }
    reserve(buf, len, cap, 1);
    (*buf)[(*len)++] = ')';
    return 0;
}

/* Append a row to the INSERT being built, starting a new one when this row
 * would take it past max_insert. *stmt is the open statement's length. */
static int emit_row(struct my_rows_job *j, const char *rowtext, size_t rowlen, size_t *stmt)
{
    static const char end[] = ";\n", sep[] = ",\n";
    struct my_out *o = j->out;
    if (*stmt > 0 && *stmt + 2 + rowlen + 2 > j->max_insert) {
        if (my_out_write(o, end, 2) != 0)
            return j->err->code;
        if (*stmt + 2 > j->max_stmt)
            j->max_stmt = *stmt + 2;
        *stmt = 0;
    }
    int rc;
    if (*stmt == 0) {
        rc = my_out_puts(o, j->plan->insert_head);
        *stmt = strlen(j->plan->insert_head);
    } else {
        rc = my_out_write(o, sep, 2);
        *stmt += 2;
    }
    if (rc == 0)
        rc = my_out_write(o, rowtext, rowlen);
    *stmt += rowlen;
    return rc;
}

static void progress(struct my_rows_job *j, long long *last)
{
    /* the cheap test first: log_progress_enabled() is a system call */
    if (j->quiet || j->rows % PROGRESS_EVERY_ROWS != 0 || !log_progress_enabled())
        return;
    long long t = now_ms();
    if (t - *last < PROGRESS_EVERY_MS)
        return;
    *last = t;
    log_progress("mysql %s: %s: %lld rows", j->cfg->name, j->label, j->rows);
}

/* The fetch loop. Returns 0, or an error with the result still open. */
static int fetch_rows(struct my_rows_job *j, MYSQL_RES *res)
{
    unsigned n = mysql_num_fields(res);
    const MYSQL_FIELD *fields = mysql_fetch_fields(res);
    enum my_enc *enc = xmalloc(n * sizeof *enc);
    for (unsigned i = 0; i < n; i++)
        enc[i] = my_encoding_of(&fields[i]);
    char *buf = NULL;
    size_t len = 0, cap = 0, stmt = 0;
    long long last = 0;
    int rc = 0;
    MYSQL_ROW row;
    while (rc == 0 && (row = mysql_fetch_row(res)) != NULL) {
        const unsigned long *lengths = mysql_fetch_lengths(res);
        rc = encode_row(j, row, lengths, enc, n, &buf, &len, &cap, fields);
        if (rc == 0)
            rc = emit_row(j, buf, len, &stmt);
        /* A worker leaves the signal flag to the main thread, which
         * passes a stop on through cancel. */
        if (rc == 0 && j->cancel == NULL && sc_stop_requested)
            rc = sc_fail(j->err, SC_EINTR, "mysql %s: interrupted while reading %s", j->cfg->name,
                         j->label);
        if (rc == 0 && j->cancel != NULL && atomic_load_explicit(j->cancel, memory_order_relaxed))
            rc = sc_fail(j->err, SC_ESOURCE,
                         "mysql %s: stopped reading %s (another connection failed)", j->cfg->name,
                         j->label);
        if (rc == 0) {
            j->rows++;
            progress(j, &last);
        }
    }
    /* NULL ends the rows and also reports a failure: a lost connection, a
     * net_write_timeout, a killed query. Any of them is fatal. */
    if (rc == 0 && mysql_errno(j->data) != 0)
        rc = my_fail(j->data, j->cfg, j->err, "reading %s (after %lld rows)", j->label, j->rows);
    if (rc == 0 && stmt > 0) {
        rc = my_out_write(j->out, ";\n", 2);
        if (stmt + 2 > j->max_stmt)
            j->max_stmt = stmt + 2;
    }
    if (rc == 0 && (unsigned long long)j->rows != mysql_num_rows(res))
        rc = sc_fail(j->err, SC_ESOURCE, "mysql %s: %s: %llu rows fetched but %lld written",
                     j->cfg->name, j->label, (unsigned long long)mysql_num_rows(res), j->rows);
    free(buf);
    free(enc);
    return rc;
}

int my_release_table(MYSQL *m, const struct source_cfg *cfg, const char *label, sc_err *err)
{
    static const char sql[] = "ROLLBACK TO SAVEPOINT stagecoach";
    if (mysql_real_query(m, sql, sizeof sql - 1) != 0)
        return my_fail(m, cfg, err, "after reading %s: %s", label, sql);
    return 0;
}

int my_rows_dump(struct my_rows_job *j)
{
    j->rows = 0;
    const char *sql = j->select_sql != NULL ? j->select_sql : j->plan->select_sql;
    if (sql == NULL)
        return 0; /* no column to insert */
    if (mysql_real_query(j->data, sql, strlen(sql)) != 0)
        return my_fail(j->data, j->cfg, j->err, "reading %s", j->label);
    MYSQL_RES *res = mysql_use_result(j->data);
    if (res == NULL)
        return my_fail(j->data, j->cfg, j->err, "reading %s", j->label);
    int rc = fetch_rows(j, res);
    /* After a failure the rest of the rows must not be drained (that
     * could mean reading a whole table): cancel the connection first, the
     * dump fails anyway. */
    if (rc != 0)
        mariadb_cancel(j->data);
    mysql_free_result(res);
    if (!j->quiet)
        log_progress_done();
    return rc;
}
