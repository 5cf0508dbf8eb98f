/* verify: re-hash a local set (--set), or read a snapshot back and check it
 * (--snapshot); src/pipeline/verify.h says how. */
#include "../pipeline/verify.h"
#include "cmd.h"

static int cmd_verify(struct ctx *c, int argc, char **argv, sc_err *err)
{
    struct verify_opts o = {0};
    const struct opt opts[] = {{"set", &o.set},
                               {"snapshot", &o.snapshot},
                               {"identity", &o.identity},
                               {"passphrase-file", &o.passphrase_file},
                               {NULL, NULL}};
    if (opts_parse(argc, argv, opts, err) != 0)
        return err->code;
    if (o.set && o.snapshot)
        return sc_fail(err, SC_EUSAGE, "verify takes --set or --snapshot, not both");
    if (o.snapshot)
        return verify_remote_snapshot(c, &o, err);
    return verify_local_set(c, &o, err);
}

const struct command command_verify = {
    .name = "verify",
    .run = cmd_verify,
    .usage =
        "verify [--set ID|latest] [--snapshot ID|latest] [--identity FILE] [--passphrase-file F]",
    .summary = "re-hash a local set, or read a snapshot back and verify it",
    .help = "Checks every file of a local set against its manifest and B2SUMS (exit 7\n"
            "names a damaged file), or restores a snapshot into private scratch space and\n"
            "checks it the same way. For an encrypted set with a key, the plaintext is\n"
            "checked too; nothing decrypted is written.",
    .options = "  --set ID|latest        a local set (the default: latest)\n"
               "  --snapshot ID|latest   a snapshot in the repository instead\n"
               "  --identity FILE        the secret key of an encrypted set ([staging] identity)\n"
               "  --passphrase-file F    the identity's passphrase (else [staging] "
               "passphrase_file, else asked)",
    .example = "stagecoach verify --set latest\n"
               "stagecoach verify --snapshot latest --identity /root/staging.key",
    .needs_config = true,
};
