/* config check | show: validate without touching the system; print the
 * effective configuration with secrets redacted. */
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../source/source.h"
#include "cmd.h"

static int cmd_config(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (argc != 2 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "show") != 0))
        return sc_fail(err, SC_EUSAGE, "usage: stagecoach config check|show");
    struct config_problems probs = {0};
    int rc = config_load(&c->cfg, c->config_path, &source_kinds, &probs, err);
    c->config_loaded = true;
    if (rc != 0) {
        for (size_t i = 0; i < probs.msgs.n; i++)
            log_error("%s", probs.msgs.v[i]);
        log_error("%s: %zu problem%s", c->cfg.file ? c->cfg.file : "(environment)", probs.msgs.n,
                  probs.msgs.n == 1 ? "" : "s");
        if (c->report) {
            json_t *list = json_array();
            for (size_t i = 0; i < probs.msgs.n; i++)
                json_array_append_new(list, json_string(probs.msgs.v[i]));
            json_object_set_new(c->report, "problems", list);
        }
        c->error_shown = true;
    } else if (strcmp(argv[1], "show") == 0) {
        config_print(&c->cfg, stdout);
    } else if (!c->json) {
        printf("%s: ok (%zu source%s)\n", c->cfg.file ? c->cfg.file : "(environment)",
               c->cfg.nsources, c->cfg.nsources == 1 ? "" : "s");
    }
    config_problems_free(&probs);
    return rc;
}

const struct command command_config = {
    .name = "config",
    .label = "config check|show",
    .run = cmd_config,
    .usage = "config check|show",
    .summary = "validate the configuration, or print it with secrets redacted",
    .help = "check: read and validate the configuration (syntax and values, every problem\n"
            "with file, line and key) without touching the system; that is doctor's job.\n"
            "show: print the effective configuration (file, environment overrides,\n"
            "defaults) with secrets redacted.",
    .options = NULL,
    .example = "stagecoach -c /etc/stagecoach/stagecoach.conf config check\n"
               "stagecoach config show",
    .needs_config = false,
};
