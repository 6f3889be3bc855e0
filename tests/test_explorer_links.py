"""Issue 14's pure parts: session tokens, view links, roles in the store and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner

from metrics_toolkit.cli import main
from metrics_toolkit.explorer.links import from_params, to_params
from metrics_toolkit.explorer.sessions import (
    COOKIE,
    Revoked,
    cookie_script,
    issue_token,
    new_secret,
    verify_token,
)

NOW = datetime(2026, 11, 15, 16, 31, tzinfo=UTC)
HASHES = {"alice": "$2b$12$alicehash", "bob": "$2b$12$bobhash"}
STRONG = "correct horse battery staple 42"


def verify(
    secret: bytes, token: str, *, now: datetime = NOW, hashes: dict[str, str] = HASHES
) -> str | None:
    return verify_token(secret, token, hashes.get, now=now)


# --------------------------------------------------------------------------------------
# Session tokens


def test_a_token_names_its_user_until_it_expires() -> None:
    secret = new_secret()
    token = issue_token(secret, "alice", HASHES["alice"], now=NOW)
    assert verify(secret, token) == "alice"
    assert verify(secret, token, now=NOW + timedelta(hours=11, minutes=59)) == "alice"
    assert verify(secret, token, now=NOW + timedelta(hours=12)) is None  # expired
    assert "correct" not in token and HASHES["alice"] not in token  # no secret inside


def test_a_token_cannot_be_forged_moved_or_outlive_its_password() -> None:
    secret = new_secret()
    token = issue_token(secret, "alice", HASHES["alice"], now=NOW)
    name, expiry, signature = token.split(".")
    bob = issue_token(secret, "bob", HASHES["bob"], now=NOW).split(".")[0]
    assert verify(secret, f"{bob}.{expiry}.{signature}") is None  # another user
    assert verify(secret, f"{name}.{int(expiry) + 86_400}.{signature}") is None  # extended
    assert verify(new_secret(), token) is None  # another server process
    assert verify(secret, token, hashes={"alice": "$2b$12$changed"}) is None  # new password
    assert verify(secret, token, hashes={}) is None  # user removed
    for junk in ("", "a.b", "a.b.c", "!!.9999999999.00", f"{name}.{expiry}"):
        assert verify(secret, junk) is None


def test_revoked_tokens_and_the_cookie_script() -> None:
    revoked = Revoked()
    revoked.add("x.1.ab")
    assert "x.1.ab" in revoked and "y.1.ab" not in revoked
    token = issue_token(new_secret(), "a'lice</script>", "h", now=NOW)
    script = cookie_script(token)
    assert f"{COOKIE}={token};" in script and "SameSite=Strict" in script
    assert "</script>" not in script.removesuffix("</script>")  # the name is base64url
    assert "Max-Age=0" in cookie_script(None)
    with pytest.raises(ValueError):
        cookie_script("a'; alert(1); '")


# --------------------------------------------------------------------------------------
# Links


def params_getter(params: dict[str, str | list[str]]) -> Callable[[str], list[str]]:
    def get_all(name: str) -> list[str]:
        value = params.get(name, [])
        return [value] if isinstance(value, str) else list(value)

    return get_all


def test_a_view_round_trips_through_its_link() -> None:
    state = {
        "range": "custom",
        "days": (date(2026, 11, 1), date(2026, 11, 7)),
        "hosts": ["db-1", "web 1&x"],
        "metrics": ["cpu.usage_percent"],
        "interval": "1h",
        "aggregate": "p95",
        "lines": "pooled",
        "per": "area",
    }
    params = to_params(state, "Admin")
    assert params["from"] == "2026-11-01" and params["host"] == ["db-1", "web 1&x"]
    assert params["page"] == "admin"
    back = from_params(params_getter(params))
    assert back == {**state, "page": "admin"}
    # The defaults stay out of the link.
    assert to_params({"range": "24h", "interval": "auto", "lines": "per host"}, "Explorer") == {}


def test_a_bad_link_keeps_the_defaults() -> None:
    params: dict[str, str | list[str]] = {
        "range": "2y",
        "interval": "7min",
        "aggregate": "median",
        "from": "2026-13-01",
        "to": "2026-11-07",
        "page": "root",
        "lines": "stacked",
    }
    assert from_params(params_getter(params)) == {}
    assert from_params(
        params_getter({"interval": "60min", "to": "2026-11-01", "from": "2026-11-07"})
    ) == {
        "interval": "1h",
        "days": (date(2026, 11, 1), date(2026, 11, 7)),
    }


# --------------------------------------------------------------------------------------
# Roles


def run(db_url: str, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--database-url", db_url, *args], input=input)
    return result.exit_code, result.output


def test_first_user_is_admin_then_only_with_admin(db_url: str) -> None:
    code, out = run(db_url, "users", "list")
    assert code == 0 and "users add NAME" in out
    code, out = run(db_url, "users", "add", "root", "--password-stdin", input=f"{STRONG}\n")
    assert code == 0 and "Created user 'root' (admin)." in out, out
    code, out = run(db_url, "users", "add", "viewer", "--password-stdin", input=f"{STRONG}\n")
    assert code == 0 and "Created user 'viewer'." in out, out
    code, out = run(
        db_url, "users", "add", "ops", "--admin", "--password-stdin", input=f"{STRONG}\n"
    )
    assert code == 0 and "(admin)" in out, out
    code, out = run(db_url, "users", "list", "--json")
    roles = {u["username"]: u["is_admin"] for u in json.loads(out)}
    assert roles == {"root": True, "viewer": False, "ops": True}
    code, out = run(db_url, "users", "list")
    for name, flag in (("root", "yes"), ("viewer", "no"), ("ops", "yes")):
        (line,) = [line for line in out.splitlines() if f" {name} " in line]
        assert f" {flag} " in line, out
