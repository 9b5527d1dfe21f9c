"""Speed and client memory of the live AD reader (issue 12) against a live Samba DC, with
OpenLDAP's ldapsearch reading the same pages as the baseline, in the same run.

    python benchmarks/bench_ldap.py [--sizes 10000,50000] [--repeat 5] [--dir DIR] [--write]
        [--profile]

One DC (tests/ad/samba_dc.py) on 127.0.3.2 holds max(sizes) users in nested OUs, so every
size is one subtree: the smallest size's users are in the innermost OU, each larger size adds
its users one OU further out, and a size is read with the OU holding it as base_dn. The users
are seeded before samba starts, straight into its sam.ldb through Samba's own Python bindings
(/usr/bin/python3), one transaction per user: the samdb modules give them real objectGUIDs
and SIDs as an LDAP add would, about twice as fast as LDAP adds at 50k users but still slow
(~13 minutes for 50k: RESULTS.md says why). The seeding rate is printed; --ldap-sample N also
adds N users over LDAPS with two connections, for comparison. `--dir` keeps the seeded DC
for later runs.

For each repetition and size, each in its own process, in an order rotating with the
repetition (`--before DIR` adds another checkout's reader, e.g. the one before a change):
- ldapsearch: the live read's filter and attribute list, LDAPS verified against the DC's CA,
  paged by 1000 (-E pr=1000/noprompt), LDIF to /dev/null; wall time of the process;
- syncaudit: read_ad_ldap with page_size 1000 through AdRows.frame(), in a fresh Python whose
  imports are done (and Polars used once) before the clock starts: wall time, peak memory
  growth (VmHWM at the end minus VmRSS before the read), the frame's buffers (frame_bytes:
  strings counted as Polars stores them) and its estimated_size.
Medians are reported. Targets (issue 12): syncaudit at most 1.3x ldapsearch's wall time, peak
memory growth at most 3x the final frame (its buffers; estimated_size is shown too).
`--profile` runs cProfile over one read of the largest size and prints where the time went.
`--write` appends the table to RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.host import append_to_results, hardware, status_kb  # noqa: E402 - this checkout's, before TREE's

# A read child may measure another checkout's reader (--before): its tree comes first.
TREE = Path(os.environ.get("BENCH_LDAP_TREE") or ROOT)
if str(TREE) not in sys.path:
    sys.path.insert(0, str(TREE))

ADDRESS = "127.0.3.2"  # other sessions' DCs use 127.0.0.2-4, 127.0.1.x and 127.0.2.x
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-samba is built for it, not the venv
PAGE_SIZE = 1000
TARGET_TIME_RATIO = 1.3
TARGET_MEMORY_FACTOR = 3.0
SEEDED_MARK = "bench-seeded.json"


def nested_ous(sizes: list[int]) -> list[str]:
    """OU=Bench10000,OU=Bench50000 for sizes 10000, 50000: innermost (smallest) first."""
    ordered = sorted(sizes)
    return [",".join(f"OU=Bench{n}" for n in ordered[i:]) for i in range(len(ordered))]


# --- seeding (runs in /usr/bin/python3 with Samba's bindings, samba stopped) ------------------


def seed_user(i: int, base: str, ou: str) -> dict[str, Any]:
    """A user as a synced estate has them: UPN, mail, several proxyAddresses, every third
    with an mS-DS-ConsistencyGuid, some disabled, some names beyond ASCII."""
    given = ("Ada", "Bo", "Chloë", "Dmitri", "Eda", "François", "Gus", "Hélène")[i % 8]
    sam = f"user{i:06d}"
    mail = f"{given.lower()}.{sam}@corp.example.test"
    attrs: dict[str, Any] = {
        "dn": f"CN={given} {sam},{ou},{base}",
        "objectClass": "user",
        "sAMAccountName": sam,
        "userPrincipalName": f"{sam}@corp.example.test",
        "mail": mail,
        "givenName": given,
        "sn": f"Surname{i % 997}",
        "displayName": f"{given} Surname{i % 997} ({sam})",
        "employeeID": f"E{i:07d}",
        "userAccountControl": "514" if i % 10 == 9 else "512",
        "proxyAddresses": [
            f"SMTP:{mail}",
            f"smtp:{sam}@corp.mail.onmicrosoft.test",
            f"smtp:{sam}@old.example.test",
            f"X500:/o=Corp/ou=Exchange Administrative Group/cn=Recipients/cn={sam}",
        ][: 2 + i % 3],
    }
    if i % 3 == 0:
        attrs["mS-DS-ConsistencyGuid"] = uuid.UUID(int=i + 1).bytes_le
    return attrs


def seed_child(directory: Path, base: str, sizes: list[int]) -> None:
    """Write the OUs and users into sam.ldb, one transaction per user (a large transaction
    is slower: Samba's ldb copies its growing index cache at every nested commit)."""
    samdb: Any = importlib.import_module("samba.samdb")
    param: Any = importlib.import_module("samba.param")
    auth: Any = importlib.import_module("samba.auth")
    ldb_module: Any = importlib.import_module("ldb")
    lp = param.LoadParm()
    lp.load(str(directory / "etc" / "smb.conf"))
    db = samdb.SamDB(
        url=str(directory / "private" / "sam.ldb"), session_info=auth.system_session(), lp=lp
    )
    ous = nested_ous(sizes)
    for ou in reversed(ous):
        db.add({"dn": f"{ou},{base}", "objectClass": "organizationalUnit"})
    started = time.monotonic()
    done = 0
    for ou, upto in zip(ous, sorted(sizes), strict=True):
        for i in range(done, upto):
            attrs = seed_user(i, base, ou)
            guid = attrs.pop("mS-DS-ConsistencyGuid", None)
            message = ldb_module.Message.from_dict(db, attrs, ldb_module.FLAG_MOD_ADD)
            if guid is not None:
                message["mS-DS-ConsistencyGuid"] = ldb_module.MessageElement(
                    guid, ldb_module.FLAG_MOD_ADD, "mS-DS-ConsistencyGuid"
                )
            db.add(message)
            if (i + 1) % 10000 == 0:
                rate = (i + 1) / (time.monotonic() - started)
                print(f"seeded {i + 1} users ({rate:.0f}/s)", file=sys.stderr, flush=True)
        done = upto
    print(json.dumps({"users": done, "seconds": time.monotonic() - started}))


# --- the DC -----------------------------------------------------------------------------------


@contextmanager
def seeded_dc(directory: Path, sizes: list[int]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A running DC holding max(sizes) users: provisioned and seeded in `directory`, or the
    one a previous run seeded there."""
    from tests.ad import samba_dc

    samba_dc.ensure_packages()
    mark = directory / SEEDED_MARK
    dc = samba_dc.SambaDC(directory, ADDRESS, samba_dc.FOREST_ONE)
    if mark.is_file() and json.loads(mark.read_text())["sizes"] == sizes:
        seeding = json.loads(mark.read_text())
        dc.info = replace_info(samba_dc, directory)
        seeding["reused"] = True
    else:
        if mark.is_file():  # seeded for other sizes: ours to replace
            shutil.rmtree(directory)
        elif directory.exists() and any(directory.iterdir()):
            raise SystemExit(f"{directory} is not empty and holds no benchmark DC: give another")
        info = dc.provision()
        out = subprocess.run(
            [SYSTEM_PYTHON, __file__, "--seed-child", str(directory), info.base_dn,
             ",".join(map(str, sizes))],
            check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        seeding = {**json.loads(out.stdout.splitlines()[-1]), "sizes": sizes}
        mark.write_text(json.dumps(seeding))
        seeding["reused"] = False
    try:
        yield dc.start(), seeding
    finally:
        dc.stop()


def replace_info(samba_dc: Any, directory: Path) -> Any:
    """The DcInfo SambaDC.provision() gave for this directory."""
    return samba_dc.DcInfo.provisioned(samba_dc.FOREST_ONE, ADDRESS, directory)


def ldap_seed_sample(info: Any, count: int, connections: int = 2) -> float:
    """Users per second when `count` users are added over LDAPS by `connections` threads."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.ad.client import ldaps

    base = info.base_dn
    # a DC kept with --dir gets new names each run (sAMAccountName: at most 20 characters)
    stamp = int(time.time()) % 10**6
    ou = f"OU=LdapSample{stamp}"
    setup = ldaps(info)
    setup.add(f"{ou},{base}", ["top", "organizationalUnit"])
    setup.unbind()

    def add_some(worker: int) -> None:
        connection = ldaps(info)
        for i in range(worker, count, connections):
            attrs = seed_user(10**12 + stamp * 10**5 + i, base, ou)
            dn = attrs.pop("dn")
            attrs.pop("objectClass")
            if not connection.add(dn, ["top", "person", "organizationalPerson", "user"], attrs):
                raise SystemExit(f"LDAP add {dn}: {connection.result}")
        connection.unbind()

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(add_some, range(connections)))
    return count / (time.monotonic() - started)


# --- measurements -----------------------------------------------------------------------------


def source_config(info: Any, base: str) -> Any:
    from audit.config import AdSource

    return AdSource(
        name="bench",
        url=info.ldaps_url,
        ca_file=str(info.ca_file),
        bind_dn=info.bind_dn,
        password_file=str(info.password_file),
        base_dn=base,
        page_size=PAGE_SIZE,
    )


def ldapsearch_seconds(info: Any, base: str) -> float:
    from audit.sources.ad import prepare_ad_source
    from audit.sources.ldap import ldap_attributes
    from audit.sources.ldap_pages import PEOPLE_FILTER

    config = source_config(info, base)
    attributes = ldap_attributes(prepare_ad_source(config, config.name, None))
    # LDAPNOINIT would also drop LDAPTLS_CACERT: the CA is verified, as the live read does.
    env = {**os.environ, "LDAPTLS_CACERT": str(info.ca_file), "LDAPTLS_REQCERT": "demand"}
    command = [
        "ldapsearch", "-LLL", "-x", "-H", info.ldaps_url, "-D", info.bind_dn,
        "-y", str(info.password_file), "-b", base, "-E", f"pr={PAGE_SIZE}/noprompt",
        PEOPLE_FILTER, *attributes,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def read_child(info_json: str, base: str, profile: bool) -> dict[str, Any]:
    """One live read in this (fresh) process: seconds, peak growth, frame size, rows."""
    from tests.ad.samba_dc import DcInfo, Forest

    fields = json.loads(info_json)
    info = DcInfo(
        **{
            **fields,
            "password_file": Path(fields["password_file"]),
            "ca_file": Path(fields["ca_file"]),
            "directory": Path(fields["directory"]),
            "forest": Forest(**fields["forest"]),
        }
    )
    from audit.sources.ad import AdRows
    from audit.sources.ldap import read_ad_ldap

    config = source_config(info, base)
    warm_polars()
    before_kb = status_kb("VmRSS")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    rows = AdRows()
    read_ad_ldap(config, rows)
    frame = rows.frame()
    seconds = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
    return {
        "seconds": seconds,
        "growth_mb": (status_kb("VmHWM") - before_kb) / 1024,
        "frame_mb": frame.estimated_size() / 1024**2,
        "frame_real_mb": frame_bytes(frame) / 1024**2,
        "rows": frame.height,
    }


def warm_polars() -> None:
    """Polars' first use (thread pool, allocator arenas, the string kernels) costs a fixed
    9-18 MB that no read size changes: done before the baseline, so the growth measured is
    the read's, in any process that has used Polars once (analyze, the service)."""
    import polars as pl

    small = pl.DataFrame({"a": ["x\x00y", ""], "b": [True, None]})
    pl.concat([small, small], rechunk=False).with_columns(pl.col("a").str.split("\x00")).sort("a")


def frame_bytes(frame: Any) -> int:
    """The bytes a frame's buffers hold. Polars stores a string as a 16-byte view, plus its
    bytes in a data buffer when longer than 12 (shorter ones sit inside the view);
    estimated_size counts only the string bytes, so a column of short strings looks almost
    free. Other columns as estimated_size counts them; list offsets 8 bytes a row."""
    import polars as pl

    total = 0
    for column in frame.iter_columns():
        strings = None
        if column.dtype == pl.String:
            strings = column
        elif column.dtype == pl.List(pl.String):
            strings = column.explode()
            total += 8 * (len(column) + 1)
        if strings is None:
            total += column.estimated_size()
            continue
        lengths = strings.str.len_bytes().fill_null(0)
        total += 16 * len(strings) + int(lengths.filter(lengths > 12).sum())
        total += (len(strings) + 7) // 8  # validity
    return total


def syncaudit_read(
    info: Any, base: str, profile: bool = False, tree: Path = ROOT
) -> dict[str, Any]:
    fields = {
        name: str(value) if isinstance(value, Path) else value
        for name, value in vars(info).items()
        if name != "timings"
    }
    fields["forest"] = vars(info.forest)
    # that tree's audit, not an installed one
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_LDAP_TREE": str(tree)}
    out = subprocess.run(
        [sys.executable, __file__, "--read-child", json.dumps(fields), base]
        + (["--profile"] if profile else []),
        env=env, check=True, stdout=subprocess.PIPE, stderr=None if profile else subprocess.PIPE,
        text=True, cwd=tree,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- the report -------------------------------------------------------------------------------


def machine() -> str:
    samba = subprocess.run(["samba", "--version"], capture_output=True, text=True, check=False)
    ldap3: Any = importlib.import_module("ldap3")
    pyasn1: Any = importlib.import_module("pyasn1")
    return (
        f"{hardware()}; Python {platform.python_version()}, "
        f"ldap3 {ldap3.__version__}, pyasn1 {pyasn1.__version__}, {samba.stdout.strip()} "
        "(single process, `-M single`)"
    )


Figures = dict[int, dict[str, list[dict[str, float]]]]  # size -> way -> one dict per run


def measure(info: Any, sizes: list[int], repeat: int, readers: dict[str, Path]) -> Figures:
    """Every way (ldapsearch, then each tree's reader) per size and repetition, in an order
    that rotates each repetition so no way always runs first."""
    ous = nested_ous(sizes)
    bases = {n: f"{ou},{info.base_dn}" for n, ou in zip(sorted(sizes), ous, strict=True)}
    ways = ["ldapsearch", *readers]
    figures: Figures = {n: {way: [] for way in ways} for n in sizes}
    for rep in range(repeat):
        for n in sizes:
            order = ways[rep % len(ways) :] + ways[: rep % len(ways)]
            for way in order:
                if way == "ldapsearch":
                    figures[n][way].append({"seconds": ldapsearch_seconds(info, bases[n])})
                    continue
                result = syncaudit_read(info, bases[n], tree=readers[way])
                if result["rows"] != n:
                    raise SystemExit(f"{n} users seeded, {way} read {result['rows']} rows")
                figures[n][way].append(result)
            print(
                f"rep {rep + 1} {n:,}: "
                + "; ".join(f"{way} {figures[n][way][-1]['seconds']:.2f} s" for way in ways)
                + "; "
                + "; ".join(
                    f"{way} peak +{figures[n][way][-1]['growth_mb']:.0f} MB" for way in readers
                ),
                flush=True,
            )
    return figures


def median(runs: Sequence[Mapping[str, Any]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def every(runs: Sequence[Mapping[str, Any]]) -> str:
    """Each run's seconds, for a table's last column."""
    return ", ".join(f"{run['seconds']:.2f}" for run in runs)


def table(figures: Figures) -> list[str]:
    lines = [
        "| users | reader | ldapsearch (s) | reader (s) | ratio | peak growth (MB) | frame "
        "buffers (MB) | frame estimated_size (MB) | peak / frame (buffers, estimated_size) "
        "| reader runs (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, ways in figures.items():
        base = median(ways["ldapsearch"], "seconds")
        for way, runs in ways.items():
            if way == "ldapsearch":
                continue
            ours, growth = median(runs, "seconds"), median(runs, "growth_mb")
            frame, real = median(runs, "frame_mb"), median(runs, "frame_real_mb")
            lines.append(
                f"| {n:,} | {way} | {base:.2f} | {ours:.2f} | {ours / base:.2f}x | "
                f"{growth:.0f} | {real:.1f} | {frame:.1f} | {growth / real:.1f}x, "
                f"{growth / frame:.1f}x | {every(runs)} |"
            )
    return lines


def verdicts(figures: Figures) -> list[str]:
    out = []
    for n, ways in figures.items():
        runs = ways["syncaudit"]
        ratio = median(runs, "seconds") / median(ways["ldapsearch"], "seconds")
        estimated = median(runs, "growth_mb") / median(runs, "frame_mb")
        memory = median(runs, "growth_mb") / median(runs, "frame_real_mb")
        time_ok = "met" if ratio <= TARGET_TIME_RATIO else "NOT met"
        memory_ok = "met" if memory <= TARGET_MEMORY_FACTOR else "NOT met"
        out.append(
            f"- {n:,} users: wall time {ratio:.2f}x ldapsearch (target <= {TARGET_TIME_RATIO}x: "
            f"{time_ok}); peak memory growth {memory:.1f}x the frame's buffers (target "
            f"<= {TARGET_MEMORY_FACTOR:.0f}x: {memory_ok}), {estimated:.1f}x its estimated_size"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="the DC's directory, kept and reused")
    parser.add_argument("--ldap-sample", type=int, default=0, help="users added over LDAPS")
    parser.add_argument("--before", type=Path, help="also measure this checkout's reader")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--seed-child", nargs=3)
    parser.add_argument("--read-child", nargs=2)
    args = parser.parse_args()
    if args.seed_child:
        directory, base, sizes_text = args.seed_child
        seed_child(Path(directory), base, [int(s) for s in sizes_text.split(",")])
        return
    if args.read_child:
        info_json, base = args.read_child
        print(json.dumps(read_child(info_json, base, args.profile)))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    directory = (args.dir or Path(f"/tmp/bench-ldap-{os.getpid()}")).resolve()
    load = os.getloadavg()[0]
    started = datetime.now(UTC)
    try:
        with seeded_dc(directory, sizes) as (info, seeding):
            how = "reused" if seeding["reused"] else "seeded"
            rate = seeding["users"] / seeding["seconds"]
            print(f"{how}: {seeding['users']:,} users in {seeding['seconds']:.0f} s ({rate:.0f}/s)")
            ldap_rate = ldap_seed_sample(info, args.ldap_sample) if args.ldap_sample else None
            if ldap_rate is not None:
                print(
                    f"LDAP adds: {ldap_rate:.0f} users/s ({args.ldap_sample} users, 2 connections)"
                )
            readers = {"syncaudit": ROOT}
            if args.before:
                readers["before"] = args.before.resolve()
            if args.profile:
                top = f"{nested_ous(sizes)[-1]},{info.base_dn}"
                for way, tree in readers.items():
                    print(f"--- {way}", flush=True)
                    print(json.dumps(syncaudit_read(info, top, profile=True, tree=tree)))
                return
            figures = measure(info, sizes, args.repeat, readers)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    lines = [
        "",
        "## Live AD read (issue 12): read_ad_ldap against ldapsearch",
        "",
        f"Machine: {machine()}. Date: {started:%Y-%m-%d %H:%M} UTC; load average "
        f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (shared machine).",
        f"`benchmarks/bench_ldap.py --sizes {args.sizes} --repeat {args.repeat}`: medians of "
        f"{args.repeat}; {seeding['users']:,} users seeded into sam.ldb at {rate:.0f} users/s",
        "",
        *table(figures),
        "",
        *verdicts(figures),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        append_to_results(text)


if __name__ == "__main__":
    main()
