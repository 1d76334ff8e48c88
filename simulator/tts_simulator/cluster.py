"""The simulator as a cluster of The Things Network, for the local stack only.

The integration applies TTN's Fair Use Policy to servers under
``cloud.thethings.network`` reached over https on port 443, and nothing
configurable makes it treat another server so. The local stack therefore
serves the simulator over TLS as well, with a certificate for the TTN cluster
host names from a certificate authority made for the run, and starts Home
Assistant with two things that exist only there: ``REQUESTS_CA_BUNDLE``
(Home Assistant's own way to trust more authorities, ``homeassistant/util/
ssl.py``) naming certifi's authorities plus that one, and
``simulator/cluster_site/sitecustomize.py`` on its ``PYTHONPATH``, which
answers those host names (port 443) with the simulator's TLS port on
127.0.0.1 in aiohttp's resolver. The integration's validation of servers is
not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

# The Things Network's clusters (TTS docs concepts/ttn/addresses: eu1, nam1, au1).
TTN_CLUSTER_HOSTS: Final = tuple(
    f"{cluster}.cloud.thethings.network" for cluster in ("eu1", "nam1", "au1")
)
# The environment variable sitecustomize.py reads: "127.0.0.1:<TLS port>".
CLUSTER_ENV: Final = "TTS_SIMULATOR_CLUSTER"
SITE_DIR: Final = Path(__file__).resolve().parents[1] / "cluster_site"


@dataclass(frozen=True)
class ClusterTLS:
    """The simulator's TLS port, certificate and key, and the authorities to trust."""

    port: int
    cert: Path
    key: Path
    ca_bundle: Path

    def hass_env(self, host: str) -> dict[str, str]:
        """Home Assistant's environment for reaching the cluster at host:port."""
        return {
            CLUSTER_ENV: f"{host}:{self.port}",
            "PYTHONPATH": str(SITE_DIR),
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
        }


def make_cluster_tls(work_dir: Path, port: int) -> ClusterTLS:
    """A certificate authority of this run and a certificate for the TTN hosts."""
    import certifi
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    work_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TTS simulator CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TTN_CLUSTER_HOSTS[0])])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host) for host in TTN_CLUSTER_HOSTS]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = work_dir / "cluster.pem", work_dir / "cluster.key"
    bundle = work_dir / "ca-bundle.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    bundle.write_bytes(
        Path(certifi.where()).read_bytes()
        + b"\n"
        + ca.public_bytes(serialization.Encoding.PEM)
    )
    return ClusterTLS(port, cert_path, key_path, bundle)
