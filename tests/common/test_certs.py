import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from common.certs import write_consortium_credentials


def test_server_certificate_is_signed_by_the_ca_for_the_given_hosts(tmp_path):
    write_consortium_credentials(tmp_path, ["127.0.0.1", "link.example.org"], [])

    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "superlink.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["link.example.org"]


def test_site_keys_are_p384_openssh_pairs_and_private_parts_are_owner_only(tmp_path):
    write_consortium_credentials(tmp_path, ["127.0.0.1"], ["hospital-a"])

    private = load_ssh_private_key((tmp_path / "sites" / "hospital-a").read_bytes(), None)
    public = load_ssh_public_key((tmp_path / "sites" / "hospital-a.pub").read_bytes())
    assert isinstance(private.curve, ec.SECP384R1)
    assert private.public_key().public_numbers() == public.public_numbers()
    assert (tmp_path / "sites" / "hospital-a").stat().st_mode & 0o077 == 0
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
