#!/usr/bin/env bats
# Sealed staging: keygen, encrypted sets (no plaintext anywhere under the
# staging directory, b2sum -c still passes), verify with and without the
# identity, damage detection, the symmetric mode, and the configuration.

load restore_helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

@test "keygen: secret key 0600, public key 0644 in FILE.pub, both recognisable; never overwrites" {
    run --separate-stderr "$SC" keygen --out "$T/k"
    echo "$output$stderr"
    [ "$status" -eq 0 ]
    [ "$(stat -c %a "$T/k")" = 600 ]
    [ "$(stat -c %a "$T/k.pub")" = 644 ]
    [ "$(head -n 1 "$T/k")" = "stagecoach secret key 1" ]
    [ "$(head -n 1 "$T/k.pub")" = "stagecoach public key 1" ]
    local id
    id="$(sed -n 's/^id: //p' "$T/k.pub")"
    [[ "$id" =~ ^[0-9a-f]{16}$ ]]
    [ "$(sed -n 's/^id: //p' "$T/k")" = "$id" ]
    [[ "$output" == *"$id"* ]]
    # the public file holds no secret
    ! grep -q "$(sed -n 's/^x25519: //p' "$T/k")" "$T/k.pub"

    # a second keygen over it fails and changes nothing
    local before
    before="$(cat "$T/k" "$T/k.pub" | b2sum)"
    run --separate-stderr "$SC" keygen --out "$T/k"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"never overwrites"* ]]
    [ "$(cat "$T/k" "$T/k.pub" | b2sum)" = "$before" ]
    # nor when only the .pub is in the way
    echo "someone's key" >"$T/k2.pub"
    run --separate-stderr "$SC" keygen --out "$T/k2"
    [ "$status" -eq 1 ]
    [ ! -e "$T/k2" ]
    [ "$(cat "$T/k2.pub")" = "someone's key" ]

    # --json: the key id and both paths
    run --separate-stderr "$SC" --json keygen --out "$T/k3"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["public_key"]')" = "$T/k3.pub" ]
    [ "$(pyjson "$T/r.json" 'j["mode"]')" = x25519-sealed ]
    # usage
    run --separate-stderr "$SC" keygen
    [ "$status" -eq 2 ]
}

@test "keygen --passphrase-file: the secret key is sealed under Argon2id; verify needs the passphrase" {
    (umask 077 && printf 'a long passphrase\n' >"$T/pass")
    run --separate-stderr "$SC" keygen --out "$T/k" --passphrase-file "$T/pass"
    [ "$status" -eq 0 ]
    grep -q '^argon2id: ops=' "$T/k"
    refute grep -q '^x25519: ' "$T/k"
    # a passphrase file others can read is refused, and no key is written
    (umask 022 && printf 'visible\n' >"$T/pass-open")
    run --separate-stderr "$SC" keygen --out "$T/k-open" --passphrase-file "$T/pass-open"
    [ "$status" -eq 3 ]
    [ ! -e "$T/k-open" ]

    # a set sealed to it opens with the passphrase, from the option or the config
    staging_keys "encrypt = yes" "recipient = k.pub"
    stage_ok
    run --separate-stderr sc --json verify --identity "$T/k" --passphrase-file "$T/pass"
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["plaintext_checked"]')" = true ]
    STAGECOACH_STAGING_PASSPHRASE_FILE="$T/pass" run --separate-stderr sc verify --identity "$T/k"
    [ "$status" -eq 0 ]
    # a wrong passphrase: exit 3, said plainly
    (umask 077 && printf 'wrong\n' >"$T/wrong")
    run --separate-stderr sc verify --identity "$T/k" --passphrase-file "$T/wrong"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"wrong passphrase"* ]]
    # none at all and no terminal to ask on: exit 2 naming the way to give it
    run --separate-stderr setsid -w "$SC" -c "$CONF" verify --identity "$T/k" </dev/null
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--passphrase-file"* ]]
}

@test "encrypted stage: .enc files only, no plaintext anywhere under STAGING, b2sum -c passes" {
    # the grep finds the values in a plain set (so its silence below means something)
    stage_ok
    grep -rqa "$KNOWN_ROW" "$STAGING"
    rm -rf "$STAGING"

    use_encryption
    stage_ok
    [ "$(sc_tree "$SET")" = "$(printf '%s\n' B2SUMS MANIFEST.json paths/etc.tar.enc sqlite/app.db.enc)" ]
    refute grep -rqa "$KNOWN_ROW" "$STAGING"
    refute grep -rqa "$KNOWN_ENV" "$STAGING"
    refute grep -rqa "SQLite format 3" "$STAGING"
    [ "$(modes_of "$SET" | grep -c '^f 600 ')" -eq 4 ]
    b2sum_check "$SET"

    # the manifest: stored and plaintext hashes, and how it was encrypted
    local m="$SET/MANIFEST.json"
    [ "$(pyjson "$m" 'j["encrypted"]')" = true ]
    [ "$(pyjson "$m" 'j["encryption"]["format"]')" = stagecoach-enc/1 ]
    [ "$(pyjson "$m" 'j["encryption"]["mode"]')" = x25519-sealed ]
    [ "$(pyjson "$m" 'j["encryption"]["key_id"]')" = "$(sed -n 's/^id: //p' "$ID.pub")" ]
    [ "$(pyjson "$m" '[f["plaintext"]["path"] for f in j["files"]]')" = '["sqlite/app.db", "paths/etc.tar"]' ]
    # the plaintext hash is the hash of the database copy: decrypt and compare
    mkdir "$T/r"
    run --separate-stderr sc restore --set latest --to "$T/r/x" --identity "$ID"
    [ "$status" -eq 0 ]
    [ "$(b2sum "$T/r/x/sqlite/app.db" | cut -d' ' -f1)" = \
        "$(pyjson "$m" '[f for f in j["files"] if f["path"] == "sqlite/app.db.enc"][0]["plaintext"]["blake2b"]')" ]
    [ "$(pyjson "$m" '[f for f in j["files"] if f["path"] == "sqlite/app.db.enc"][0]["plaintext"]["bytes"]')" = \
        "$(stat -c %s "$T/r/x/sqlite/app.db")" ]
    # the row counts are still recorded (from the checked plaintext copy)
    [ "$(pyjson "$m" '[s for s in j["sources"] if s["name"] == "app"][0]["tables"]["torrents"]')" = 1234 ]
}

@test "verify an encrypted set: without the identity the stored files, with it the plaintext too" {
    use_encryption
    stage_ok
    run --separate-stderr sc --json verify --set latest
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["plaintext_checked"]')" = false ]
    [[ "$stderr" == *"plaintext was not checked"* ]]
    run --separate-stderr sc --json verify --set latest --identity "$ID"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["plaintext_checked"]')" = true ]
    # [staging] identity does the same without the option
    staging_keys "identity = keys/id"
    run --separate-stderr sc --json verify
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["plaintext_checked"]')" = true ]
}

@test "verify: a wrong identity is a clear error (exit 1), not a checksum failure" {
    use_encryption
    stage_ok
    "$SC" keygen --out "$T/other" >/dev/null 2>&1
    run --separate-stderr sc verify --identity "$T/other"
    echo "$stderr"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"wrong identity"* ]]
    [[ "$stderr" == *"$(sed -n 's/^id: //p' "$ID.pub")"* ]]
    # the public key is not an identity
    cp "$ID.pub" "$T/pub-as-id" && chmod 600 "$T/pub-as-id"
    run --separate-stderr sc verify --identity "$T/pub-as-id"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"is a public key"* ]]
}

@test "verify: a flipped byte, a truncated file or two swapped files are caught (exit 7, named)" {
    use_encryption
    stage_ok
    cp -a "$SET" "$T/pristine"

    flip_byte "$SET/sqlite/app.db.enc"
    run --separate-stderr sc verify --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/app.db.enc"* ]]
    rm -rf "$SET" && cp -a "$T/pristine" "$SET"

    truncate -s -100 "$SET/paths/etc.tar.enc"
    run --separate-stderr sc verify
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"paths/etc.tar.enc"* ]]
    rm -rf "$SET" && cp -a "$T/pristine" "$SET"

    # swapped, with MANIFEST.json and B2SUMS rewritten to match: only the
    # name bound inside each file gives it away
    mv "$SET/sqlite/app.db.enc" "$T/a" && mv "$SET/paths/etc.tar.enc" "$SET/sqlite/app.db.enc" &&
        mv "$T/a" "$SET/paths/etc.tar.enc"
    forge_set "$SET" 'put_file("sqlite/app.db.enc", setdir + "/sqlite/app.db.enc"); put_file("paths/etc.tar.enc", setdir + "/paths/etc.tar.enc")'
    b2sum_check "$SET"
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 0 ] # every stored checksum agrees...
    run --separate-stderr sc verify --set latest --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 7 ] # ...but the contents are not where the manifest says
    [[ "$stderr" == *"files swapped"* ]]
}

@test "verify --snapshot on an encrypted snapshot: read back from restic, decrypted, checked" {
    template_repo_use
    use_encryption
    run_ok
    run --separate-stderr sc --json verify --snapshot latest --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["snapshot"]')" = "$SNAP" ]
    [ "$(pyjson "$T/r.json" 'j["plaintext_checked"]')" = true ]
    refute compgen -G "$STAGING/.verify-*"

    # a set damaged on the staging disk, then backed up: caught from the repository
    flip_byte "$SET/paths/etc.tar.enc"
    restic_ship "$SET"
    run --separate-stderr sc verify --snapshot latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"paths/etc.tar.enc"* ]]
}

@test "symmetric mode (key_file): stage, verify and restore with the one key" {
    run --separate-stderr "$SC" keygen --symmetric --out "$T/sym.key"
    [ "$status" -eq 0 ]
    [ "$(stat -c %a "$T/sym.key")" = 600 ]
    [ ! -e "$T/sym.key.pub" ]
    staging_keys "encrypt = yes" "key_file = sym.key"
    stage_ok
    [ "$(pyjson "$SET/MANIFEST.json" 'j["encryption"]["mode"]')" = symmetric ]
    refute grep -rqa "$KNOWN_ROW" "$STAGING"
    # the configured key_file opens it: no --identity needed
    run --separate-stderr sc --json verify
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["plaintext_checked"]')" = true ]
    run --separate-stderr sc restore --set latest --to "$T/out"
    [ "$status" -eq 0 ]
    diff <(sqlite3 "$T/out/sqlite/app.db" .dump) <(sqlite3 "$DB" .dump)
    # 32 raw random bytes are a key file too
    head -c 32 /dev/urandom >"$T/raw.key" && chmod 600 "$T/raw.key"
    sed -i 's|^key_file = .*|key_file = raw.key|' "$CONF"
    stage_ok
    run --separate-stderr sc verify
    [ "$status" -eq 0 ]
    # a key file others can read is refused before anything is staged
    chmod 644 "$T/raw.key"
    local before
    before="$(sc_sets | wc -l)"
    run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [ "$(sc_sets | wc -l)" -eq "$before" ]
}

@test "config: encrypt = yes needs one key; a wrong key file stops stage before it writes" {
    staging_keys "encrypt = yes"
    run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"recipient"* ]]
    staging_keys "recipient = keys/id.pub" "key_file = sym.key"
    run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"not both"* ]]
    sed -i '/^key_file = /d' "$CONF"
    # the recipient file is missing
    run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [ -z "$(sc_sets)" ]
    # the secret key named as recipient: refused, the secret half stays secret
    mkdir -p "$T/keys" && "$SC" keygen --out "$T/keys/id" >/dev/null 2>&1
    sed -i 's|^recipient = .*|recipient = keys/id|' "$CONF"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"not a public key"* ]]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    # a recipient without encrypt = yes: a warning, and a plain set
    sed -i '/^encrypt = yes$/d; s|^recipient = .*|recipient = keys/id.pub|' "$CONF"
    stage_ok
    [[ "$stderr" == *"encrypt = no"* ]]
    [ -e "$SET/sqlite/app.db" ]
}
