"""`syncaudit collect` against live Samba DCs (issue 12 items 3-6): a complete run directory
under [run] data_dir whose frame equals both the live read and the import of the run's own
raw/ad-<name>.ldif; two forests into one frame; a connection lost or a DC restarted mid-read
survived by reading again; a DC killed or silent mid-read gives one line, exit 2 and no run;
each configuration mistake one line and exit 2, the password nowhere."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pypdf import PdfReader

from audit import pipeline
from audit.cli import main
from audit.config import load_settings
from audit.errors import InputError
from audit.sources.ad import AdRows
from audit.sources.files import import_files
from audit.sources.ldap import read_ad_ldap
from tests.ad.client import ldap3, ldaps
from tests.ad.relay import Relay
from tests.ad.samba_dc import FOREST_ONE, TEST_ADDRESSES, DcInfo, SambaDC, make_tls
from tests.ad.seed import IN_SCOPE_OU, Seeded, schema_update_now
from tests.graph.configs import SECRET_ENV, entra_toml, entra_values
from tests.graph.emulator import GraphEmulator

pytestmark = pytest.mark.ad

PASSWORD_ENV = "SYNCAUDIT_TEST_AD_PASSWORD"


def ad_table(dc: DcInfo, source: str, **extra: object) -> str:
    values: dict[str, object] = {
        "name": source,
        "url": dc.ldaps_url,
        "ca_file": str(dc.ca_file),
        "bind_dn": dc.bind_dn,
        "password_env": PASSWORD_ENV,
        "base_dn": dc.base_dn,
        "page_size": 3,
        **extra,
    }
    return "[[ad]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def write_config(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "syncaudit.toml"
    path.write_text('[run]\ndata_dir = "data"\n\n' + "\n".join(tables), encoding="utf-8")
    return path


def runs(tmp_path: Path) -> list[str]:
    """Everything under data/runs, hidden staging directories included."""
    root = tmp_path / "data" / "runs"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def live_frame(dc: DcInfo, config_path: Path, name: str) -> pl.DataFrame:
    settings = load_settings(config_path)
    rows = AdRows()
    read_ad_ldap(
        settings.ad_source(name),
        rows,
        config_path=str(config_path),
        environ=dc.password_env(PASSWORD_ENV),
    )
    return rows.frame()


@pytest.fixture
def password(ad_dc: DcInfo, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, ad_dc.password())
    return ad_dc.password()


def test_collect_writes_a_complete_run_equal_to_its_raw_capture(
    ad_dc: DcInfo,
    ad_seeded: list[Seeded],
    password: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scope = {"include_ous": [f"{IN_SCOPE_OU},{ad_dc.base_dn}"]}
    config = write_config(tmp_path, ad_table(ad_dc, "corp", **scope))
    assert main(["collect", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    (run_id,) = runs(tmp_path)
    run_dir = (tmp_path / "data" / "runs" / run_id).resolve()
    assert out == f"run directory: {run_dir}\n"
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == [
        "manifest.json", "raw", "raw/ad-corp.ldif", "snapshot", "snapshot/ad_users.parquet",
        "snapshot/cloud_objects.parquet", "snapshot/cloud_users.parquet", "snapshot/tenant.json",
    ]  # fmt: skip
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["collection"] == {"kind": "collect", "raw": ["raw/ad-corp.ldif"]}
    (source,) = manifest["sources"]
    assert (source["name"], source["kind"], source["format"], source["complete"]) == (
        "corp", "ad", "ldap", True,
    )  # fmt: skip
    assert source["path"] == ad_dc.ldaps_url
    # not a terminal and no --progress: the stage lines only, no per-page meter
    assert err.splitlines()[0] == "collecting" and "objects read" not in err

    collected = pl.read_parquet(run_dir / "snapshot" / "ad_users.parquet").sort("dn")
    assert_frame_equal(collected, live_frame(ad_dc, config, "corp").sort("dn"))
    replayed = import_files(
        ad=[("corp", run_dir / "raw" / "ad-corp.ldif")], cloud=[], settings=load_settings(config)
    )
    assert_frame_equal(collected, replayed.ad_users.sort("dn"))
    assert collected.height == source["rows"] > 0
    assert collected.filter(pl.col("in_scope")).height < collected.height  # scope was applied
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path

    # the cloud side is absent: what rests on it is held back, not reported
    analyzed = pipeline.analyze(run_dir)
    held = {entry.code for entry in analyzed.held_back if entry.status == "held back"}
    assert "unmatched-ad" in held  # "no AD user matched" would be a guess with no tenant read
    assert analyzed.findings["cloud_id"].is_null().all()
    # the report says how the source was read: pages, the references not followed
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    row = html.split('<tr data-source="corp" data-complete="true">', 1)[1].split("</tr>", 1)[0]
    assert ad_dc.ldaps_url in row and "pages of up to 3" in row
    reference = (
        "1 continuation reference not followed (never chased): "
        f"ldaps://corp.example.test/CN=Configuration,{ad_dc.base_dn}"
    )
    assert f"<li>{reference}</li>" in row
    pdf_text = "".join(page.extract_text() for page in PdfReader(run_dir / "report.pdf").pages)
    assert "Sources read" in pdf_text and "continuation reference not followed" in pdf_text


def test_progress_is_per_source_when_asked(
    ad_dc: DcInfo,
    ad_seeded: list[Seeded],
    password: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, ad_table(ad_dc, "corp"))
    assert main(["collect", "--config", str(config), "--progress"]) == 0
    err = capsys.readouterr().err
    # not a terminal: the first page, one line per 5 s (this read is quicker), the last page
    first, final = [line for line in err.splitlines() if " objects read in " in line]
    assert " pages, " in final
    assert first.startswith("corp: 3 objects read in 1 page, ")
    rows = pl.read_parquet(next((tmp_path / "data").rglob("ad_users.parquet"))).height
    assert final.startswith("corp: ") and " objects read in " in final and final.endswith("/s")
    objects = int(final.split()[1].replace(",", ""))
    assert objects >= rows  # every object the search returned, people kept or excluded


def seed_second_forest(dc: DcInfo) -> None:
    connection = ldaps(dc)
    try:
        connection.add(f"OU=People,{dc.base_dn}", ["top", "organizationalUnit"])
        for sam in ("li.wei", "mo.chen"):
            done = connection.add(
                f"CN={sam},OU=People,{dc.base_dn}",
                ["top", "person", "organizationalPerson", "user"],
                {"sAMAccountName": sam, "userPrincipalName": f"{sam}@fabrikam.example.test"},
            )
            assert done or connection.result["description"] == "entryAlreadyExists"
    finally:
        connection.unbind()


def test_two_forests_are_collected_into_one_frame(
    ad_forests: tuple[DcInfo, DcInfo],
    ad_seeded: list[Seeded],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = ad_forests
    seed_second_forest(two)
    password_two = "SYNCAUDIT_TEST_AD_PASSWORD_TWO"
    monkeypatch.setenv(PASSWORD_ENV, one.password())
    monkeypatch.setenv(password_two, two.password())
    config = write_config(
        tmp_path,
        ad_table(one, "corp"),
        ad_table(two, "fabrikam", password_env=password_two, base_dn=f"OU=People,{two.base_dn}"),
    )
    result = pipeline.collect(settings=load_settings(config))
    frame = pl.read_parquet(result.run_dir / "snapshot" / "ad_users.parquet")
    corp = live_frame(one, config, "corp")
    fabrikam = frame.filter(pl.col("source") == "fabrikam")
    assert_frame_equal(frame.filter(pl.col("source") == "corp").sort("dn"), corp.sort("dn"))
    assert sorted(fabrikam["dn"]) == [
        f"CN=li.wei,OU=People,{two.base_dn}",
        f"CN=mo.chen,OU=People,{two.base_dn}",
    ]
    assert sorted(result.outputs) == [
        "manifest.json", "raw/ad-corp.ldif", "raw/ad-fabrikam.ldif",
        "snapshot/ad_users.parquet", "snapshot/cloud_objects.parquet",
        "snapshot/cloud_users.parquet", "snapshot/tenant.json",
    ]  # fmt: skip
    assert [(s.name, s.complete) for s in result.sources] == [("corp", True), ("fabrikam", True)]


def test_a_connection_cut_once_is_read_again_from_the_first_page(
    ad_dc: DcInfo, ad_seeded: list[Seeded], password: str, tmp_path: Path
) -> None:
    relay = Relay(ad_dc)
    try:
        config = write_config(
            tmp_path, ad_table(ad_dc, "corp", url=relay.url, page_size=2, retry_wait=0.1)
        )
        relay.fault(after=6000)  # past the bind, a few pages in
        lines: list[str] = []
        result = pipeline.collect(settings=load_settings(config), progress=lines.append)
        assert relay.connections == 2  # cut once, read again whole
    finally:
        relay.close()
    (retry,) = [line for line in lines if "attempt 1 of 5 failed" in line]
    assert "connection to the DC lost" in retry and retry.endswith("trying again in 0.1 s")
    (source,) = result.sources
    assert source.complete
    assert any(note.startswith("read completely on attempt 2 of 5") for note in source.notes)
    frame = pl.read_parquet(result.run_dir / "snapshot" / "ad_users.parquet")
    assert frame.height == live_frame(ad_dc, config, "corp").height


SPARE_CONSISTENCY = bytes(range(100, 116))


def seed_spare(info: DcInfo, count: int) -> None:
    """user000 ... : user000 alone with employeeID, msDS-SourceAnchor and a ConsistencyGuid
    of its own."""
    connection = ldaps(info)
    try:
        for n in range(count):
            sam = f"user{n:03d}"
            values: dict[str, object] = {
                "sAMAccountName": sam,
                "userPrincipalName": f"{sam}@corp.example.test",
            }
            if n == 0:
                values |= {
                    "employeeID": "E000",
                    "msDS-SourceAnchor": "SA-000",
                    "mS-DS-ConsistencyGuid": SPARE_CONSISTENCY,
                }
            assert connection.add(
                f"CN={sam},CN=Users,{info.base_dn}",
                ["top", "person", "organizationalPerson", "user"],
                values,
            ), connection.result
    finally:
        connection.unbind()


def add_source_anchor_to_schema(info: DcInfo) -> None:
    """msDS-SourceAnchor as Windows Server 2016's schema defines it (Samba ships the definition,
    setup/ad-schema/AD_DS_Attributes__Windows_Server_2016.ldf, but provisions 2012 R2 at
    most), may-contain of user."""
    schema = f"CN=Schema,CN=Configuration,{info.base_dn}"
    connection = ldaps(info)
    try:
        values = {
            "attributeID": "1.2.840.113556.1.4.2352",
            "lDAPDisplayName": "msDS-SourceAnchor",
            "adminDisplayName": "ms-DS-Source-Anchor",
            "attributeSyntax": "2.5.5.12",
            "oMSyntax": "64",
            "isSingleValued": "TRUE",
            "rangeLower": "1",
            "searchFlags": "10",
            "schemaIDGUID": base64.b64decode("B/QCsEAT60G8oL19k44lqQ=="),
        }
        dn = f"CN=ms-DS-Source-Anchor,{schema}"
        assert connection.add(dn, ["top", "attributeSchema"], values), connection.result
        change = {"mayContain": [(ldap3.MODIFY_ADD, ["msDS-SourceAnchor"])]}
        assert connection.modify(f"CN=User,{schema}", change), connection.result
        schema_update_now(connection)
    finally:
        connection.unbind()


@pytest.fixture(scope="module")
def spare_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    """A DC of this module's own on the spare address, to restart and kill."""
    dc = SambaDC(tmp_path_factory.mktemp("samba-spare") / "dc", TEST_ADDRESSES[2], FOREST_ONE)
    try:
        info = dc.start()
        add_source_anchor_to_schema(info)
        seed_spare(info, 40)
        yield dc
    finally:
        dc.stop()


@pytest.mark.parametrize(
    "attribute", ["objectGUID", "employeeID", "msDS-SourceAnchor", "mS-DS-ConsistencyGuid"]
)
def test_the_anchor_comes_from_the_configured_attribute(
    spare_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attribute: str
) -> None:
    """user000 carries employeeID, msDS-SourceAnchor and a ConsistencyGuid; user001 none."""
    assert spare_dc.info is not None
    info = spare_dc.info
    monkeypatch.setenv(PASSWORD_ENV, info.password())
    config = write_config(tmp_path, ad_table(info, "corp", anchor_attribute=attribute))
    result = pipeline.collect(settings=load_settings(config))
    frame = pl.read_parquet(result.run_dir / "snapshot" / "ad_users.parquet")
    rows = {
        row["dn"].split(",")[0]: row
        for row in frame.filter(pl.col("dn").str.contains("CN=user00[01],")).to_dicts()
    }
    guid_b64 = {
        n: base64.b64encode(uuid.UUID(r["object_guid"]).bytes_le).decode() for n, r in rows.items()
    }
    expected = {
        "objectGUID": {
            "CN=user000": (guid_b64["CN=user000"], "objectGUID"),
            "CN=user001": (guid_b64["CN=user001"], "objectGUID"),
        },
        "employeeID": {"CN=user000": ("E000", "employeeID"), "CN=user001": (None, "employeeID")},
        "msDS-SourceAnchor": {
            "CN=user000": ("SA-000", "msDS-SourceAnchor"),
            "CN=user001": (None, "msDS-SourceAnchor"),
        },
        "mS-DS-ConsistencyGuid": {
            "CN=user000": (base64.b64encode(SPARE_CONSISTENCY).decode(), "mS-DS-ConsistencyGuid"),
            "CN=user001": (guid_b64["CN=user001"], "objectGUID"),
        },
    }[attribute]
    assert {n: (r["anchor"], r["anchor_attribute"]) for n, r in rows.items()} == expected
    replayed = import_files(
        ad=[("corp", result.run_dir / "raw" / "ad-corp.ldif")],
        cloud=[],
        settings=load_settings(config),
    )
    assert_frame_equal(frame.sort("dn"), replayed.ad_users.sort("dn"))


def test_a_dc_restarted_mid_collection_is_read_again_once_it_is_back(
    spare_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spare_dc.info is not None
    info = spare_dc.info
    monkeypatch.setenv(PASSWORD_ENV, info.password())
    relay = Relay(info)
    errors: list[BaseException] = []
    finished = threading.Event()

    def restart() -> None:
        """The DC goes down mid-read and comes back a moment later. This thread lives until
        the test ends: the DC it starts gets SIGTERM when it exits (samba_dc._die_with_parent)."""
        try:
            spare_dc.stop()
            spare_dc.start()
        except BaseException as error:  # surfaced below: a thread's exception is lost
            errors.append(error)
        finished.wait()

    restarter = threading.Thread(target=restart)
    try:
        config = write_config(
            tmp_path, ad_table(info, "corp", url=relay.url, page_size=5, retry_wait=0.5)
        )
        relay.fault(after=8000, then=restarter.start)
        lines: list[str] = []
        result = pipeline.collect(settings=load_settings(config), progress=lines.append)
    finally:
        relay.close()
        finished.set()
        if restarter.is_alive():
            restarter.join()
        spare_dc.stop()
        spare_dc.start()  # from this thread, for the module's next tests
    assert not errors, errors
    assert any("attempt 1 of 5 failed" in line for line in lines), lines
    frame = pl.read_parquet(result.run_dir / "snapshot" / "ad_users.parquet")
    assert frame.filter(pl.col("dn").str.starts_with("CN=user")).height == 40
    (source,) = result.sources
    assert source.complete and any("read completely on attempt" in n for n in source.notes)


def test_a_silent_dc_times_out_retries_then_fails_with_one_line(
    spare_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spare_dc.info is not None
    info = spare_dc.info
    monkeypatch.setenv(PASSWORD_ENV, info.password())
    relay = Relay(info)
    try:
        config = write_config(
            tmp_path,
            ad_table(info, "corp", url=relay.url, page_size=5, attempts=2, retry_wait=0.1,
                     timeout=1),
        )  # fmt: skip
        relay.fault(after=8000, times=2, stall=True)
        with pytest.raises(InputError) as caught:
            pipeline.collect(settings=load_settings(config))
    finally:
        relay.close()
    line = str(caught.value)
    assert line.startswith(f"{relay.url} page ") and "(gave up after 2 attempts)" in line, line
    assert runs(tmp_path) == []


def test_a_dc_killed_mid_collection_leaves_no_run_and_exits_2(
    spare_dc: SambaDC,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert spare_dc.info is not None and spare_dc.process is not None
    info = spare_dc.info
    pid = spare_dc.process.pid
    monkeypatch.setenv(PASSWORD_ENV, info.password())
    relay = Relay(info)
    try:
        config = write_config(
            tmp_path,
            ad_table(info, "corp", url=relay.url, page_size=5, attempts=3, retry_wait=0.1),
        )
        relay.fault(after=8000, then=lambda: os.kill(pid, signal.SIGKILL))
        code = main(["collect", "--config", str(config)])
    finally:
        relay.close()
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1].startswith("syncaudit: error: ") and "gave up after 3 attempts" in err[-1]
    assert [line for line in err if "failed" in line and "trying again" in line] == [
        err[1],
        err[2],
    ]
    assert info.password() not in "\n".join(err)
    assert runs(tmp_path) == []  # no run, not even a staging directory


WRONG_PASSWORD = "Not-The-Password-1"


@pytest.mark.parametrize(
    ("case", "changes", "expected"),
    [
        ("bad filter", {"filter": "(cn=a"}, "[[ad]] corp: filter: "),
        ("no url", {"url": ""}, "[[ad]] corp has no url: collect reads AD over LDAP"),
        ("unsafe name", {"name": "../corp"}, "collect names its capture raw/ad-<name>.ldif"),
        ("wrong password", {"password_env": "WRONG_PASSWORD"}, "(invalidCredentials: "),
        ("bad base DN", {"base_dn": "OU=Nowhere,DC=corp,DC=example,DC=test"}, "does not exist"),
        ("unreachable host", {"url": "ldaps://127.0.0.9:636", "attempts": 1}, "cannot connect"),
        ("hostname mismatch", {"url": "RELAY_BY_IP"}, "(hostname mismatch)"),
        ("wrong CA", {"ca_file": "OTHER_CA"}, "was not verified against ca_file"),
    ],
)
def test_each_configuration_mistake_is_one_line_exit_2_and_no_run(
    ad_dc: DcInfo,
    password: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    changes: dict[str, object],
    expected: str,
) -> None:
    monkeypatch.setenv("WRONG_PASSWORD", WRONG_PASSWORD)
    relay = Relay(ad_dc)
    if changes.get("url") == "RELAY_BY_IP":
        changes = {**changes, "url": f"ldaps://127.0.0.1:{relay.port}"}
    if changes.get("ca_file") == "OTHER_CA":
        other_ca = make_tls(tmp_path / "other", "127.0.0.9", FOREST_ONE)[0]
        changes = {**changes, "ca_file": str(other_ca)}
    try:
        config = write_config(tmp_path, ad_table(ad_dc, "corp", **{"attempts": 1, **changes}))
        code = main(["collect", "--config", str(config)])
    finally:
        relay.close()
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if line.startswith("syncaudit: error: ")]
    assert code == 2 and errors == [err[-1]], (case, err)
    assert expected in err[-1], (case, err[-1])
    assert password not in err[-1] and WRONG_PASSWORD not in err[-1]
    assert runs(tmp_path) == []


def test_two_tables_reading_the_same_domain_are_one_line_and_exit_2(
    ad_dc: DcInfo,
    ad_seeded: list[Seeded],
    password: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(
        tmp_path,
        ad_table(ad_dc, "corp"),
        ad_table(ad_dc, "corp-again", base_dn=f"{IN_SCOPE_OU},{ad_dc.base_dn}"),
    )
    assert main(["collect", "--config", str(config)]) == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith(f"syncaudit: error: {config}: [[ad]] corp and corp-again read the same")
    assert "they point at the same domain" in line
    assert runs(tmp_path) == []


def test_ad_and_the_tenant_are_collected_into_one_run(
    ad_dc: DcInfo,
    ad_seeded: list[Seeded],
    password: str,
    graph_emulator: GraphEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """[[ad]] and [entra] both configured: one run with both sides, both raw captures."""
    client = graph_emulator.client_config()
    monkeypatch.setenv(SECRET_ENV, client.client_secret or "")
    table = entra_toml(entra_values(graph_emulator))
    config = write_config(tmp_path, ad_table(ad_dc, "corp"), table)
    assert main(["collect", "--config", str(config)]) == 0
    (run_id,) = runs(tmp_path)
    run_dir = tmp_path / "data" / "runs" / run_id
    manifest = json.loads((run_dir / "manifest.json").read_text())
    raw = manifest["collection"]["raw"]
    assert raw[0] == "raw/ad-corp.ldif" and all(n.startswith("raw/graph/") for n in raw[1:])
    assert {s["kind"] for s in manifest["sources"]} >= {"ad", "cloud", "deleted", "roles"}
    assert all(s["complete"] for s in manifest["sources"] if s["kind"] in ("ad", "cloud"))
    cloud = pl.read_parquet(run_dir / "snapshot" / "cloud_users.parquet")
    assert sorted(cloud["upn"]) == [
        "ada@contoso.example", "bob@contoso.example", "carol@contoso.example",
        "dave@contoso.example",
    ]  # fmt: skip
    assert password not in capsys.readouterr().err
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert (client.client_secret or "?").encode() not in path.read_bytes(), path
