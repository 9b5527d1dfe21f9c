"""The cycle's e-mail (audit/notify.py) through a real SMTP server (aiosmtpd) on loopback over
STARTTLS with authentication: the message, its two parts and attachments and the run's
headline numbers; a send failure that leaves the run complete and `status` failing; a suspect
run's e-mail leading with the guard's warning."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from audit.cli import main
from audit.config import load_settings
from audit.service import read_state
from tests.graph.tls import make_server_tls
from tests.test_service import WEEKS, exports

USER, PASSWORD = "mailer", "s3cret-Smtp-pass"


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
        return "250 OK"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself


@dataclass
class SmtpServer:
    port: int
    ca_file: Path
    mailbox: Mailbox


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    tls = make_server_tls(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield SmtpServer(port, tls.ca_file, mailbox)
    finally:
        controller.stop()


def mail_config(tmp_path: Path, port: int, ca_file: Path) -> Path:
    path = tmp_path / "syncaudit.toml"
    path.write_text(
        '[run]\ndata_dir = "data"\n\n[report]\ncompany = "Contoso"\n\n'
        f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nsecurity = "starttls"\n'
        'username_env = "SYNCAUDIT_TEST_SMTP_USER"\npassword_env = "SYNCAUDIT_TEST_SMTP_PASS"\n'
        f'ca_file = "{ca_file}"\nsender = "syncaudit@contoso.com"\n'
        'to = ["it-management@contoso.com", "ciso@contoso.com"]\nattach = ["pdf", "ps1"]\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCAUDIT_TEST_SMTP_USER", USER)
    monkeypatch.setenv("SYNCAUDIT_TEST_SMTP_PASS", PASSWORD)


def test_the_email_arrives_over_starttls_with_both_parts_and_attachments(
    tmp_path: Path, smtp_server: SmtpServer, smtp_env: None
) -> None:
    cfg = mail_config(tmp_path, smtp_server.port, smtp_server.ca_file)
    taken, ad, synced = WEEKS[1]
    flags = exports(tmp_path / "w", ad, synced)
    assert main(["run", "--config", str(cfg), *flags, "--taken-at", taken]) == 0
    (message,) = smtp_server.mailbox.messages
    (envelope,) = smtp_server.mailbox.envelopes
    assert envelope.rcpt_tos == ["it-management@contoso.com", "ciso@contoso.com"]
    assert message["From"] == "syncaudit@contoso.com"
    # counts and the configured company only: no directory value in a header
    assert message["Subject"] == (
        "Contoso: sync audit 2026-11-09: 0 critical, 0 high; sync health 66.7%"
    )
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for part in (text, html):
        assert "66.7%" in part and "No critical or high findings" in part
        assert "anchor-held-by-deleted held back" in part  # what was not checked, and why
    assert "<script" not in html and "src=" not in html and "http" not in html.split("</head>")[1]
    names = [p.get_filename() for p in message.iter_attachments()]
    assert names == ["report.pdf", "remediation.ps1"]
    state = read_state(load_settings(cfg))
    assert state["email"] == {
        "sent": True,
        "to": ["it-management@contoso.com", "ciso@contoso.com"],
        "attached": ["report.pdf", "remediation.ps1"],
        "left_out": [],
    }


def test_a_send_failure_leaves_the_run_complete_and_status_failing(
    tmp_path: Path,
    smtp_server: SmtpServer,
    smtp_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SYNCAUDIT_TEST_SMTP_PASS", "wrong-password")
    cfg = mail_config(tmp_path, smtp_server.port, smtp_server.ca_file)
    _taken, ad, synced = WEEKS[0]
    assert main(["run", "--config", str(cfg), *exports(tmp_path / "w", ad, synced)]) == 0
    assert smtp_server.mailbox.messages == []
    (run,) = (tmp_path / "data" / "runs").iterdir()
    assert (run / "report.pdf").is_file() and (run / "findings.csv").is_file()
    state = read_state(load_settings(cfg))
    assert state["state"] == "ok" and state["email"]["sent"] is False
    assert "wrong-password" not in state["email"]["error"]
    assert state["email"]["error"] == (
        f"127.0.0.1:{smtp_server.port}: 535 5.7.8 Authentication credentials invalid"
    )
    capsys.readouterr()
    assert main(["status", "--config", str(cfg)]) == 1
    assert "  e-mail: not sent: 127.0.0.1" in capsys.readouterr().out


def test_a_suspect_run_mail_leads_with_the_warning(
    tmp_path: Path, smtp_server: SmtpServer, smtp_env: None
) -> None:
    cfg = mail_config(tmp_path, smtp_server.port, smtp_server.ca_file)
    people = ["Ada", "Bob", "Cyd", "Dan"]
    first = exports(tmp_path / "w1", people, people)
    assert main(["run", "--config", str(cfg), *first, "--taken-at", WEEKS[0][0]]) == 0
    second = exports(tmp_path / "w2", people[:2], people)  # half the AD users missing
    assert main(["run", "--config", str(cfg), *second, "--taken-at", WEEKS[1][0]]) == 0
    message = smtp_server.mailbox.messages[-1]
    assert message["Subject"].startswith("SUSPECT RUN: Contoso: sync audit 2026-11-09")
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith("SUSPECT RUN. AD users fell from 4 to 2 (-50%) since run ")
    html = message.get_body(preferencelist=("html",)).get_content()
    body = html.split("<body", 1)[1]
    assert body.index("Suspect run.") < body.index("Sync health")


def test_an_untrusted_smtp_certificate_is_refused_at_once(
    tmp_path: Path, smtp_server: SmtpServer, smtp_env: None
) -> None:
    """Without ca_file the test CA is not trusted: verification stays on, no retry."""
    cfg = mail_config(tmp_path, smtp_server.port, smtp_server.ca_file)
    text = cfg.read_text(encoding="utf-8").replace(f'ca_file = "{smtp_server.ca_file}"\n', "")
    cfg.write_text(text, encoding="utf-8")
    _taken, ad, synced = WEEKS[0]
    assert main(["run", "--config", str(cfg), *exports(tmp_path / "w", ad, synced)]) == 0
    error = read_state(load_settings(cfg))["email"]["error"]
    assert error.startswith(f"127.0.0.1:{smtp_server.port}: TLS: [SSL: CERTIFICATE_VERIFY_FAILED]")
    assert smtp_server.mailbox.messages == []


def test_attachments_past_the_size_cap_are_named_with_where_they_are(tmp_path: Path) -> None:
    import shutil

    from audit.config import EmailSettings
    from audit.notify import compose
    from audit.pipeline import analyze
    from tests.report_fixtures import demo_run

    demo = demo_run()  # copied: the session's demo run stays as the other tests left it
    run_dir = tmp_path / "runs" / "demo"
    shutil.copytree(demo.run_dir, run_dir)
    result = analyze(run_dir, demo.settings)
    assert result.report is not None
    pdf, script = (run_dir / n for n in ("report.pdf", "remediation.ps1"))
    settings = EmailSettings(sender="a@contoso.com", to=("b@contoso.com",), attach=("ps1", "pdf"))
    mail = compose(result.report, run_dir, settings, limit=script.stat().st_size + 1)
    assert (mail.attached, mail.left_out) == (("remediation.ps1",), ("report.pdf",))
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    assert f"Too large to attach, in the run directory: {pdf}." in " ".join(text.split())


def test_a_transient_refusal_is_tried_again(
    tmp_path: Path, smtp_server: SmtpServer, smtp_env: None
) -> None:
    """A 451 (try again later) on the first attempt: the second one delivers."""
    import os

    from audit.pipeline import analyze, save_run
    from audit.service import mail_result
    from tests import factories as f

    answers = ["451 4.3.0 Mail server temporarily rejected message"]
    original = smtp_server.mailbox.handle_DATA

    async def flaky(server: Any, session: Any, envelope: Any) -> str:
        if answers:
            return answers.pop()
        return await original(server, session, envelope)

    smtp_server.mailbox.handle_DATA = flaky  # type: ignore[method-assign]
    settings = load_settings(mail_config(tmp_path, smtp_server.port, smtp_server.ca_file))
    run = save_run(tmp_path / "run", f.snapshot([f.ad_user("ada")]), settings, {})
    result = analyze(run, settings)
    mailed = mail_result(result, settings, os.environ, waits=(0.05, 0.05))
    assert mailed is not None and mailed["sent"] is True
    assert answers == [] and len(smtp_server.mailbox.messages) == 1


def test_a_permanent_refusal_is_not_tried_again(
    tmp_path: Path, smtp_server: SmtpServer, smtp_env: None
) -> None:
    import os

    from audit.pipeline import analyze, save_run
    from audit.service import mail_result
    from tests import factories as f

    calls: list[str] = []

    async def refuse(server: Any, session: Any, envelope: Any) -> str:
        calls.append("DATA")
        return "554 5.7.1 Message rejected by policy"

    smtp_server.mailbox.handle_DATA = refuse  # type: ignore[method-assign]
    settings = load_settings(mail_config(tmp_path, smtp_server.port, smtp_server.ca_file))
    run = save_run(tmp_path / "run", f.snapshot([f.ad_user("ada")]), settings, {})
    mailed = mail_result(analyze(run, settings), settings, os.environ, waits=(0.05, 0.05))
    assert mailed == {
        "sent": False,
        "error": f"127.0.0.1:{smtp_server.port}: 554 5.7.1 Message rejected by policy",
    }
    assert calls == ["DATA"]
