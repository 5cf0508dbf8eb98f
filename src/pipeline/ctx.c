#include "ctx.h"

#include "../core/fs.h"
#include "../core/lock.h"

int ctx_lock(struct ctx *c, int *fd, sc_err *err)
{
    if (fs_mkdir_p(c->cfg.staging.dir, 0700, err) != 0)
        return err->code;
    return lock_take(c->cfg.staging.dir, fd, err);
}
