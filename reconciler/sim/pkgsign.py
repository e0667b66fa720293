"""Repository signatures as pkg(8) makes and checks them with an RSA key (signature_type pubkey).

freebsd/pkg, libpkg/pkgsign_ossl.c and pkg_repo.c (docs/freebsd-commands.md):

- ``pkg repo DIR KEY`` signs every catalogue archive it packs (packagesite,
  data): a ``signature`` member ahead of the catalogue, holding the RSA
  signature (PKCS#1 v1.5) of the SHA-256 *hex string* of the catalogue,
  hashed again with SHA-256 (ossl_sign with OpenSSL 3: ``pkg_checksum_file``
  hex, then ``ossl_sign_data`` hashes it raw), with the NUL terminator pkg
  has always appended (``*siglen += 1``);
- a client with ``signature_type: "pubkey"`` refuses a catalogue without a
  signature ("No signature found in the repository.  Can not validate
  against KEY key."), without a ``pubkey`` ("No PUBKEY defined. Removing
  repository."), or whose signature the key does not verify ("KEY:
  signature verification failure", then "Invalid signature, removing
  repository."); the trailing NUL is dropped before verifying (ossl_verify).

The keys are real RSA keys and the signatures real ones: this machine's
``openssl`` does the arithmetic (``dgst -sha256 -sign`` / ``-verify`` over
the hex string: the same PKCS#1 v1.5 SHA-256 signature pkg makes). The
simulated commands run without site-packages, so not through a Python
library.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

OPENSSL = "/usr/bin/openssl"
SIGNATURE_MEMBER = "signature"


class SignError(Exception):
    """The catalogue cannot be signed or verified; the message is pkg's."""


def _hex(catalogue: bytes) -> bytes:
    return hashlib.sha256(catalogue).hexdigest().encode()


def _openssl(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [OPENSSL, *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def sign(key_path: Path, catalogue: bytes) -> bytes:
    """The ``signature`` member for ``catalogue`` with the PEM private key at ``key_path``."""
    try:
        key_path.read_bytes()
    except OSError as exc:
        raise SignError(f"access({key_path}): {exc.strerror}") from exc
    return sign_file(key_path, catalogue) + b"\0"


def verify(pubkey: str, key_file: Path, signature: bytes | None, catalogue: bytes) -> None:
    """Raise SignError with pkg's words unless ``signature`` verifies with the key."""
    if not pubkey:
        raise SignError("No PUBKEY defined. Removing repository.")
    if signature is None:
        raise SignError(
            f"No signature found in the repository.  Can not validate against {pubkey} key."
        )
    try:
        key_file.read_bytes()
    except OSError as exc:
        raise SignError(f"ossl_verify(cannot read key): {exc.strerror}") from exc
    if not _verifies(key_file, signature.removesuffix(b"\0"), catalogue):
        raise SignError(
            f"{pubkey}: signature verification failure\n"
            "pkg: Invalid signature, removing repository."
        )


def sign_file(key_path: Path, data: bytes) -> bytes:
    """poudriere's sign_pkg pubkey: the raw RSA signature of ``data``'s SHA-256 hex string."""
    done = _openssl("dgst", "-sha256", "-sign", str(key_path), stdin=_hex(data))
    if done.returncode != 0 or not done.stdout:
        raise SignError(f"can't load key from {key_path}")
    return done.stdout


def verifies(key_file: Path, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (sign_file's) is the key's over ``data``: verify_pubsignature."""
    return key_file.is_file() and _verifies(key_file, signature, data)


def _verifies(key_file: Path, signature: bytes, data: bytes) -> bool:
    with tempfile.NamedTemporaryFile(prefix="pkgsig.") as sig:
        sig.write(signature)
        sig.flush()
        args = ("dgst", "-sha256", "-verify", str(key_file), "-signature", sig.name)
        return _openssl(*args, stdin=_hex(data)).returncode == 0


def new_key(private: Path, public: Path) -> None:
    """A 2048-bit RSA key pair in PEM: ``openssl genrsa``, then ``openssl rsa -pubout``."""
    private.parent.mkdir(parents=True, exist_ok=True)
    public.parent.mkdir(parents=True, exist_ok=True)
    for args in (
        ("genrsa", "-out", str(private), "2048"),
        ("rsa", "-in", str(private), "-pubout", "-out", str(public)),
    ):
        done = _openssl(*args, stdin=b"")
        if done.returncode != 0:
            raise SignError(done.stderr.decode(errors="replace").strip())
    private.chmod(0o400)
