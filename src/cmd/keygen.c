/* keygen: a staging key. By default an X25519 pair: the secret key in
 * --out FILE (0600) stays off the staging host, the public key in FILE.pub
 * is [staging] recipient. --symmetric writes one 32-byte key file instead
 * ([staging] key_file). Nothing is ever overwritten. The passphrase that may
 * protect a secret key comes from a file or the terminal, never argv. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/log.h"
#include "../stage/crypto.h"
#include "cmd.h"

static void report_key(struct ctx *c, const char *out, const struct crypto_keygen_opts *o,
                       const char *id)
{
    bool protect = o->passphrase_file != NULL || o->ask_passphrase;
    if (c->report) {
        json_object_set_new(c->report, "key_id", json_string(id));
        json_object_set_new(
            c->report, "mode",
            json_string(crypto_mode_name(o->symmetric ? CRYPTO_SYMMETRIC : CRYPTO_SEALED)));
        json_object_set_new(c->report, o->symmetric ? "key_file" : "secret_key", json_string(out));
        if (!o->symmetric) {
            char *pub = xasprintf("%s.pub", out);
            json_object_set_new(c->report, "public_key", json_string(pub));
            json_object_set_new(c->report, "passphrase", json_boolean(protect));
            free(pub);
        }
        return;
    }
    if (o->symmetric) {
        printf("symmetric key %s written to %s (0600)\n"
               "set [staging] encrypt = yes and key_file = %s; keep a copy off this host\n",
               id, out, out);
        return;
    }
    printf("key pair %s\n  secret key: %s (0600%s): keep it off the staging host\n"
           "  public key: %s.pub: set [staging] encrypt = yes and recipient = %s.pub\n",
           id, out, protect ? ", protected by a passphrase" : "", out, out);
}

static int cmd_keygen(struct ctx *c, int argc, char **argv, sc_err *err)
{
    struct crypto_keygen_opts o = {0};
    o.symmetric = opts_take_flag(&argc, argv, "symmetric");
    o.ask_passphrase = opts_take_flag(&argc, argv, "ask-passphrase");
    const char *out = NULL;
    const struct opt opts[] = {
        {"out", &out}, {"passphrase-file", &o.passphrase_file}, {NULL, NULL}};
    if (opts_parse(argc, argv, opts, err) != 0)
        return err->code;
    if (out == NULL)
        return sc_fail(err, SC_EUSAGE, "keygen needs --out FILE");
    if (o.ask_passphrase && o.passphrase_file)
        return sc_fail(err, SC_EUSAGE, "give --passphrase-file or --ask-passphrase, not both");
    if (c->dry_run) {
        printf("dry run: would write %s%s\n", out, o.symmetric ? "" : " and its .pub");
        return 0;
    }
    char id[CRYPTO_KEY_ID_HEX];
    if (crypto_keygen(out, &o, id, err) != 0)
        return err->code;
    log_info("wrote key %s to %s", id, out);
    report_key(c, out, &o, id);
    return 0;
}

const struct command command_keygen = {
    .name = "keygen",
    .run = cmd_keygen,
    .usage = "keygen --out FILE [--symmetric] [--passphrase-file F | --ask-passphrase]",
    .summary = "create a staging key pair (or a symmetric key) for encrypted sets",
    .help = "Writes a new X25519 key pair: the secret key in FILE (0600, keep it off the\n"
            "staging host), the public key in FILE.pub ([staging] recipient). With\n"
            "--symmetric, one key file instead ([staging] key_file). Never overwrites.",
    .options = "  --out FILE            where the (secret) key goes\n"
               "  --symmetric           one symmetric key instead of a pair\n"
               "  --passphrase-file F   protect the secret key with the passphrase in F\n"
               "  --ask-passphrase      ask for that passphrase on the terminal",
    .example = "stagecoach keygen --out /root/staging.key\n"
               "stagecoach keygen --symmetric --out /etc/stagecoach/staging.key",
    .needs_config = false,
};
