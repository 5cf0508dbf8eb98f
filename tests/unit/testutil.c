#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/xalloc.h"
#include "../../src/source/source.h"
#include "../../src/stage/set.h"

char *tu_mkdtemp(const char *name)
{
    char *dir = xasprintf("/tmp/sc-test-%s-XXXXXX", name);
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return NULL;
    }
    return dir;
}

char *tu_tmpdir(const char *name)
{
    char *dir = tu_mkdtemp(name);
    assert_non_null(dir);
    return dir;
}

void tu_rmdir(char *dir)
{
    if (dir != NULL)
        fs_rm_rf(dir);
    free(dir);
}

char *tu_write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = path_join(dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return path;
}

int tu_stage_one(const char *staging, const struct source_cfg *c, char **setdir, json_t **entry,
                 sc_err *err)
{
    struct set set;
    *setdir = NULL;
    *entry = NULL;
    int rc = set_create(&set, staging, err);
    if (rc == 0) {
        json_t *e = set_begin_source(&set, c->name, c->kind);
        rc = source_of(c)->stage(c, &set, e, err);
        if (rc == 0)
            rc = set_publish(&set, err);
        if (rc == 0) {
            *setdir = xstrdup(set.finaldir);
            *entry = json_incref(e);
        }
    }
    set_discard(&set);
    return rc;
}

int tu_load_config(const char *text, struct config *cfg, struct config_problems *probs)
{
    char *dir = tu_tmpdir("conf");
    char *path = tu_write_file(dir, "stagecoach.conf", text, 0600);
    sc_err err = {0};
    int rc = config_load(cfg, path, &source_kinds, probs, &err);
    free(path);
    tu_rmdir(dir);
    return rc;
}

bool tu_has_problem(const struct config_problems *p, const char *needle)
{
    for (size_t i = 0; i < p->msgs.n; i++)
        if (strstr(p->msgs.v[i], needle) != NULL)
            return true;
    return false;
}
