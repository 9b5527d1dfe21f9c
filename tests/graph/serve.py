"""The Graph emulator in a process of its own, for benchmarks: a client timed in another process
does not share a GIL with the server it reads.

    python -m tests.graph.serve --users N [--dir DIR] [--seed S]

Serves generated_tenant(N) (tests/graph/tenant.py) as tests/graph/emulator.py does for the tests,
prints the client's configuration as one JSON line on stdout (graph_url, authority_host,
tenant_id, client_id, client_secret, certificate_file, ca_file), and stops when its standard
input closes (the parent went away or closed the pipe) or on SIGTERM. The TLS material is kept in
DIR (a temporary folder, removed at the end, when not given).

A line `change PERCENT` on standard input changes that share of the users through the tenant's
journalled store (so /users/delta reports them): of every 100 changed, 80 updated (displayName,
mail), 10 soft-deleted and 10 created; one JSON line on stdout answers with the counts.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from tests.graph.emulator import ClientConfig, GraphEmulator
from tests.graph.tenant import Tenant, generated_tenant, user


def config_json(config: ClientConfig) -> str:
    return json.dumps(
        {
            "graph_url": config.graph_url,
            "authority_host": config.authority_host,
            "tenant_id": config.tenant_id,
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "certificate_file": str(config.certificate_file) if config.certificate_file else None,
            "ca_file": str(config.ca_file),
        }
    )


def change(tenant: Tenant, users: int, percent: float, round_: int) -> dict[str, int]:
    """`percent` of the generated users changed, spread evenly over the tenant."""
    store = tenant.users
    generated = store.generated
    assert generated is not None
    count = max(1, round(users * percent / 100))
    step = max(1, users // count)
    done = {"updated": 0, "soft_deleted": 0, "created": 0}
    for k, i in enumerate(range(round_, users, step)):
        if k == count:
            break
        user_id = generated.user_id(i)
        if store.get(user_id) is None:
            continue
        if k % 10 == 0:
            store.soft_delete(user_id)
            done["soft_deleted"] += 1
        elif k % 10 == 1:
            store.create(user(f"new{round_}-{k}@contoso.example", synced=True))
            done["created"] += 1
        else:
            store.update(user_id, displayName=f"Changed {round_} {i}", mail=f"c{i}@contoso.example")
            done["updated"] += 1
    return done


def serve(users: int, directory: Path, seed: int) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    with GraphEmulator(generated_tenant(users, seed=seed), directory) as emulator:
        print(config_json(emulator.client_config()), flush=True)

        # Standard input closing is the stop signal a parent cannot forget to send.
        def until_closed() -> None:
            rounds = 0
            for line in sys.stdin:
                words = line.split()
                if words[:1] == ["change"] and len(words) == 2:
                    rounds += 1
                    done = change(emulator.tenant, users, float(words[1]), rounds)
                    print(json.dumps(done), flush=True)
            stop.set()

        threading.Thread(target=until_closed, daemon=True).start()
        stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.graph.serve", description=__doc__)
    parser.add_argument("--users", type=int, required=True, help="generated users to serve")
    parser.add_argument("--dir", type=Path, help="where the TLS material goes (default: temp)")
    parser.add_argument("--seed", type=int, default=1, help="generated_tenant's seed")
    args = parser.parse_args(argv)
    if args.dir is not None:
        serve(args.users, args.dir, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="graph-emulator-") as tmp:
        serve(args.users, Path(tmp), args.seed)


if __name__ == "__main__":
    main()
