"""Database migrations of every service, applied with Alembic in one run (``callmanager migrate``, ``up``).

Convention:

* The Alembic environment (``env.py``, ``script.py.mako``) lives once, in ``system/migrations/``.
* A service that owns tables exposes its Alembic versions in ``<package>/migrations/`` (a package with an
  ``__init__.py`` so it ships in the wheel) and is listed in :data:`MIGRATING_PACKAGES`. A listed package
  that is not installed, or has no ``migrations`` folder yet, is skipped.
* Each service is its own Alembic branch: its first revision has ``down_revision = None``, a branch label
  named after the service (``branch_labels = ("contacts",)``) and ``depends_on = "kernel_0001"`` (the
  kernel's event store revision) when its tables or projections need the event store. Revision ids are
  prefixed with the service (``contacts_0001``) so they never collide.
* :func:`upgrade` runs ``upgrade heads``: every branch up to its newest revision, so services evolve
  their schemas independently.
* To write a new revision, build the config with :func:`alembic_config` and call
  ``alembic.command.revision(config, message, head="contacts@head")``.
* Given a :class:`~sqlalchemy.engine.Connection`, :func:`upgrade` migrates inside its current
  transaction and the caller commits; given an engine or URL it commits itself.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from kernel.store import create_engine, store_dialect, write_transaction

# Packages whose ``migrations`` folder holds Alembic versions, in no particular order.
MIGRATING_PACKAGES: tuple[str, ...] = ("kernel.store", "contacts", "gateway", "importexport")

# Any constant works: it only has to be the same for every process that migrates this database.
_POSTGRES_MIGRATION_LOCK = 7_284_330_112


def environment_folder() -> Path:
    """The folder with the shared Alembic ``env.py`` and ``script.py.mako``."""
    return Path(__file__).resolve().parent / "migrations"


def version_locations(packages: tuple[str, ...] = MIGRATING_PACKAGES) -> list[Path]:
    """The ``migrations`` folders of the installed ``packages`` that have one."""
    found: list[Path] = []
    for package in packages:
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            folder = Path(location) / "migrations"
            if folder.is_dir():
                found.append(folder.resolve())
                break
    return found


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config built in code: the shared environment and every service's versions."""
    config = Config()
    config.set_main_option("script_location", _escape(str(environment_folder())))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", _escape(os.pathsep.join(str(p) for p in version_locations())))
    if url is not None:
        config.set_main_option("sqlalchemy.url", _escape(url))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(target: Engine | Connection | str) -> None:
    """Apply every pending migration of every service (``upgrade heads``); a no-op when up to date."""
    with _migration_connection(target) as conn:
        command.upgrade(alembic_config(conn), "heads")


def current_revisions(target: Engine | Connection | str) -> set[str]:
    """The revisions the database is at, one per branch head (empty before the first migration)."""
    with _connection(target) as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def applied_revisions(target: Engine | Connection | str) -> set[str]:
    """Every revision applied to the database: its current revisions and all they depend on."""
    current = current_revisions(target)
    if not current:
        return set()
    script = ScriptDirectory.from_config(alembic_config())
    return {r.revision for r in script.iterate_revisions(tuple(current), "base") if r is not None}


def known_revisions() -> set[str]:
    """Every revision of every installed service: what :func:`upgrade` applies to a database."""
    return {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


@contextmanager
def _migration_connection(target: Engine | Connection | str) -> Iterator[Connection]:
    """A connection in a transaction that only one migrating process at a time may hold."""
    if isinstance(target, Connection):
        _serialise(target)
        yield target
        return
    with _engine(target) as engine, write_transaction(engine) as conn:
        _serialise(conn)
        yield conn


@contextmanager
def _connection(target: Engine | Connection | str) -> Iterator[Connection]:
    if isinstance(target, Connection):
        yield target
        return
    with _engine(target) as engine, engine.connect() as conn:
        yield conn


@contextmanager
def _engine(target: Engine | str) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = create_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


def _serialise(conn: Connection) -> None:
    """On PostgreSQL, wait for any other process migrating the same database (SQLite: BEGIN IMMEDIATE)."""
    store_dialect(conn).serialise_migrations(conn, _POSTGRES_MIGRATION_LOCK)


def _escape(value: str) -> str:
    """Protect ``%`` from the configparser interpolation Alembic's Config applies."""
    return value.replace("%", "%%")
