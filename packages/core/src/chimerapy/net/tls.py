"""TLS for the control plane: self-signed identities, their fingerprints, and pinning.

The Manager serves HTTPS/WSS with a self-signed certificate that it creates once per logdir
(``<logdir>/.chimerapy/tls/``, folder 0700, files 0600) or that the user gives it. Nobody
vouches for such a certificate, so a Worker trusts it by its fingerprint, the SHA-256 of the
certificate (DER), written ``sha256:<64 hex digits>``: the join command carries it
(``cp-worker --fingerprint sha256:...``). A Worker's own file server gets a fresh certificate
per process whose fingerprint reaches the Manager over the pinned, authenticated WebSocket.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..private import private_folder, write_private

__all__ = ["Identity", "client_context", "create_identity", "ephemeral_server_context", "fingerprint_of", "load_identity",
           "load_or_create_identity", "parse_fingerprint", "peer_fingerprint", "pinned"]

PREFIX = "sha256:"
CERT_NAME = "manager.pem"
KEY_NAME = "manager.key"
VALIDITY = datetime.timedelta(days=3650)

#: Fingerprints of the Managers living in this process, by port, so local Workers pin them.
local_fingerprints: dict[int, str] = {}


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key (PEM files), and the certificate's fingerprint."""

    cert_path: Path
    key_path: Path
    fingerprint: str

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving this identity (TLS 1.2 or newer)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def fingerprint_of(der: bytes) -> str:
    """The fingerprint of a DER-encoded certificate: ``sha256:<hex>``."""
    return PREFIX + hashlib.sha256(der).hexdigest()


def parse_fingerprint(text: str) -> str:
    """Normalise a fingerprint given by a user (``sha256:`` prefix optional, colons and case ignored).

    Raises:
        ValueError: naming the expected form.
    """
    value = text.strip().lower()
    value = value.removeprefix(PREFIX)
    value = value.replace(":", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{text!r} is not a certificate fingerprint; expected sha256: followed by 64 hex "
                         "digits, as printed by the Manager")
    return PREFIX + value


def pinned(fingerprint: str) -> aiohttp.Fingerprint:
    """The aiohttp ``ssl=`` argument that accepts only the certificate with ``fingerprint``."""
    return aiohttp.Fingerprint(bytes.fromhex(parse_fingerprint(fingerprint)[len(PREFIX):]))


def client_context() -> ssl.SSLContext:
    """A client context that accepts any certificate: use only where the peer is checked otherwise
    (its fingerprint compared after the handshake, and the token proof bound to it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The fingerprint of the certificate the peer presented on this TLS connection."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return fingerprint_of(der) if der else None


def _new_certificate(common_name: str) -> tuple[bytes, bytes]:
    """A fresh self-signed ECDSA P-256 certificate and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def create_identity(folder: Path, *, common_name: str = "chimerapy-manager") -> Identity:
    """Create a self-signed identity in ``folder`` (made private: 0700, files 0600)."""
    private_folder(folder)
    cert_pem, key_pem = _new_certificate(common_name)
    key_path = write_private(folder / KEY_NAME, key_pem)
    cert_path = write_private(folder / CERT_NAME, cert_pem)
    return load_identity(cert_path, key_path)


def load_identity(cert_path: Path | str, key_path: Path | str) -> Identity:
    """The identity in these PEM files (raises ValueError for a file that holds no certificate)."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{cert_path} holds no PEM certificate: {error}") from None
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Identity(cert_path, key_path, fingerprint_of(der))


def load_or_create_identity(folder: Path, *, common_name: str = "chimerapy-manager") -> Identity:
    """The identity kept in ``folder`` (checked private), created on first use: a Manager restarted
    on the same logdir keeps its fingerprint, so its Workers' pins stay valid."""
    private_folder(folder)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    if cert_path.is_file() and key_path.is_file():
        return load_identity(cert_path, key_path)
    return create_identity(folder, common_name=common_name)


def ephemeral_server_context(common_name: str) -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate kept only in memory, and its fingerprint.

    The PEM files exist only for the instant :mod:`ssl` reads them, in a private temporary folder.
    """
    with tempfile.TemporaryDirectory(prefix="chimerapy-tls-") as folder:
        identity = create_identity(Path(folder), common_name=common_name)
        return identity.server_context(), identity.fingerprint
