"""What a new password must be (NIST SP 800-63B, section 5.1.1.2): long enough, not common.

At least :data:`MIN_PASSWORD_LENGTH` characters, at most 72 bytes (bcrypt reads no more), and
not one of :data:`COMMON_PASSWORDS`, a small built-in list of the passwords most often found
in breach corpora (compared without regard to case). No composition rules: a long phrase
is a good password. Checked where a password is set (``users add``, ``users passwd``, the
explorer's Admin page), never at login.
"""

from __future__ import annotations

from metrics_toolkit.errors import UserError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt only reads the first 72 bytes; longer would be silently cut

#: The most common passwords of at least 8 characters in public breach lists (shorter ones
#: are refused by the length rule anyway).
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "password!",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "12345678",
        "123456789",
        "1234567890",
        "0123456789",
        "12344321",
        "87654321",
        "987654321",
        "11111111",
        "111111111",
        "00000000",
        "88888888",
        "12121212",
        "123123123",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1qaz2wsx",
        "zaq12wsx",
        "qwertyui",
        "qwertyuiop",
        "qwerty123",
        "qwerty12",
        "asdfghjkl",
        "asdfasdf",
        "zxcvbnm1",
        "abcd1234",
        "abc12345",
        "abc123456",
        "aa123456",
        "a1b2c3d4",
        "iloveyou",
        "iloveyou1",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "basketball",
        "superman",
        "starwars",
        "whatever",
        "trustno1",
        "letmein1",
        "welcome1",
        "welcome123",
        "changeme",
        "changeme1",
        "admin123",
        "administrator",
        "computer",
        "internet",
        "michelle",
        "jennifer",
        "charlie1",
        "sunshine1",
        "master123",
        "mustang1",
        "shadow12",
        "dragon12",
        "monkey123",
        "football1",
        "access14",
        "qazwsxedc",
        "1234qwer",
        "q1w2e3r4",
        "q1w2e3r4t5",
        "metrics-toolkit",
    }
)


def check_new_password(password: str) -> bytes:
    """``password`` as UTF-8 bytes, or a :class:`UserError` saying which rule it breaks."""
    encoded = password.encode("utf-8", "surrogatepass")
    if not encoded:
        raise UserError("The password must not be empty.")
    if len(password) < MIN_PASSWORD_LENGTH:
        msg = (
            f"The password is {len(password)} characters long; use at least "
            f"{MIN_PASSWORD_LENGTH} (a phrase of a few words is easy to remember)."
        )
        raise UserError(msg)
    if len(encoded) > MAX_PASSWORD_BYTES:
        msg = f"The password is {len(encoded)} bytes long; bcrypt allows at most 72."
        raise UserError(msg)
    if password.lower() in COMMON_PASSWORDS:
        raise UserError("That password is one of the most common ones; choose another.")
    return encoded
