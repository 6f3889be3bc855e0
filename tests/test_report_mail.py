"""Mailed reports against real SMTP servers on 127.0.0.1 (aiosmtpd, started by each test).

The CLI and the scheduler send one message: the HTML report as the body, a plain-text
summary beside it, the PDF attached. A server that is down, refuses the login or a
recipient gives one clear line (the files stay written); STARTTLS runs against a
certificate of a throwaway CA made by the test (trustme), trusted through SSL_CERT_FILE.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from metrics_toolkit.cli import main
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.errors import ConfigError
from metrics_toolkit.reporting import build_report
from metrics_toolkit.reporting.mail import MailError, mail_report
from metrics_toolkit.scheduler import Schedule
from metrics_toolkit.store.config import set_config
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.job_specs import parse_jobs
from metrics_toolkit.store.smtp_settings import PASSWORD_ENV, SmtpSettings, parse_smtp

END = datetime(2026, 4, 1, 12, tzinfo=UTC)
USER, SECRET = "metrics", "s3cret-pass"


@dataclass
class Inbox:
    """What a test SMTP server received; refuses ``nobody@...`` recipients."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            SECRET.encode(),
        )
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)  # a refusal: aiosmtpd answers 535


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), _free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def filled_url(sqlite_url: str) -> str:
    engine = make_engine(sqlite_url)
    write_snapshots(
        engine, generate_history(start=END - timedelta(hours=6), end=END, interval="60s", hosts=1)
    )
    engine.dispose()
    return sqlite_url


def _smtp(url: str, **value: Any) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        set_config(session=session, key="report.smtp", value=value)
        session.commit()
    engine.dispose()


def _report(url: str, out: Path, *extra: str) -> Result:
    args = ["--database-url", url, "report", "--period", "6h", "--end", END.isoformat()]
    return CliRunner().invoke(main, [*args, "--out", str(out), *extra], catch_exceptions=False)


def _parts(message: EmailMessage) -> dict[str, Any]:
    return {part.get_content_type(): part for part in message.walk()}


@pytest.mark.slow
def test_the_cli_mails_html_plain_text_and_pdf(
    filled_url: str, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    box, port = inbox
    _smtp(filled_url, host="127.0.0.1", port=port, **{"from": "metrics@example.com"})
    result = _report(filled_url, tmp_path, "--mail-to", "ops@example.com, dev@example.com")
    assert result.exit_code == 0, result.output
    html_path, pdf_path, json_path = (Path(p) for p in result.stdout.split())
    assert len(box.messages) == 1
    recipients, message = box.messages[0]
    assert recipients == ["ops@example.com", "dev@example.com"]
    assert message["To"] == "ops@example.com, dev@example.com"
    assert message["From"] == "metrics@example.com"
    data = json.loads(json_path.read_text())
    soon = [f for f in data["forecasts"] if f["days_left"] is not None and f["days_left"] < 30]
    counts = [f"{len(data['breaches'])} breach"] if data["breaches"] else []
    counts += [f"{len(soon)} running out"] if soon else []
    subject = message["Subject"].replace("breaches", "breach")
    assert subject == "Metrics report 6h to 2026-04-01 12:00 UTC: web-1" + (
        f" ({', '.join(counts)})" if counts else ""
    )
    assert message.get_content_type() == "multipart/mixed"
    parts = _parts(message)
    assert {"multipart/alternative", "text/plain", "text/html", "application/pdf"} <= set(parts)
    text = parts["text/plain"].get_content()
    assert "Summary" in text and "web-1" in text and "Running out" in text
    html = parts["text/html"].get_content()
    assert html.replace("\r\n", "\n") == html_path.read_text("utf-8")  # SMTP lines end in CRLF
    assert 'src="http' not in html and "data:image/svg+xml;base64," in html
    assert parts["application/pdf"].get_filename() == pdf_path.name
    assert parts["application/pdf"].get_content() == pdf_path.read_bytes()


@pytest.mark.slow
def test_a_server_that_is_down_gives_one_line_and_keeps_the_files(
    filled_url: str, tmp_path: Path
) -> None:
    _smtp(filled_url, host="127.0.0.1", port=_free_port())
    result = _report(filled_url, tmp_path, "--format", "html,json", "--mail-to", "ops@example.com")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: Report written but not mailed: Cannot reach the SMTP server 127.0.0.1:")
    )
    assert "Traceback" not in result.output
    assert [Path(p).exists() for p in result.stdout.split()] == [True, True]


def test_bad_mail_options_fail_before_any_work(filled_url: str, tmp_path: Path) -> None:
    result = _report(filled_url, tmp_path, "--mail-to", "ops@example.com,not-an-address")
    assert result.exit_code == 1 and "'not-an-address' is not a mail address" in result.output
    _smtp(filled_url, host="127.0.0.1", port=25, username=USER)
    result = _report(filled_url, tmp_path, "--mail-to", "ops@example.com")
    assert result.exit_code == 1 and PASSWORD_ENV in result.output
    assert not tmp_path.joinpath("all").exists()


def test_starttls_with_a_self_signed_certificate(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    box, port = Inbox(), _free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=box.authenticate,
    )
    controller.start()
    try:
        report = build_report(make_engine(sqlite_url), period="1h", end=END)
        settings = parse_smtp(
            {"host": "127.0.0.1", "port": port, "starttls": True, "username": USER}
        )
        monkeypatch.setenv(PASSWORD_ENV, SECRET)
        with pytest.raises(MailError, match=r"TLS with the SMTP server .* failed"):
            mail_report(report, ["ops@example.com"], settings)  # the CA is not trusted yet
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        assert mail_report(report, ["ops@example.com"], settings) == 1
        without_tls = SmtpSettings("127.0.0.1", port, "m@example.com")
        with pytest.raises(MailError, match="530"):  # the server insists on STARTTLS
            mail_report(report, ["ops@example.com"], without_tls)
    finally:
        controller.stop()
    assert box.logins == [USER] and len(box.messages) == 1
    assert box.messages[0][1]["Subject"].startswith("Metrics report 1h to 2026-04-01 12:00 UTC")


def test_refused_login_and_recipient_are_not_retried(
    sqlite_url: str, inbox: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = inbox
    report = build_report(make_engine(sqlite_url), period="1h", end=END)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    login = SmtpSettings("127.0.0.1", port, "m@example.com", username=USER)
    with pytest.raises(MailError, match=f"refused the login of '{USER}': 535") as refused:
        mail_report(report, ["ops@example.com"], login, retries=3, wait=wait)
    assert "wrong" not in str(refused.value)  # the password is never shown
    plain = SmtpSettings("127.0.0.1", port, "m@example.com")
    with pytest.raises(MailError, match=r"refused nobody@example\.com \(550 5\.1\.1 No such user"):
        mail_report(report, ["nobody@example.com"], plain, retries=3, wait=wait)
    assert waits == [] and box.messages == []


def test_report_smtp_and_mail_to_are_validated() -> None:
    assert parse_smtp({"host": "mx", "port": 587, "starttls": True}).sender == (
        "metrics-toolkit@localhost"
    )
    for value, words in (
        ({"host": "mx", "password": "x"}, PASSWORD_ENV),
        ({"host": "mx", "port": 0}, "'port' must be a port number"),
        ({"host": "mx", "starttls": True, "ssl": True}, "not both"),
        ({"host": "mx", "from": "nobody"}, "'from' must be a mail address"),
        ({"host": "mx", "colour": "red"}, r"unknown field\(s\) colour"),
    ):
        with pytest.raises(ConfigError, match=words):
            parse_smtp(value)
    job = parse_jobs({"report_daily": {"cron": "0 6 * * *", "mail_to": ["a@x.org", "b@y.org"]}})
    assert job[0].mail_to == ("a@x.org", "b@y.org") and "mailed to a@x.org" in job[0].describe()
    with pytest.raises(ConfigError, match="not a mail address"):
        parse_jobs({"report_daily": {"cron": "0 6 * * *", "mail_to": ["a@x.org", "bad"]}})
    with pytest.raises(ConfigError, match="for report jobs only"):
        parse_jobs({"collect": {"cron": "* * * * *", "mail_to": ["a@x.org"]}})


@pytest.mark.slow
def test_a_scheduled_job_mails_and_a_failing_one_retries_then_lets_others_run(
    filled_url: str,
    inbox: tuple[Inbox, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, port = inbox
    _smtp(filled_url, host="127.0.0.1", port=port)
    engine = make_engine(filled_url)
    jobs = parse_jobs(
        {
            "report_mailed": {"cron": "0 6 * * *", "period": "6h", "mail_to": ["ops@x.org"]},
            "report_plain": {"cron": "0 6 * * *", "period": "6h", "formats": ["json"]},
        }
    )
    schedule = Schedule(
        engine=engine,
        jobs=jobs,
        output_dir=tmp_path / "out",
        state_path=tmp_path / "state.json",
        mail_retries=2,
        mail_backoff=0.01,
    )
    assert schedule.run_job(jobs[0], scheduled=END) is True
    assert [r for r, _ in box.messages] == [["ops@x.org"]]
    assert {"text/html", "text/plain", "application/pdf"} <= set(_parts(box.messages[0][1]))

    _smtp(filled_url, host="127.0.0.1", port=_free_port())  # the server goes away
    caplog.set_level(logging.INFO)
    assert schedule.run_job(jobs[0], scheduled=END + timedelta(days=1)) is False
    assert schedule.run_job(jobs[1], scheduled=END + timedelta(days=1)) is True
    engine.dispose()
    retried = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retried) == 2 and "Cannot reach the SMTP server" in retried[0]
    failed = [r for r in caplog.records if r.getMessage().startswith("Job report_mailed failed")]
    assert len(failed) == 1 and failed[0].exc_info is None
    assert "report written: " in failed[0].getMessage()
    assert len(box.messages) == 1
    assert (tmp_path / "out" / "all" / "6h-20260402T1200Z.pdf").exists()
