"""Mail a written report: one message, standard library only (``email`` and ``smtplib``).

The message (:func:`compose`) is ``multipart/mixed``: a ``multipart/alternative`` with a
plain-text summary (:func:`plain_text`) and the HTML report itself as the body (it is
self-contained: inline style, charts as ``data:`` SVG images, nothing remote), and the
PDF attached when it was written. The subject names the period, the hosts and the number
of breaches and of gauges running out.

:func:`send` talks to the server of config ``report.smtp``
(:class:`~metrics_toolkit.store.smtp_settings.SmtpSettings`): plain, STARTTLS or TLS from
the start, certificates checked against the system's trust store (``SSL_CERT_FILE``
names another), a login when a username is set (the password from
``METRICS_TOOLKIT_SMTP_PASSWORD``). Every failure becomes one :class:`MailError` line;
:func:`deliver` retries the transient ones (server unreachable, 4xx replies) with
backoff, never the permanent ones (login or recipient refused: retrying cannot help).
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.reporting import running_out
from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.render_html import render_html
from metrics_toolkit.reporting.text import breach_rows, header_items, summary_rows
from metrics_toolkit.reporting.units import format_time
from metrics_toolkit.store.smtp_settings import SmtpSettings

log = logging.getLogger(__name__)

#: Seconds an SMTP connection or reply may take.
TIMEOUT = 30.0
#: Hosts named in a subject at most (then "and N more").
SUBJECT_HOSTS = 4
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class MailError(MetricsToolkitError):
    """The report could not be mailed; ``transient`` when trying again later may work."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def subject(report: Report) -> str:
    """``Metrics report 24h to 2026-03-04 06:00 UTC: web-1, web-2 (3 breaches)``."""
    hosts = report.hosts or ([report.host_filter] if report.host_filter else [])
    shown = ", ".join(hosts[:SUBJECT_HOSTS]) or "no data"
    if len(hosts) > SUBJECT_HOSTS:
        shown += f" and {len(hosts) - SUBJECT_HOSTS} more"
    counts = []
    if report.breaches:
        counts.append(f"{len(report.breaches)} breach{'es' if len(report.breaches) > 1 else ''}")
    soon = report.running_out()
    if soon:
        counts.append(f"{len(soon)} running out")
    tail = f" ({', '.join(counts)})" if counts else ""
    text = f"Metrics report {report.period} to {format_time(report.end)}: {shown}{tail}"
    return _CONTROL.sub(" ", text)  # a host label must not add header lines


def _columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def plain_text(report: Report) -> str:
    """The summary in plain text: header, summary table, breaches and running out."""
    lines = [report.title, ""]
    lines += [f"{key}: {value}" for key, value in header_items(report)]
    lines += [f"Warning: {w}" for w in report.warnings]
    if not report.empty:
        headers, rows, _ = summary_rows(report)
        lines += ["", "Summary", *_columns(headers, rows)]
        headers, rows = breach_rows(report)
        lines += ["", f"Threshold breaches: {len(rows) or 'none'}"]
        if rows:
            lines += _columns(headers, rows)
        cells = running_out.rows(report)
        lines += ["", "Running out"]
        lines += _columns(running_out.HEADERS, cells) if cells else [running_out.empty_text(report)]
    lines += ["", "The full report is the HTML part of this message (and the attached PDF)."]
    return "\n".join(_CONTROL.sub(" ", line) for line in lines) + "\n"


def compose(
    report: Report, recipients: Sequence[str], settings: SmtpSettings, files: Sequence[Path] = ()
) -> EmailMessage:
    """The message for ``report``; the HTML and PDF come from ``files`` when written there
    (the HTML is rendered when it was not)."""
    by_format = {path.suffix.lstrip("."): path for path in files}
    message = EmailMessage()
    message["Subject"] = subject(report)
    message["From"] = settings.sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2])
    message.set_content(plain_text(report))
    html = by_format["html"].read_text("utf-8") if "html" in by_format else render_html(report)
    message.add_alternative(html, subtype="html")
    if "pdf" in by_format:
        message.add_attachment(
            by_format["pdf"].read_bytes(),
            maintype="application",
            subtype="pdf",
            filename=by_format["pdf"].name,
        )
    return message


def send(message: EmailMessage, settings: SmtpSettings, *, timeout: float = TIMEOUT) -> None:
    """Send ``message`` through the server of ``settings``; one :class:`MailError` line on
    failure (its ``transient`` says whether a later try may work)."""
    password = settings.password()
    where = settings.where
    context = ssl.create_default_context()
    try:
        client = (
            smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
            if settings.ssl
            else smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        )
        with client:
            if settings.starttls:
                client.starttls(context=context)
            if settings.username is not None and password is not None:
                client.login(settings.username, password)
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as error:
        raise MailError(
            f"The SMTP server {where} refused the login of {settings.username!r}: "
            f"{_reply(error.smtp_code, error.smtp_error)}",
            transient=False,
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        raise _refused(where, error.recipients) from None
    except smtplib.SMTPSenderRefused as error:
        raise MailError(
            f"The SMTP server {where} refused the sender {settings.sender!r}: "
            f"{_reply(error.smtp_code, error.smtp_error)}",
            transient=400 <= error.smtp_code < 500,
        ) from None
    except smtplib.SMTPNotSupportedError as error:
        msg = f"The SMTP server {where} cannot do what config report.smtp asks: {error}"
        raise MailError(msg, transient=False) from None
    except smtplib.SMTPResponseException as error:
        raise MailError(
            f"The SMTP server {where} answered {_reply(error.smtp_code, error.smtp_error)}",
            transient=400 <= error.smtp_code < 500,
        ) from None
    except ssl.SSLError as error:
        raise MailError(
            f"TLS with the SMTP server {where} failed: {error.reason or error}", transient=False
        ) from None
    except smtplib.SMTPException as error:
        raise MailError(f"The SMTP server {where} failed: {error}", transient=True) from None
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise MailError(f"Cannot reach the SMTP server {where}: {reason}", transient=True) from None
    if refused:
        raise _refused(where, refused, partial=True)


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {_CONTROL.sub(' ', said).strip()}"


def _refused(
    where: str, refused: dict[str, tuple[int, bytes]], *, partial: bool = False
) -> MailError:
    listed = "; ".join(f"{who} ({_reply(*reply)})" for who, reply in sorted(refused.items()))
    sent = " (sent to the other recipients)" if partial else ""
    transient = not partial and all(400 <= code < 500 for code, _ in refused.values())
    return MailError(f"The SMTP server {where} refused {listed}{sent}", transient=transient)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def deliver(
    message: EmailMessage,
    settings: SmtpSettings,
    *,
    retries: int = 0,
    backoff: float = 10.0,
    wait: Callable[[float], bool] = _sleep,
    timeout: float = TIMEOUT,
) -> int:
    """:func:`send`, trying transient failures again up to ``retries`` times, after
    ``backoff``, then 3x, 9x... seconds (``wait(seconds)`` returning True gives up early).
    Returns the number of attempts; raises the last :class:`MailError`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            send(message, settings, timeout=timeout)
            return attempt
        except MailError as error:
            if not error.transient or attempt > retries:
                raise
            delay = backoff * 3 ** (attempt - 1)
            log.warning("Mail attempt %d failed: %s; trying again in %g s", attempt, error, delay)
            if wait(delay):
                raise


def mail_report(
    report: Report,
    recipients: Sequence[str],
    settings: SmtpSettings,
    files: Sequence[Path] = (),
    *,
    retries: int = 0,
    backoff: float = 10.0,
    wait: Callable[[float], bool] = _sleep,
) -> int:
    """Compose and :func:`deliver` the message of ``report``; returns the attempts made."""
    message = compose(report, recipients, settings, files)
    return deliver(message, settings, retries=retries, backoff=backoff, wait=wait)


__all__ = [
    "MailError",
    "compose",
    "deliver",
    "mail_report",
    "plain_text",
    "send",
    "subject",
]
