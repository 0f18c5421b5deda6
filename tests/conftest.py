"""Suite-wide settings for the parallel tiers: the collection order, and the app's warm-up.

pytest-xdist's `--dist loadscope` hands whole modules to the workers in collection order, one at
a time as they finish. A long module collected late then runs alone at the end while the other
workers idle. Handing
out the longest modules first (the classic longest-first schedule) lets the many short modules
fill the gaps, so every worker finishes at about the same time.

LONGEST_FIRST lists the modules that take the longest, longest first: every module over ~0.3 %
of the tier's summed test time (~1 s quiet), measured from the start and end of every test on
each worker in two back-to-back runs (busy 2-core machine, 2026-12-07 16:00-16:20 UTC); the
others keep their collection order after them. Listing only the modules over ~4 s left 3-4 s
modules (test_demo_history, test_embedded_db, test_supply_chart) to run last: the workers
finished 199-209 s into one run, 228-237 s into the other. The list only affects the order: a
module missing from it, or listed out of date, just runs later. The tests inside a module keep
their order (some run in file order on purpose).

`create_app`'s start walks every router and compiles every template before the first request
(api.app.warm_up: a cold first page costs the visitor nothing). In a test, each TestClient starts
its own app, and the warm-up is ~0.35 CPU-s of the ~0.4 s such a start costs, several hundred
times per run, while a test's few requests build only the routes they reach (~0.05 s). The
tests skip it, except those marked `warm_up` (tests/api/test_warm_up.py checks the warm-up
itself); processes the tests start (`oxy api run`, the browser tier's server) keep it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

LONGEST_FIRST = (
    # ~3 s, but ~18 s in a fresh checkout, which installs its third-party edge node first.
    "tests/bridge/test_sparkplug_thirdparty.py",
    "tests/api/test_policy_matrix.py",
    "tests/api/test_accounting_ahead.py",
    "tests/api/test_reports.py",
    "tests/web/test_admin_registry.py",
    "tests/api/test_report_rules.py",
    "tests/api/test_auth.py",
    "tests/api/test_devices.py",
    "tests/api/test_page_exports.py",
    "tests/coordination/test_workflow.py",
    "tests/api/test_date_range.py",
    "tests/api/test_report_props.py",
    "tests/coordination/test_sync.py",
    "tests/test_cli.py",
    "tests/coordination/test_pages.py",
    "tests/test_migrations.py",
    "tests/ingest/test_fuzz.py",
    "tests/api/test_login_cost.py",
    "tests/api/test_engineer_scope.py",
    "tests/api/test_report_pdf.py",
    "tests/api/test_response_models.py",
    "tests/api/test_form_units.py",
    "tests/ingest/test_ingest.py",
    "tests/test_registry_import.py",
    "tests/ingest/test_contract_v2.py",
    "tests/api/test_login_burst.py",
    "tests/api/test_export_kind.py",
    "tests/api/test_password_lifecycle.py",
    "tests/accounts/test_delegated_accounts.py",
    "tests/alerts/test_webhook_ssrf.py",
    "tests/api/test_accounting_api.py",
    "tests/rates/test_reporting_rate.py",
    "tests/gateway/test_gateway_mqtt.py",
    "tests/api/test_accounting.py",
    "tests/gateway/test_edge_alarm.py",
    "tests/engineer/test_engineer_actions.py",
    "tests/engineer/test_engineer_pages.py",
    "tests/test_message_size.py",
    "tests/alerts/test_rules.py",
    "tests/api/test_auth_cli.py",
    "tests/ingest/test_poison.py",
    "tests/api/test_report_pdf_layout.py",
    "tests/bridge/test_run.py",
    "tests/gateway/test_mqtt311.py",
    "tests/ingest/test_retired_session.py",
    "tests/dashboards/test_sql.py",
    "tests/coordination/test_suggest.py",
    "tests/test_demo_history.py",
    "tests/api/test_audit.py",
    "tests/api/test_accounting_accuracy.py",
    "tests/web/test_supply_chart.py",
    "tests/api/test_report_rules_props.py",
    "tests/api/test_map_data.py",
    "tests/api/test_auth_attack.py",
    "tests/dashboards/test_push.py",
    "tests/test_embedded_db.py",
    "tests/bridge/test_end_to_end_ack.py",
    "tests/api/test_accounting_batched.py",
    "tests/alerts/test_lifecycle.py",
    "tests/api/test_deadband_accuracy.py",
    "tests/api/test_warm_up.py",
    "tests/gateway/test_sim_process.py",
    "tests/bridge/test_operations.py",
    "tests/api/test_openapi_fuzz.py",
    "tests/ingest/test_rollup_queue.py",
    "tests/bridge/test_sparkplug.py",
    "tests/api/test_settings_tree.py",
    "tests/gateway/test_tls_auth.py",
    "tests/web/test_templates.py",
    "tests/test_contract_v2.py",
)
_RANK = {path: rank for rank, path in enumerate(LONGEST_FIRST)}


def pytest_configure(config: pytest.Config) -> None:
    """Keep the order below: pytest-xdist ≥ 3.6 otherwise hands out the modules with the most
    tests first (`--loadscope-reorder`, on by default), which undid LONGEST_FIRST (a run's
    timeline, 2026-12-07: tests/test_mqtt.py and other many-test modules first, 3-4 s modules
    of the list last)."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    if not hasattr(config, "workerinput"):
        _cache_bytecode(config)


def _cache_bytecode(config: pytest.Config) -> None:
    """Cache bytecode in the run's processes even where the shell sets PYTHONDONTWRITEBYTECODE
    (as `make pytest` / `make test-fast` do; a bare `pytest -n 4` did not): the xdist workers
    and every process the tests start (`oxy …`, `python -m …`) inherit it. With the variable set
    and PYTHONPYCACHEPREFIX pointing at an empty directory, each of them compiled every module it
    imported, the installed packages included, and rewrote every test module's asserts:
    a worker's collection took ~10 s instead of ~2, and the fast tier 170 s instead of ~126
    (2-core machine, 2026-12-07). The bytecode goes under PYTHONPYCACHEPREFIX if set, else under
    .venv/pycache, as in the Makefile; this process, already started, writes its own from here
    (the test modules' rewritten asserts)."""
    if not os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        return
    if not os.environ.get("PYTHONPYCACHEPREFIX"):
        os.environ["PYTHONPYCACHEPREFIX"] = str(config.rootpath / ".venv" / "pycache")
        sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    sys.dont_write_bytecode = False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (a worker's collection, identical on every worker), the longest modules
    first; a serial run keeps the collection order."""
    if not hasattr(config, "workerinput"):
        return
    rootdir = config.rootpath

    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(rootdir).as_posix()
        return _RANK.get(path, len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest, and every module's own tests, keep their order


async def _no_warm_up(app: Any) -> None:
    del app


@pytest.fixture(autouse=True)
def _skip_app_warm_up(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process app starts without its warm-up (above), unless the test is marked
    `warm_up`."""
    app_module = sys.modules.get("api.app")
    if app_module is not None and not request.node.get_closest_marker("warm_up"):
        monkeypatch.setattr(app_module, "warm_up", _no_warm_up)
