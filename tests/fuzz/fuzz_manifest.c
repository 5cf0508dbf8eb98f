/* libFuzzer target: MANIFEST.json and B2SUMS parsers (they read sets that may
 * come back from a repository someone else can write to). Whatever they
 * accept must be safe to use as paths inside a set. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/stage/manifest.h"

static void check_manifest(const uint8_t *data, size_t size)
{
    json_t *m = NULL;
    sc_err err = {0};
    if (manifest_parse((const char *)data, size, &m, &err) != 0) {
        if (err.code != SC_EVERIFY || m != NULL)
            __builtin_trap();
        return;
    }
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        if (p == NULL || !manifest_path_ok(p))
            __builtin_trap();
    }
    json_decref(m);
}

static void check_b2sums(const uint8_t *data, size_t size)
{
    json_t *map = NULL;
    sc_err err = {0};
    if (b2sums_parse((const char *)data, size, &map, &err) != 0) {
        if (err.code != SC_EVERIFY || map != NULL)
            __builtin_trap();
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v)
    {
        if (!manifest_path_ok(key) || strlen(json_string_value(v)) != 128)
            __builtin_trap();
    }
    json_decref(map);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_manifest(data, size);
    check_b2sums(data, size);
    return 0;
}
