"""The built-in "Contoso" estate: realistic export files with known ground truth.

``write_demo_inputs`` writes what a consultant is handed for a readiness assessment: an ldifde
export of the ``corp.contoso.com`` forest, Graph JSON pages of the tenant's users (paged with
``@odata.nextLink`` like the real API, one file per page as Graph Explorer saves them), the
soft-deleted users, ``/domains``, ``/organization``
with ``/directory/onPremisesSynchronization``, the role assignments and PIM eligibilities, and a
config TOML. ``expected_findings`` is the ground truth: every finding code of the design's
table is planted on purpose, each in a few realistic variants, together with the secondary
findings the planted problem really causes. The background population (about 2,900 people) is
clean: matched, verified suffixes, valid attributes, synced minutes before the tenant's last
cycle, so "nothing found that was not planted" is a meaningful test of the rules.

Everything is deterministic: a seeded generator and dates relative to ``DEMO_TAKEN_AT``.

The modules, each importing only the ones above it:

- ``estate``: the tenant and forest, the people, the builders and the clean base population;
- ``plants``: the planted problem cases, and ``build_estate`` (base population + plants);
- ``writers``: the export files and the config (``write_demo_inputs``, ``DemoInputs``);
- ``truth``: the expected findings and how a finding is keyed (``finding_key``).
"""

from __future__ import annotations

from audit.demo.estate import DEMO_TAKEN_AT, Estate
from audit.demo.plants import build_estate
from audit.demo.truth import expected_findings, finding_key, finding_keys
from audit.demo.writers import DemoInputs, write_demo_inputs

__all__ = [
    "DEMO_TAKEN_AT",
    "DemoInputs",
    "Estate",
    "build_estate",
    "expected_findings",
    "finding_key",
    "finding_keys",
    "write_demo_inputs",
]
