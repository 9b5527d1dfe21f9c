"""Speed and client memory of the live Entra read (issue 13) against the Graph emulator, with
plain httpx reading the same pages as the baseline, in the same run.

    python benchmarks/bench_graph.py [--sizes 100000,1000000] [--repeat 3] [--fetch-repeat 7]
                                     [--profile] [--write]

For each size the emulator (tests/graph/emulator.py over generated_tenant(N), 1 synced user in
1,000 with a provisioning error) runs in a process of its own (`python -m tests.graph.serve`),
so the client never shares a GIL with the server. Each measurement is a fresh Python whose
imports are done, token fetched and Polars used once before the clock starts; the ways run in an
order rotating with the repetition, and medians are reported:
- httpx: the users requests syncaudit sends (GET /users/delta?$deltatoken=latest for the
  deltaLink, then GET /users with graph.py's $select and $top=999) with one sync httpx.Client
  over TLS, nextLinks followed to the last page, each page written to a file as graph.py keeps
  it; the baseline;
- httpx-async: the same through httpx.AsyncClient, as graph.py's client is (where the async
  stack's own cost shows);
- sdk: graph.py's users fetch (GraphSession.users: msgraph-sdk's request adapter, kiota's
  middleware, azure-identity's token per request), pages written as it writes them;
- read_entra: the whole live read (every collection, then read_cloud_side to the frames): wall
  time, peak memory growth (VmHWM at the end minus VmRSS before) against the final cloud_users
  frame's buffers (bench_ldap.frame_bytes: a string is a 16-byte view plus its bytes when
  longer than 12) and its estimated_size;
- import bulk / exact: read_cloud_side of the users pages read_entra kept, through entra_bulk
  and through the exact path (files.BULK_GRAPH), what `syncaudit import` of a run costs;
- collect full / delta: graph_delta.collect_entra with no state (full), then CHANGED_PERCENT of
  the users changed in the emulator, then collect_entra from the state the full one left.
Targets (issue 13): the SDK fetch at least 0.8x httpx's throughput; read_entra's peak memory
growth at most 2x the final frame; a 1% delta run at least 20x faster than a full enumeration.
`--profile` runs cProfile over one SDK fetch and one httpx-async fetch of the largest size.
`--write` appends the tables to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_ldap import every, frame_bytes, median, warm_polars  # noqa: E402
from benchmarks.host import append_to_results, hardware, status_kb  # noqa: E402

SECRET_ENV = "SYNCAUDIT_BENCH_GRAPH_SECRET"
FETCHES = ("httpx", "httpx-async", "sdk")
WAYS = (*FETCHES, "read_entra")
IMPORTS = ("import-bulk", "import-exact")
COLLECTS = ("collect-full", "collect-delta")
CHANGED_PERCENT = 1.0
TARGET_DELTA_SPEEDUP = 20.0
TARGET_THROUGHPUT = 0.8
TARGET_MEMORY_FACTOR = 2.0
_NEXT_RE = re.compile(rb'"@odata\.nextLink"\s*:\s*"((?:[^"\\]|\\.)*)"')
_DELTA_RE = re.compile(rb'"@odata\.deltaLink"\s*:\s*"((?:[^"\\]|\\.)*)"')

Config = dict[str, Any]  # what tests.graph.serve prints


# --- the emulator's process -------------------------------------------------------------------


class Emulator:
    """`python -m tests.graph.serve --users N`, stopped by closing its standard input."""

    def __init__(self, users: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.graph.serve", "--users", str(users)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise SystemExit("the Graph emulator did not start")
        self.config: Config = json.loads(line)

    def change(self, percent: float) -> dict[str, int]:
        """That share of the users changed in the emulator's tenant (journalled for delta)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"change {percent}\n")
        self.process.stdin.flush()
        done: dict[str, int] = json.loads(self.process.stdout.readline())
        return done

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- one measurement, in a fresh process --------------------------------------------------------


def settings_for(config: Config) -> Any:
    from audit.config import EntraSettings, Settings

    return Settings(
        entra=EntraSettings(
            tenant_id=config["tenant_id"],
            client_id=config["client_id"],
            auth="client_secret",
            client_secret_env=SECRET_ENV,
            authority_host=config["authority_host"],
            graph_url=f"{config['graph_url']}/v1.0",
            ca_file=config["ca_file"],
        )
    )


def users_urls(config: Config) -> tuple[str, str]:
    """The two first users requests graph.py sends (the deltaLink of now, then the first
    page of every user), as plain URLs."""
    from urllib.parse import quote

    from audit.sources.graph_requests import PAGE_SIZE, USER_SELECT

    select = quote(",".join(USER_SELECT), safe=",")
    root = f"{config['graph_url']}/v1.0/users"
    return (
        f"{root}/delta?$select={select}&$deltatoken=latest",
        f"{root}?$select={select}&$top={PAGE_SIZE}",
    )


def token(config: Config) -> str:
    """A client-credentials token from the emulator's token endpoint, as MSAL asks for one."""
    import httpx

    answer = httpx.post(
        f"{config['authority_host']}/{config['tenant_id']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "scope": f"{config['graph_url']}/.default",
        },
        verify=config["ca_file"],
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def next_page(body: bytes) -> str | None:
    """The nextLink; None on the last page."""
    found = _NEXT_RE.search(body)
    return None if found is None else found.group(1).decode()


def delta_link(body: bytes) -> str:
    found = _DELTA_RE.search(body)
    if found is None:
        raise SystemExit(f"$deltatoken=latest answered without a deltaLink: {body[:200]!r}")
    return found.group(1).decode()


# Each fetch is prepared (imports, token) off the clock and returns the call that is timed:
# it opens the connection, reads every page and returns their number.


def httpx_fetch(config: Config, out: Path) -> Callable[[], int]:
    import httpx

    headers = {"Authorization": f"Bearer {token(config)}", "x-ms-throttle-priority": "low"}
    latest, first = users_urls(config)  # imports graph.py: off the clock

    def run() -> int:
        url: str | None = first
        pages = 0
        with httpx.Client(verify=config["ca_file"], headers=headers, timeout=120) as client:
            answer = client.get(latest)
            answer.raise_for_status()
            delta_link(answer.content)
            while url is not None:
                answer = client.get(url)
                answer.raise_for_status()
                pages += 1
                (out / f"users-{pages}.json").write_bytes(answer.content)
                url = next_page(answer.content)
        return pages

    return run


def httpx_async_fetch(config: Config, out: Path) -> Callable[[], int]:
    import httpx

    headers = {"Authorization": f"Bearer {token(config)}", "x-ms-throttle-priority": "low"}
    latest, first = users_urls(config)  # imports graph.py: off the clock

    async def run() -> int:
        url: str | None = first
        pages = 0
        async with httpx.AsyncClient(
            verify=config["ca_file"], headers=headers, timeout=120
        ) as client:
            answer = await client.get(latest)
            answer.raise_for_status()
            delta_link(answer.content)
            while url is not None:
                answer = await client.get(url)
                answer.raise_for_status()
                pages += 1
                (out / f"users-{pages}.json").write_bytes(answer.content)
                url = next_page(answer.content)
        return pages

    return lambda: asyncio.run(run())


def sdk_fetch(config: Config, out: Path) -> Callable[[], int]:
    from urllib.parse import urlsplit

    from audit.sources.graph import GraphPolicy, GraphSession
    from audit.sources.graph_auth import entra_auth

    entra = settings_for(config).entra
    auth = entra_auth(entra, os.environ, prompt=None)
    # The scope kiota asks for (scheme://host/.default): MSAL's cache then holds the token.
    auth.credential.get_token(f"https://{urlsplit(config['graph_url']).hostname}/.default")

    async def run() -> int:
        session = GraphSession(entra, auth, GraphPolicy(), None)
        try:
            files, _link = await session.users(out, None)
        finally:
            await session.close()
        return len(files)

    def timed() -> int:
        try:
            return asyncio.run(run())
        finally:
            auth.close()

    return timed


FETCH: dict[str, Callable[[Config, Path], Callable[[], int]]] = {
    "httpx": httpx_fetch,
    "httpx-async": httpx_async_fetch,
    "sdk": sdk_fetch,
}


def timed_fetch(way: str, config: Config, out: Path, profile: bool) -> dict[str, Any]:
    """One users fetch: seconds, pages, megabytes received."""
    fetch = FETCH[way](config, out)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    pages = fetch()
    seconds = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        # the SDK's own layers, and the imports done per request (a missing optional module)
        stats.print_stats(r"kiota|msgraph|azure|msal|opentelemetry|uritemplate|_synchron", 40)
        stats.print_callers(r"_find_and_load\b")
    size = sum(p.stat().st_size for p in out.glob("users-*.json"))
    return {"seconds": seconds, "pages": pages, "mb": size / 1024**2}


def read_entra_child(config: Config, out: Path) -> dict[str, Any]:
    from audit.sources.graph import GraphPolicy, read_entra

    settings = settings_for(config)
    warm_polars()
    before_kb = status_kb("VmRSS")
    started = time.perf_counter()
    side = read_entra(settings, raw_dir=out, environ=os.environ, policy=GraphPolicy())
    seconds = time.perf_counter() - started
    frame = side.users
    return {
        "seconds": seconds,
        "growth_mb": (status_kb("VmHWM") - before_kb) / 1024,
        "frame_mb": frame.estimated_size() / 1024**2,
        "frame_real_mb": frame_bytes(frame) / 1024**2,
        "rows": frame.height,
        "live": frame["deleted_at"].null_count(),
        "errors": int((frame["provisioning_errors"].list.len() > 0).sum()),
    }


def collect_child(config: Config, out: Path, kind: str) -> dict[str, Any]:
    """collect_entra as `syncaudit collect` runs it, with the tenant's state in out/state: the
    full run also leaves the run (snapshot and manifest) and state a delta run starts from."""
    import polars as pl

    from audit.sources.graph_delta import collect_entra, save_state
    from audit.store import FORMAT_VERSION, SNAPSHOT_DIR, write_manifest

    settings = settings_for(config)
    run = out / f"run-{kind}"
    warm_polars()
    started = time.perf_counter()
    read = collect_entra(settings, raw_dir=run / "raw", state_dir=out / "state", environ=os.environ)
    seconds = time.perf_counter() - started
    if read.collection.kind != kind:
        raise SystemExit(f"a {kind} run was asked for, collect_entra made a {read.collection}")
    users = read.side.users
    if kind == "full":
        (run / SNAPSHOT_DIR).mkdir(parents=True)
        users.write_parquet(run / SNAPSHOT_DIR / "cloud_users.parquet")
        counts = {"cloud_users": users.height, "cloud_users_deleted": users["deleted_at"].count()}
        write_manifest(
            run, {"format_version": FORMAT_VERSION, "run_id": run.name, "counts": counts}
        )
        save_state(out / "state", settings, read.collection, run)
    live = users.filter(pl.col("deleted_at").is_null()).height
    return {"seconds": seconds, "users": users.height, "live": live}


def import_child(raw: Path, bulk: bool) -> dict[str, Any]:
    from audit.config import Settings
    from audit.sources import files
    from audit.sources.files import CloudExports, read_cloud_side
    from audit.sources.snapshot import taken_at

    graph = raw / "graph"
    users = sorted(graph.glob("users-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    files.BULK_GRAPH = bulk
    warm_polars()
    before_kb = status_kb("VmRSS")
    started = time.perf_counter()
    side = read_cloud_side(CloudExports(cloud=users), settings=Settings(), taken=taken_at(None))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "growth_mb": (status_kb("VmHWM") - before_kb) / 1024,
        "rows": side.users.height,
    }


def child(way: str, config: Config, out: Path, profile: bool) -> dict[str, Any]:
    # httpx imports its transport (httpcore, h11, h2: 35 ms) when it makes its first client:
    # an import like graph.py's own, so done before the clock as they are
    import httpcore  # noqa: F401

    if way in FETCHES:
        return timed_fetch(way, config, out, profile)
    if way == "read_entra":
        return read_entra_child(config, out)
    if way in ("collect-full", "collect-delta"):
        return collect_child(config, out, way.removeprefix("collect-"))
    return import_child(out, bulk=way == "import-bulk")


def run_child(way: str, config: Config, out: Path, profile: bool = False) -> dict[str, Any]:
    env = {**os.environ, SECRET_ENV: config["client_secret"], "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--child", way, json.dumps(config), str(out)]
    answer = subprocess.run(
        command + (["--profile"] if profile else []),
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        stderr=None if profile else subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- the runs and the report ----------------------------------------------------------------------

Figures = dict[int, dict[str, list[dict[str, Any]]]]  # size -> way -> one dict per run


def measure(sizes: list[int], repeat: int, fetch_repeat: int, work: Path) -> Figures:
    figures: Figures = {n: {way: [] for way in (*WAYS, *IMPORTS, *COLLECTS)} for n in sizes}
    for n in sizes:
        emulator = Emulator(n)
        expected = n  # users in the snapshot: soft-deleted ones stay, created ones add
        try:
            # extra rounds of the three fetches alone, rotating, before the full repetitions:
            # on a shared machine their wall times vary by a third, and they are quick to repeat
            for rep in range(max(0, fetch_repeat - repeat)):
                for way in FETCHES[rep % 3 :] + FETCHES[: rep % 3]:
                    out = work / way
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir(parents=True)
                    figures[n][way].append(run_child(way, emulator.config, out))
            for rep in range(repeat):
                order = list(WAYS[rep % len(WAYS) :] + WAYS[: rep % len(WAYS)])
                kept = work / f"read-{n}"
                for way in [*order, *IMPORTS]:
                    out = kept if way in (*IMPORTS, "read_entra") else work / way
                    if way not in IMPORTS:
                        shutil.rmtree(out, ignore_errors=True)
                        out.mkdir(parents=True)
                    result = run_child(way, emulator.config, out)
                    figures[n][way].append(result)
                    # the imports read the kept users pages alone: live users, no deleted ones
                    want = figures[n]["read_entra"][-1]["live"] if way in IMPORTS else expected
                    if "rows" in result and result["rows"] != want:
                        raise SystemExit(f"{want:,} users, {way} read {result['rows']:,}")
                # a full collect, CHANGED_PERCENT of the users changed, then a delta collect
                collect = work / f"collect-{n}"
                shutil.rmtree(collect, ignore_errors=True)
                collect.mkdir()
                figures[n]["collect-full"].append(
                    run_child("collect-full", emulator.config, collect)
                )
                done = emulator.change(CHANGED_PERCENT)
                expected += done["created"]
                result = run_child("collect-delta", emulator.config, collect)
                if result["users"] != expected:
                    raise SystemExit(f"{expected:,} users, the delta run has {result['users']:,}")
                figures[n]["collect-delta"].append({**result, **done})
                print(
                    f"rep {rep + 1} {n:,}: "
                    + "; ".join(f"{w} {figures[n][w][-1]['seconds']:.2f} s" for w in figures[n])
                    + f"; read_entra peak +{figures[n]['read_entra'][-1]['growth_mb']:.0f} MB",
                    flush=True,
                )
        finally:
            emulator.close()
    return figures


def fetch_table(figures: Figures) -> list[str]:
    lines = [
        "| users | pages (MB) | httpx (s) | httpx-async (s) | sdk fetch (s) | sdk / httpx "
        "throughput | sdk runs (s) | httpx runs (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, ways in figures.items():
        base, sdk = median(ways["httpx"], "seconds"), median(ways["sdk"], "seconds")
        lines.append(
            f"| {n:,} | {ways['sdk'][0]['pages']:,} ({median(ways['sdk'], 'mb'):.0f}) | "
            f"{base:.2f} | {median(ways['httpx-async'], 'seconds'):.2f} | {sdk:.2f} | "
            f"{base / sdk:.2f}x | {every(ways['sdk'])} | {every(ways['httpx'])} |"
        )
    return lines


def read_table(figures: Figures) -> list[str]:
    lines = [
        "| users | read_entra (s) | peak growth (MB) | frame buffers (MB) | frame "
        "estimated_size (MB) | peak / frame (buffers, estimated_size) | import bulk (s, peak "
        "MB) | import exact (s, peak MB) | read_entra runs (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, ways in figures.items():
        runs = ways["read_entra"]
        growth, real, frame = (median(runs, k) for k in ("growth_mb", "frame_real_mb", "frame_mb"))
        lines.append(
            f"| {n:,} | {median(runs, 'seconds'):.2f} | {growth:.0f} | {real:.1f} | "
            f"{frame:.1f} | {growth / real:.1f}x, {growth / frame:.1f}x | "
            f"{median(ways['import-bulk'], 'seconds'):.2f}, "
            f"{median(ways['import-bulk'], 'growth_mb'):.0f} | "
            f"{median(ways['import-exact'], 'seconds'):.2f}, "
            f"{median(ways['import-exact'], 'growth_mb'):.0f} | "
            f"{every(runs)} |"
        )
    return lines


def delta_table(figures: Figures) -> list[str]:
    lines = [
        f"| users | full collect (s) | {CHANGED_PERCENT:g}% changed: delta collect (s) | "
        "speed-up | changes (updated / soft-deleted / created) | delta runs (s) |",
        "|---|---|---|---|---|---|",
    ]
    for n, ways in figures.items():
        full, delta = (
            median(ways["collect-full"], "seconds"),
            median(ways["collect-delta"], "seconds"),
        )
        last = ways["collect-delta"][-1]
        lines.append(
            f"| {n:,} | {full:.2f} | {delta:.2f} | {full / delta:.1f}x | {last['updated']:,} / "
            f"{last['soft_deleted']:,} / {last['created']:,} | {every(ways['collect-delta'])} |"
        )
    return lines


def verdicts(figures: Figures) -> list[str]:
    out = []
    for n, ways in figures.items():
        throughput = median(ways["httpx"], "seconds") / median(ways["sdk"], "seconds")
        runs = ways["read_entra"]
        memory = median(runs, "growth_mb") / median(runs, "frame_real_mb")
        speedup = median(ways["collect-full"], "seconds") / median(ways["collect-delta"], "seconds")
        quick = "met" if speedup >= TARGET_DELTA_SPEEDUP else "NOT met"
        fast = "met" if throughput >= TARGET_THROUGHPUT else "NOT met"
        small = "met" if memory <= TARGET_MEMORY_FACTOR else "NOT met"
        out.append(
            f"- {n:,} users: the SDK fetch {throughput:.2f}x httpx's throughput (target >= "
            f"{TARGET_THROUGHPUT}x: {fast}); read_entra's peak memory growth {memory:.1f}x the "
            f"final frame's buffers (target <= {TARGET_MEMORY_FACTOR:.0f}x: {small}); a delta "
            f"collect after {CHANGED_PERCENT:g}% changes {speedup:.1f}x faster than a full one "
            f"(target >= {TARGET_DELTA_SPEEDUP:.0f}x: {quick})"
        )
    return out


def machine() -> str:
    from importlib.metadata import version

    shown = ", ".join(
        f"{name} {version(name)}"
        for name in ("httpx", "polars", "msgraph-sdk", "microsoft-kiota-http", "azure-identity")
    )
    python = platform.python_version()
    return f"{hardware()}; Python {python}, {shown}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fetch-repeat", type=int, default=0, help="runs of each fetch way")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("WAY", "CONFIG", "OUT"))
    args = parser.parse_args()
    if args.child:
        way, config, out = args.child
        print(json.dumps(child(way, json.loads(config), Path(out), args.profile)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    started = datetime.now(UTC)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-graph-") as tmp:
        if args.profile:
            emulator = Emulator(max(sizes))
            try:
                for way in ("sdk", "httpx-async"):
                    out = Path(tmp) / f"profile-{way}"
                    out.mkdir()
                    print(f"--- {way} ---", file=sys.stderr, flush=True)
                    print(run_child(way, emulator.config, out, profile=True))
            finally:
                emulator.close()
            return
        figures = measure(sizes, args.repeat, args.fetch_repeat, Path(tmp))
    lines = [
        "",
        f"Machine: {machine()}. Date: {started:%Y-%m-%d %H:%M} UTC; load average at the start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min). Medians of "
        f"{args.repeat} ({max(args.repeat, args.fetch_repeat)} for the fetches).",
        "",
        *fetch_table(figures),
        "",
        *read_table(figures),
        "",
        *delta_table(figures),
        "",
        *verdicts(figures),
    ]
    print("\n".join(lines))
    if args.write:
        append_to_results("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
