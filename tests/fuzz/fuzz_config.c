/* libFuzzer target: the configuration loader (libinih plus our key tables,
 * line counting and validation). Input is written to a file because
 * config_load reads a path, as stagecoach does. A load either succeeds or
 * fails with exit 3 and at least one problem message. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/core/config.h"
#include "../../src/source/source.h"
#include "../../src/core/fs.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof path, "/tmp/fuzz_config.%ld.conf", (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct config cfg;
    struct config_problems probs = {0};
    sc_err err = {0};
    int rc = config_load(&cfg, path, &source_kinds, &probs, &err);
    if (rc != 0 && (rc != SC_ECONFIG || probs.msgs.n == 0))
        __builtin_trap();
    if (rc == 0 && (probs.msgs.n != 0 || cfg.nsources == 0))
        __builtin_trap();
    config_free(&cfg);
    config_problems_free(&probs);
    unlink(path);
    return 0;
}
