/* Key ranges of a table keyed by one integer column: bounds at the
 * multiples of a step between MIN and MAX of the key, the step doubling
 * until there are at most max_ranges. The bounds are fixed points of the
 * key space, so rows appended past MAX (or deleted below MIN) change only
 * the ranges at the ends, and every other data file keeps its bytes: restic
 * stores them once. Pure functions, unit-tested (tests/unit/test_postgresql.c). */
#include <stdio.h>
#include <stdlib.h>

#include "postgresql.h"

/* floor(a / b) for b > 0 (C division truncates towards zero). */
static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

void pg_range_single(struct pg_ranges *r)
{
    r->n = 1;
    r->lo = xcalloc(1, sizeof *r->lo);
}

void pg_range_plan(long long min, long long max, long long step, size_t max_ranges,
                   struct pg_ranges *r)
{
    if (step < 1)
        step = 1;
    if (max_ranges < 1)
        max_ranges = 1;
    if (max < min) {
        pg_range_single(r);
        return;
    }
    /* Bounds are the multiples k * step in (min, max]: there are
     * floor(max/step) - floor(min/step) of them. */
    for (;;) {
        unsigned long long bounds =
            (unsigned long long)(floor_div(max, step) - floor_div(min, step));
        if (bounds + 1 <= max_ranges || step > (1LL << 61)) {
            r->n = (size_t)bounds + 1;
            break;
        }
        step *= 2;
    }
    r->lo = xcalloc(r->n, sizeof *r->lo);
    long long first = floor_div(min, step);
    for (size_t i = 1; i < r->n; i++)
        r->lo[i] = (first + (long long)i) * step; /* in (min, max]: no overflow */
}

void pg_ranges_free(struct pg_ranges *r)
{
    free(r->lo);
    r->lo = NULL;
    r->n = 0;
}

char *pg_range_where(const struct pg_ranges *r, size_t i, const char *col)
{
    if (r->n <= 1)
        return xstrdup("");
    if (i == 0)
        return xasprintf(" WHERE %s < %lld", col, r->lo[1]);
    if (i == r->n - 1)
        return xasprintf(" WHERE %s >= %lld", col, r->lo[i]);
    return xasprintf(" WHERE %s >= %lld AND %s < %lld", col, r->lo[i], col, r->lo[i + 1]);
}
