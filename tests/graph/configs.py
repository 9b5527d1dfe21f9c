"""The [entra] table a test's config gives for the Graph emulator: the app, its secret's
variable, the emulator as authority and graph_url, its CA. One place, so every test reads the
tenant the way production is configured."""

from __future__ import annotations

import json
from typing import Any

from tests.graph.emulator import App, GraphEmulator

SECRET_ENV = "SYNCAUDIT_TEST_GRAPH_SECRET"


def entra_values(emulator: GraphEmulator, app: App | None = None, **entra: Any) -> dict[str, Any]:
    """[entra] keys and values for `emulator` (client secret auth), `entra` on top."""
    client = emulator.client_config(app)
    return {
        "tenant_id": client.tenant_id,
        "client_id": client.client_id,
        "client_secret_env": SECRET_ENV,
        "authority_host": client.authority_host,
        "graph_url": f"{client.graph_url}/v1.0",
        "ca_file": str(client.ca_file),
        **entra,
    }


def entra_toml(values: dict[str, Any]) -> str:
    return "[entra]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
