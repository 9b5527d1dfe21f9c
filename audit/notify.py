"""The e-mail to IT management after a cycle (``[email]``): a minute's read from the same
report model as report.html, with the files attached.

- Body: an HTML part (inline styles, no script, no image: it renders the same in Outlook, Gmail
  and Apple Mail, and fetches nothing) and a plain-text part with the same content. It leads
  with the safety guard's warning when the run is suspect, then the headline, sync health and
  its trend, what is new since the previous run (the new critical and high findings by name),
  the top actions and what was held back. Directory values appear in the body only, escaped
  as in the report (autoescape); the subject carries counts and the configured company alone.
- Attachments: those ``attach`` names (pdf, ps1, xlsx) while they fit ``MAX_ATTACH_BYTES``;
  what does not fit is named in the body with where it is.
- Transport: STARTTLS (``security = "starttls"``) or implicit TLS (``"tls"``), certificates
  verified (``ca_file`` adds a private CA); ``"none"`` sends in clear and refuses to log in.
  The password comes from ``password_env`` or ``password_file``. A transient failure (4xx, a
  dropped connection) is tried again after ``RETRY_WAITS``; anything else is one line
  (NotifyError), which the cycle records without failing the run.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import polars as pl

from audit.config import EmailSettings, Settings, config_relative
from audit.errors import InputError, Origin, SyncauditError
from audit.outputs.common import environment
from audit.outputs.model import SEVERITIES, ReportModel
from audit.sources.secrets import read_secret, scrub

ATTACHMENTS = {"pdf": "report.pdf", "ps1": "remediation.ps1", "xlsx": "findings.xlsx"}
MIME = {
    "pdf": ("application", "pdf"),
    "ps1": ("text", "plain"),
    "xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
MAX_ATTACH_BYTES = 10 * 1024 * 1024  # under the 10-25 MB most mail servers take
RETRY_WAITS = (5.0, 30.0)  # seconds before the second and third attempts
NEW_SHOWN = 10  # new critical and high findings named in the body


class NotifyError(SyncauditError):
    """The e-mail could not be sent (one line, no secret)."""

    kind = "notify"


@dataclass(frozen=True)
class Mail:
    message: EmailMessage
    attached: tuple[str, ...]
    left_out: tuple[str, ...]  # too large together: named in the body instead


def compose(
    model: ReportModel, run_dir: Path, email: EmailSettings, limit: int = MAX_ATTACH_BYTES
) -> Mail:
    """The message for one analyzed run, attachments in `attach` order up to `limit` bytes."""
    attached: list[Path] = []
    left_out: list[Path] = []
    total = 0
    for key in email.attach:
        path = run_dir / ATTACHMENTS[key]
        if not path.is_file():
            continue
        size = path.stat().st_size
        if total + size <= limit:
            attached.append(path)
            total += size
        else:
            left_out.append(path)
    active = model.active_by_severity
    new = model.findings.filter(
        (pl.col("status") == "new") & pl.col("severity").is_in(["critical", "high"])
    ).head(NEW_SHOWN)
    context = {
        "m": model,
        "severities": SEVERITIES,
        "new_findings": new.select("severity", "title", "detail").to_dicts(),
        "previous": model.trend[-2] if len(model.trend) >= 2 else None,
        "attached": [p.name for p in attached],
        "left_out": [str(p) for p in left_out],
        "run_dir": str(run_dir),
    }
    env = environment()
    html = env.get_template("email.html.j2").render(**context)
    # the text part is not HTML: rendered without escaping (the same values, as text)
    text = env.overlay(autoescape=False).get_template("email.txt.j2").render(**context)
    message = EmailMessage()
    message["Subject"] = subject(model, active)
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=email.sender.rpartition("@")[2] or None)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for path in attached:
        maintype, subtype = MIME[path.suffix.lstrip(".")]
        message.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return Mail(message, tuple(p.name for p in attached), tuple(p.name for p in left_out))


def subject(model: ReportModel, active: Mapping[str, int]) -> str:
    """Counts, health and the configured company: never a directory value."""
    day = (model.taken_at or model.generated)[:10]
    worst = ", ".join(f"{active.get(s, 0)} {s}" for s in ("critical", "high"))
    health = "n/a" if model.health.percent is None else f"{model.health.percent:.1f}%"
    lead = "SUSPECT RUN: " if model.suspect else ""
    company = f"{model.company}: " if model.company else ""
    return f"{lead}{company}sync audit {day}: {worst}; sync health {health}"


def send(
    mail: Mail,
    settings: Settings,
    environ: Mapping[str, str],
    waits: Sequence[float] = RETRY_WAITS,
) -> None:
    """Deliver `mail` through [email]; NotifyError (one line, no secret) when it cannot."""
    email = settings.email
    password = ""
    if email.username_env:
        if email.security == "none":
            raise NotifyError(
                '[email] security = "none" would send the password in clear: use starttls or '
                "tls, or no username_env"
            )
        try:
            password = read_secret(
                Origin("[email]"),
                env_key="password_env",
                env_name=email.password_env,
                file_key="password_file",
                file_name=config_relative(email.password_file, settings.source_path),
                environ=environ,
                what="the SMTP password",
                missing="give password_env or password_file for username_env",
            )
        except InputError as exc:
            raise NotifyError(str(exc)) from None
    user = environ.get(email.username_env, "") if email.username_env else ""
    if email.username_env and not user:
        raise NotifyError(
            f"[email] username_env: the environment variable {email.username_env} is not set"
        )
    ca_file = config_relative(email.ca_file, settings.source_path)
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise NotifyError(f"[email] ca_file {ca_file}: cannot use it ({exc})") from None
    attempt = 0
    while True:
        attempt += 1
        try:
            refused = _deliver(mail.message, email, context, user, password)
            if refused:  # some recipients took it, these did not: say so, do not resend
                said = "; ".join(f"{r}: {c}" for r, (c, _m) in sorted(refused.items()))
                raise NotifyError(
                    f"{email.smtp_host}:{email.smtp_port}: refused for {said} (the others got it)"
                )
            return
        except smtplib.SMTPRecipientsRefused as exc:
            # every recipient refused: greylisting (4xx) passes with time, 5xx does not
            codes = [code for code, _m in exc.recipients.values()]
            said = "; ".join(f"{r}: {c}" for r, (c, _m) in sorted(exc.recipients.items()))
            if not codes or any(not 400 <= c < 500 for c in codes) or attempt > len(waits):
                raise NotifyError(
                    f"{email.smtp_host}:{email.smtp_port}: every recipient refused ({said})"
                ) from None
            time.sleep(waits[attempt - 1])
        except ssl.SSLError as exc:  # an untrusted or wrong certificate: trying again won't help
            raise NotifyError(f"{email.smtp_host}:{email.smtp_port}: TLS: {exc}") from None
        except (smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            transient = code is None or 400 <= int(code) < 500
            reason = _reason(exc, password)
            if isinstance(exc, smtplib.SMTPAuthenticationError) or not transient:
                raise NotifyError(f"{email.smtp_host}:{email.smtp_port}: {reason}") from None
            if attempt > len(waits):
                raise NotifyError(
                    f"{email.smtp_host}:{email.smtp_port}: {reason} (gave up after {attempt} "
                    "attempts)"
                ) from None
            time.sleep(waits[attempt - 1])
        except smtplib.SMTPException as exc:
            raise NotifyError(
                f"{email.smtp_host}:{email.smtp_port}: {_reason(exc, password)}"
            ) from None


def _reason(exc: Exception, password: str) -> str:
    """'535 5.7.8 Authentication credentials invalid', not smtplib's tuple of bytes."""
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raw = f"{exc.smtp_code} {text}"
    else:
        raw = str(exc)
    return scrub(" ".join(raw.split()), password) or type(exc).__name__


def _deliver(
    message: EmailMessage,
    email: EmailSettings,
    context: ssl.SSLContext,
    user: str,
    password: str,
) -> dict[str, tuple[int, bytes]]:
    """Send once; the recipients the server refused while it took the others."""
    if email.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            email.smtp_host, email.smtp_port, timeout=60, context=context
        )
    else:
        client = smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=60)
    with client:
        client.ehlo()
        if email.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if user:
            # AUTH PLAIN over the encrypted connection when offered (RFC 4616), else smtplib's
            # login() (AUTH LOGIN, the one Exchange offers besides XOAUTH2, [MS-XLOGIN]): it
            # would try every other mechanism after a refused password, each one more failed
            # sign-in toward a lockout.
            if "PLAIN" in client.esmtp_features.get("auth", "").upper().split():
                client.user, client.password = user, password
                client.auth("PLAIN", client.auth_plain)
            else:
                client.login(user, password)
        return client.send_message(message)
