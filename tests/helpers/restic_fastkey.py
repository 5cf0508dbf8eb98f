#!/usr/bin/env python3
"""Re-wrap the key of a local restic repository with cheap scrypt parameters.

    restic_fastkey.py REPO PASSWORD_FILE

restic calibrates its key derivation at `init` to take about half a second,
and pays it on every command: a stagecoach `run` opens the repository six
times. Tests that need many runs (the crash test) re-wrap the repository's
key with N=1024, r=8, p=1: the same master key, the same repository, only
the password-to-key step gets cheaper. Nothing in stagecoach sees the
difference.

The key file format (restic design document, "Keys, Encryption and MAC"):
JSON with kdf "scrypt", N, r, p, salt and data; scrypt(password, salt)
gives 64 bytes = AES-256 key || Poly1305-AES key (k: 16 bytes, r: 16 bytes);
data = IV || AES-256-CTR(master key JSON) || Poly1305-AES MAC of the
ciphertext. A key file is named by the SHA-256 of its content.

Exit 0 when re-wrapped, 3 when the cryptography module is missing (the
repository is then left as it was, and still works, only slower).
"""
import base64
import hashlib
import json
import os
import sys

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.poly1305 import Poly1305
except ImportError:
    print("restic_fastkey: python3 cryptography module missing; key left as is", file=sys.stderr)
    sys.exit(3)

N, R, P = 1024, 8, 1


def derive(password, salt, n, r, p):
    k = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=1 << 30, dklen=64)
    return k[:32], k[32:48], k[48:64]


def aes_ecb_block(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def mac(ciphertext, nonce, mk, mr):
    # Poly1305-AES: r, then s = AES_k(nonce); the Poly1305 code clamps r.
    return Poly1305.generate_tag(mr + aes_ecb_block(mk, nonce), ciphertext)


def ctr(key, nonce, data):
    c = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return c.update(data) + c.finalize()


def main():
    repo, pwfile = sys.argv[1], sys.argv[2]
    with open(pwfile, "rb") as f:
        password = f.read().rstrip(b"\r\n")
    keydir = os.path.join(repo, "keys")
    names = os.listdir(keydir)
    if len(names) != 1:
        sys.exit("restic_fastkey: expected one key in %s, found %d" % (keydir, len(names)))
    path = os.path.join(keydir, names[0])
    with open(path) as f:
        key = json.load(f)
    data = base64.b64decode(key["data"])
    nonce, ct, tag = data[:16], data[16:-16], data[-16:]
    ek, mk, mr = derive(password, base64.b64decode(key["salt"]), key["N"], key["r"], key["p"])
    if mac(ct, nonce, mk, mr) != tag:
        sys.exit("restic_fastkey: wrong password for %s" % path)
    master = ctr(ek, nonce, ct)
    json.loads(master)  # a master key is JSON; anything else is a bug here

    salt = os.urandom(64)
    nonce = os.urandom(16)
    ek, mk, mr = derive(password, salt, N, R, P)
    ct = ctr(ek, nonce, master)
    key.update(N=N, r=R, p=P, salt=base64.b64encode(salt).decode(),
               data=base64.b64encode(nonce + ct + mac(ct, nonce, mk, mr)).decode())
    text = json.dumps(key).encode()
    newpath = os.path.join(keydir, hashlib.sha256(text).hexdigest())
    with open(newpath + ".tmp", "wb") as f:
        f.write(text)
    os.chmod(newpath + ".tmp", 0o400)
    os.rename(newpath + ".tmp", newpath)
    if newpath != path:
        os.unlink(path)


main()
