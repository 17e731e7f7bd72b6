"""Fake credentials in their real formats (checksums, DER structure): the detectors take them for
real, and none of them works anywhere. Placeholders as documentation writes them, beside them."""

from __future__ import annotations

import base64
import random
import textwrap

from playbook.scan.detect import checksummed_token

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def random_text(seed: int, n: int, alphabet: str = _ALNUM) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def github_token(seed: int = 1, prefix: str = "ghp_") -> str:
    """30 random characters and their CRC32 in base62, as GitHub issues them."""
    return checksummed_token(prefix, random_text(seed, 30))


def npm_token(seed: int = 2) -> str:
    return checksummed_token("npm_", random_text(seed, 30))


def fake_pem(seed: int = 3, label: str = "PRIVATE KEY", der_bytes: int = 1217) -> str:
    """A PEM block whose body is a DER SEQUENCE of `der_bytes` (2048-bit RSA in PKCS#8 is 1217)."""
    rng = random.Random(seed)
    length = der_bytes - 4
    der = bytes([0x30, 0x82]) + length.to_bytes(2, "big") + rng.randbytes(length)
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def real_format_secrets() -> dict[str, str]:
    """One value of every kind the scanner reports, each in its issuer's real format."""
    return {
        "aws-access-key-id": "AKIA" + random_text(4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        "google-api-key": "AIza" + random_text(5, 35, _ALNUM + "_-"),
        "github-token": "github_pat_" + random_text(6, 22) + "_" + random_text(7, 59),
        "npm-token": npm_token(),
        "slack-token": "xoxb-2941857630-5829104736-" + random_text(8, 24),
        "stripe-key": "sk_live_" + random_text(9, 24),
        "generic-secret": "Zx9Qm2Lp8Rt5Wv3Yb7Nc4Hd6Jf1Kg0sA",
    }


# What documentation, tests and key-parsing code hold in their place: none of it is a secret.
PLACEHOLDERS = {
    "aws-doc": "AKIAIOSFODNN7EXAMPLE",
    "aws-doc-2": "AKIAI44QH8DHBEXAMPLE",
    "aws-secret-doc": 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    "github-doc": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",  # no valid checksum
    "github-xs": "ghp_" + "x" * 36,
    "npm-no-checksum": "npm_" + random_text(10, 36),
    "google-xs": "AIza" + "SyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "google-your": "AIzaYOUR_API_KEY_HERE_0000000000000000",
    "slack-doc": "xoxb-your-bot-token-here-please-1234",
    "slack-short": "xoxb-1234-5678-abc",
    "stripe-xs": "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
    "stripe-your": "sk_live_YOUR_SECRET_KEY_GOES_HERE0",
    "generic-your": 'const apiKey = "<your-api-key-goes-here-0123ABCdefgh>";',
    "generic-example": 'password = "ExamplePassw0rdForDocsOnlyABCDEF12"',
    "pem-marker": "if (pem.startsWith('-----BEGIN PRIVATE KEY-----')) return parsePkcs8(pem);",
    "pem-dots": "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
    "pem-your": "-----BEGIN PRIVATE KEY-----\n<your private key>\n-----END PRIVATE KEY-----",
    "pem-short": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "pem-cut": fake_pem()[:300] + "\n-----END PRIVATE KEY-----",
    "pem-not-der": "-----BEGIN PRIVATE KEY-----\n"
    + base64.b64encode(b"this is not a key, only text that is long enough" * 2).decode()
    + "\n-----END PRIVATE KEY-----",
}
