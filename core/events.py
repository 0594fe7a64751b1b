"""Where this process's metric events go: to :mod:`core.metrics` when something can read them, else nowhere.

Loading ``prometheus_client`` costs a one-shot process about 30 ms (its exposition module pulls in
``http.server``, ``ssl`` and ``urllib``), a sixth of ``cap verify`` on a small proof. Counters set in a
process that nobody scrapes vanish at exit, so the code paths on the verify path (``core.verify``,
``core.enforce``, ``core.compat``, ``core.prover``) meter through :func:`sink`:

- with ``PROMETHEUS_MULTIPROC_DIR`` set (every child of ``cap serve``, a CLI pointed at the service's metrics
  directory) events go to the registry, which writes them to that directory;
- in a process that has loaded :mod:`core.metrics` (the API serving ``/metrics``, a test reading the
  registry) events go to that registry;
- otherwise (a plain ``cap verify``) there is nobody to read them, and nothing is loaded or counted.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def sink() -> ModuleType | None:
    """:mod:`core.metrics` when this process's events can be read, else ``None``."""
    loaded = sys.modules.get("core.metrics")
    if loaded is not None:
        return loaded
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import core.metrics

        return core.metrics
    return None
