/* libFuzzer target: the Torrust POC paths-file parser. Every accepted path is
 * trimmed, non-empty, not a comment and within bounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "../../src/source/paths/pathlist.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strvec out = {0};
    sc_err err = {0};
    if (pathlist_parse((const char *)data, size, &out, "fuzz", &err) == 0) {
        for (size_t i = 0; i < out.n; i++) {
            size_t n = strlen(out.v[i]);
            if (n == 0 || n > PATHLIST_MAX_PATH || out.v[i][0] == '#' || out.v[i][0] == ' ' ||
                out.v[i][n - 1] == ' ' || out.v[i][n - 1] == '\r')
                __builtin_trap();
        }
    } else if (err.code != SC_ESOURCE) {
        __builtin_trap();
    }
    strvec_free(&out);
    return 0;
}
