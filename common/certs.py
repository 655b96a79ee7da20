"""Certificates and keys for a consortium: a CA, the SuperLink's TLS certificate, site keys.

The CA signs the SuperLink's server certificate (with subject alternative names for the
addresses sites connect to). Each site gets an ECDSA P-384 key pair in OpenSSH format, which
Flower uses for SuperNode authentication: the coordinator registers the public key, the site
keeps the private key.
"""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common import atomic


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "privsynth consortium"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool) -> None:
    atomic.write_bytes(path, data)
    path.chmod(0o600 if private else 0o644)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_consortium_credentials(
    out_dir: Path, hosts: list[str], sites: list[str], days: int = 365
) -> list[Path]:
    """Write ca.crt/ca.key, superlink.crt/superlink.key and sites/NAME(.pub); returns paths."""
    out_dir = Path(out_dir)
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("privsynth consortium CA"))
        .issuer_name(_name("privsynth consortium CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA384())
    )
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA384())
    )
    written = []
    for name, data, private in (
        ("ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM), False),
        ("ca.key", _key_pem(ca_key), True),
        ("superlink.crt", server_cert.public_bytes(serialization.Encoding.PEM), False),
        ("superlink.key", _key_pem(server_key), True),
    ):
        _write(out_dir / name, data, private)
        written.append(out_dir / name)
    for site in sites:
        key = ec.generate_private_key(ec.SECP384R1())
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        _write(out_dir / "sites" / site, private, private=True)
        _write(out_dir / "sites" / f"{site}.pub", public + b"\n", private=False)
        written += [out_dir / "sites" / site, out_dir / "sites" / f"{site}.pub"]
    return written
