"""The user directory: users with one role each, and their API keys (shown once, stored only as a hash).

A key looks like ``cm_<key id>_<secret>``: ``key id`` is 12 public hex characters (the row's primary key,
safe to log and audit), ``secret`` is ``secrets.token_urlsafe(32)`` (256 bits from the OS CSPRNG). The
database keeps only the SHA-256 of the whole key.

Every :meth:`UserDirectory.verify` checks the key against its row as the database holds it now: a key
row read before is used again only while the database says nothing changed since (SQLite: ``PRAGMA
data_version``; PostgreSQL: a :class:`~kernel.store.changes.ChangeSignal` on the ``callmanager_keys``
channel, which triggers on the users and keys tables notify). So a user or key created, deactivated or
revoked by the CLI, another gateway replica or by hand counts at once, and without a listening connection
every request reads the row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

from gateway.roles import Principal
from gateway.schema import KEY_ID_LENGTH, USERNAME_LENGTH, api_keys, users
from kernel.envelope import utcnow
from kernel.roles import USER_ROLES, Role
from kernel.store import StoreDialect, own_connection, sqlite_data_version, store_dialect, write_transaction
from kernel.store.changes import ChangeSignal

log = structlog.get_logger(__name__)

KEY_PREFIX = "cm_"
_KEY_PATTERN = re.compile(rf"cm_([0-9a-f]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{43}})")
_KEY_ID_PREFIX = re.compile(rf"cm_([0-9a-f]{{{KEY_ID_LENGTH}}})_")
_LONGEST_PRESENTED = 256
_USERNAME = re.compile(rf"[a-z0-9][a-z0-9._-]{{1,{USERNAME_LENGTH - 1}}}")
_NO_MATCH_HASH = "0" * 64
_TOUCH_EVERY = timedelta(minutes=1)

KEYS_CHANNEL = "callmanager_keys"
"""Where PostgreSQL announces changes to users and keys (triggers of migration ``gateway_0002``)."""


class DirectoryError(Exception):
    """A request the directory refuses; the message is for the operator (Spanish)."""


class InvalidUser(DirectoryError, ValueError):
    """A username, role, team or display name that does not pass validation."""


class UserExists(DirectoryError):
    """The username is taken."""


class UserNotFound(DirectoryError):
    """No user has that username."""


class UserInactive(DirectoryError):
    """The user was deactivated and can get no new key."""


class KeyNotFound(DirectoryError):
    """No key has that id."""


class DenialReason(StrEnum):
    """Why a presented key did not authenticate (for the audit log, never for the caller)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    WRONG_SECRET = "wrong_secret"  # noqa: S105 (a reason code, not a secret)
    REVOKED = "revoked"
    INACTIVE_USER = "inactive_user"


@dataclass(frozen=True, slots=True)
class User:
    """A person or system that calls the API, with one role."""

    id: uuid.UUID
    username: str
    role: Role
    display_name: str
    team: str | None
    active: bool
    created_at: datetime
    deactivated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (no key material: users never hold any)."""
        return {
            "id": str(self.id),
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "team": self.team,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
            "deactivated_at": self.deactivated_at.isoformat() if self.deactivated_at else None,
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: the only moment its plaintext exists outside the caller's hands."""

    key_id: str
    plaintext: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What is known about a stored key: never the key itself."""

    id: str
    user_id: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "id": self.id,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of checking a presented key: a principal, or the reason there is none."""

    principal: Principal | None
    key_id: str | None = None
    reason: DenialReason | None = None


def key_id_of(presented: str | None) -> str | None:
    """The public key id of something shaped like one of our keys, else ``None`` (never the secret)."""
    if not presented or len(presented) > _LONGEST_PRESENTED:
        return None
    found = _KEY_ID_PREFIX.match(presented.strip())
    return found.group(1) if found else None


def hash_key(presented: str) -> str:
    """Hex SHA-256 of a whole key.

    A fast hash is enough: the secret is 256 bits from a CSPRNG, so unlike a password there is no
    dictionary to try and brute force is out of reach with any hash; a slow hash (bcrypt, argon2) would
    only add tens of milliseconds to every request.
    """
    return hashlib.sha256(presented.encode("ascii")).hexdigest()


def validate_username(text: str) -> str:
    """The username in canonical form (lower case), or :class:`InvalidUser`."""
    username = text.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise InvalidUser(
            f"nombre de usuario inválido {text!r}: de 2 a {USERNAME_LENGTH} caracteres, letras sin tilde, "
            "números, '.', '_' o '-', empezando por letra o número"
        )
    return username


def validate_role(role: Role | str) -> Role:
    """``role`` as a :class:`Role`, or :class:`InvalidUser`."""
    if isinstance(role, Role):
        if role not in USER_ROLES:
            raise InvalidUser(f"el rol {role.value} no es de un usuario")
        return role
    try:
        return Role.parse(role)
    except ValueError as exc:
        raise InvalidUser(str(exc)) from exc


def _clean_text(text: str | None, what: str, longest: int) -> str | None:
    if text is None:
        return None
    cleaned = " ".join(text.split())
    if len(cleaned) > longest:
        raise InvalidUser(f"{what} demasiado largo (máximo {longest} caracteres)")
    if any(not ch.isprintable() for ch in cleaned):
        raise InvalidUser(f"{what} contiene caracteres no imprimibles")
    return cleaned or None


class UserDirectory:
    """Users and API keys in the gateway's tables, over one engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        changes: ChangeSignal | None = None,
        dialect: StoreDialect | None = None,
    ) -> None:
        # changes (PostgreSQL): key rows are kept while it says nothing changed; its listening loop is
        # run by whoever built it. Without one, every check on PostgreSQL reads the row.
        # dialect: chosen by the composition root; tools may leave it to the engine.
        self._engine = engine
        self._dialect = dialect or store_dialect(engine)
        self._clock = clock
        self._changes = changes
        self._lookup = _KeyLookup(engine, self._dialect, changes)

    def create_user(
        self, username: str, role: Role | str, *, team: str | None = None, display_name: str | None = None
    ) -> tuple[User, IssuedKey]:
        """Add an active user and its first key; the plaintext key is returned here and never again."""
        name = validate_username(username)
        user = User(
            id=uuid.uuid4(),
            username=name,
            role=validate_role(role),
            display_name=_clean_text(display_name, "el nombre visible", 200) or "",
            team=_clean_text(team, "el equipo", 100),
            active=True,
            created_at=self._clock(),
            deactivated_at=None,
        )
        try:
            with write_transaction(self._engine, self._dialect) as conn:
                if self._find(conn, name) is not None:
                    raise UserExists(f"el usuario {name!r} ya existe")
                conn.execute(
                    users.insert().values(
                        id=user.id,
                        username=user.username,
                        display_name=user.display_name,
                        role=user.role.value,
                        team=user.team,
                        active=True,
                        created_at=user.created_at,
                    )
                )
                issued = self._issue(conn, user.id)
        except sa.exc.IntegrityError as exc:
            raise UserExists(f"el usuario {name!r} ya existe") from exc
        self._changed()
        log.info("users.created", username=name, role=user.role.value, key_id=issued.key_id)
        return user, issued

    def list_users(self, *, include_inactive: bool = True) -> list[User]:
        """Every user, by username."""
        query = sa.select(users).order_by(users.c.username)
        if not include_inactive:
            query = query.where(users.c.active.is_(True))
        with self._engine.connect() as conn:
            return [_user(row) for row in conn.execute(query).mappings()]

    def usernames(self, user_ids: Iterable[str]) -> dict[str, str]:
        """User names of the given user ids (ids that are not users, like ``system``, are left out)."""
        wanted = set()
        for user_id in user_ids:
            try:
                wanted.add(uuid.UUID(user_id))
            except ValueError:
                continue
        if not wanted:
            return {}
        query = sa.select(users.c.id, users.c.username).where(users.c.id.in_(wanted))
        with self._engine.connect() as conn:
            return {str(row.id): row.username for row in conn.execute(query)}

    def get_user(self, username: str) -> User:
        """The user called ``username``, or :class:`UserNotFound`."""
        with self._engine.connect() as conn:
            return self._require(conn, username)

    def deactivate(self, username: str) -> User:
        """Deactivate a user and revoke all of its keys at once (idempotent)."""
        now = self._clock()
        with write_transaction(self._engine, self._dialect) as conn:
            user = self._require(conn, username)
            if user.active:
                conn.execute(
                    users.update().where(users.c.id == user.id).values(active=False, deactivated_at=now)
                )
            self._revoke_all(conn, user.id, now)
            user = self._require(conn, username)
        self._changed()
        log.info("users.deactivated", username=user.username)
        return user

    def issue_key(self, username: str) -> IssuedKey:
        """A further key for an active user (its other keys keep working)."""
        with write_transaction(self._engine, self._dialect) as conn:
            user = self._require_active(conn, username)
            issued = self._issue(conn, user.id)
        self._changed()
        log.info("users.key_issued", username=user.username, key_id=issued.key_id)
        return issued

    def rotate_key(self, username: str) -> IssuedKey:
        """Revoke every key of an active user and return a new one, in one transaction."""
        with write_transaction(self._engine, self._dialect) as conn:
            user = self._require_active(conn, username)
            self._revoke_all(conn, user.id, self._clock())
            issued = self._issue(conn, user.id)
        self._changed()
        log.info("users.key_rotated", username=user.username, key_id=issued.key_id)
        return issued

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke one key by its public id (idempotent); :class:`KeyNotFound` if there is none."""
        with write_transaction(self._engine, self._dialect) as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        if row is None:
            raise KeyNotFound(f"no existe la clave {key_id!r}")
        self._changed()
        log.info("users.key_revoked", key_id=key_id)
        return _key(row)

    def list_keys(self, username: str) -> list[KeyInfo]:
        """Every key of a user, newest first, without any key material."""
        with self._engine.connect() as conn:
            user = self._require(conn, username)
            rows = conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.user_id == user.id)
                .order_by(api_keys.c.created_at.desc())
            ).mappings()
            return [_key(row) for row in rows]

    def _changed(self) -> None:
        """This process changed users or keys: its next checks read them again (others hear the trigger)."""
        if self._changes is not None:
            self._changes.move()

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal behind a presented key, or ``None`` for a missing, wrong or revoked one."""
        return self.verify(presented).principal

    def verify(self, presented: str | None) -> Verdict:
        """Check a presented key with one indexed lookup and a constant-time comparison of hashes."""
        return self._verify(presented, record_use=True)

    def verify_quietly(self, presented: str | None) -> Principal | None:
        """The principal of a good key whose use needs no recording now, else None; never writes."""
        return self._verify(presented, record_use=False).principal

    def verify_kept(self, presented: str | None) -> Principal | None:
        """:meth:`verify_quietly` answered from a key row kept and still current, else None; no I/O at all.

        For the event loop of a gateway on PostgreSQL: a key whose row is not kept goes through
        :meth:`verify` on a worker thread.
        """
        return self._verify(presented, record_use=False, kept_only=True).principal

    def _verify(self, presented: str | None, *, record_use: bool, kept_only: bool = False) -> Verdict:
        if not presented or not presented.strip():
            return Verdict(None, reason=DenialReason.MISSING)
        candidate = presented.strip()
        key_id = key_id_of(candidate)
        if key_id is None or not _KEY_PATTERN.fullmatch(candidate):
            return Verdict(None, key_id=key_id, reason=DenialReason.MALFORMED)
        row = self._lookup.kept(key_id) if kept_only else self._lookup(key_id)
        if row is None and kept_only:
            return Verdict(None, key_id=key_id)
        # Compare even when the id is unknown, so both failures take the same time.
        matches = hmac.compare_digest(hash_key(candidate), row.secret_hash if row else _NO_MATCH_HASH)
        if row is None:
            return Verdict(None, key_id=key_id, reason=DenialReason.UNKNOWN_KEY)
        if not matches:
            return Verdict(None, key_id=key_id, reason=DenialReason.WRONG_SECRET)
        if row.revoked_at is not None:
            return Verdict(None, key_id=key_id, reason=DenialReason.REVOKED)
        if not row.active:
            return Verdict(None, key_id=key_id, reason=DenialReason.INACTIVE_USER)
        last_used_at = _driver_moment(row.last_used_at)
        if self._use_due(last_used_at):
            if not record_use:
                return Verdict(None, key_id=key_id)
            self._touch(key_id)
        user_id = row.user_id if isinstance(row.user_id, uuid.UUID) else uuid.UUID(str(row.user_id))
        principal = Principal(
            user_id=user_id,
            username=row.username,
            role=Role(row.role),
            team=row.team,
            key_id=key_id,
            display_name=row.display_name,
        )
        return Verdict(principal, key_id=key_id)

    def _use_due(self, last_used_at: datetime | None) -> bool:
        """Whether the key's use should be recorded: at most once a minute, so reads stay reads."""
        return last_used_at is None or self._clock() - last_used_at >= _TOUCH_EVERY

    def _touch(self, key_id: str) -> None:
        """Record the key's use now."""
        now = self._clock()
        try:
            with write_transaction(self._engine, self._dialect) as conn:
                conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=now))
        except sa.exc.OperationalError:
            log.warning("users.touch_failed", key_id=key_id)
        # Recording a use announces nothing (it changes no key's meaning): the kept row learns it here.
        self._lookup.used(key_id, now)

    def _issue(self, conn: Connection, user_id: uuid.UUID) -> IssuedKey:
        for _ in range(5):
            key_id = secrets.token_hex(KEY_ID_LENGTH // 2)
            taken = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id)).first()
            if taken is None:
                break
        else:
            raise RuntimeError("could not draw an unused key id")
        plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        conn.execute(
            api_keys.insert().values(
                id=key_id, user_id=user_id, secret_hash=hash_key(plaintext), created_at=self._clock()
            )
        )
        return IssuedKey(key_id=key_id, plaintext=plaintext)

    @staticmethod
    def _revoke_all(conn: Connection, user_id: uuid.UUID, now: datetime) -> None:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    @staticmethod
    def _find(conn: Connection, username: str) -> User | None:
        name = username.strip().lower()
        row = conn.execute(sa.select(users).where(users.c.username == name)).mappings().first()
        return _user(row) if row is not None else None

    def _require(self, conn: Connection, username: str) -> User:
        user = self._find(conn, username)
        if user is None:
            raise UserNotFound(f"no existe el usuario {username!r}")
        return user

    def _require_active(self, conn: Connection, username: str) -> User:
        user = self._require(conn, username)
        if not user.active:
            raise UserInactive(f"el usuario {user.username!r} está desactivado")
        return user


class _KeyRow(NamedTuple):
    secret_hash: str
    revoked_at: object
    last_used_at: object
    user_id: object
    username: str
    display_name: str
    role: str
    team: str | None
    active: bool


class _KeyLookup:
    """The key's row with its user, as the driver returns it: one statement on a raw connection.

    Every request pays this lookup, so it skips SQLAlchemy's per-statement work (compilation cache,
    result processing, the SQLite ``BEGIN``/``ROLLBACK`` pair) and, on SQLite, the pool too: each thread
    keeps a connection of its own (autocommit, so every read sees the latest commit). About 8 µs instead
    of 200 µs on SQLite. A row read before is used again only while the database is unchanged since
    (SQLite's ``data_version``, PostgreSQL's change signal): a revocation by any process counts at once.
    """

    _QUERY = (
        sa.select(
            api_keys.c.secret_hash,
            api_keys.c.revoked_at,
            api_keys.c.last_used_at,
            users.c.id,
            users.c.username,
            users.c.display_name,
            users.c.role,
            users.c.team,
            users.c.active,
        )
        .join(users, users.c.id == api_keys.c.user_id)
        .where(api_keys.c.id == sa.bindparam("key_id"))
    )

    def __init__(self, engine: Engine, dialect: StoreDialect, changes: ChangeSignal | None = None) -> None:
        compiled = self._QUERY.compile(dialect=engine.dialect)
        self._engine = engine
        self._sql = str(compiled)
        self._positional = compiled.positional
        # Without announced changes (SQLite) each thread reads on its own connection and asks its
        # data_version; with them (PostgreSQL) the change signal says when kept rows are stale.
        self._own = None if dialect.announces_changes else threading.local()
        self._changes = changes if self._own is None else None
        # PostgreSQL with a change signal: one memo per process (SQLite: one per thread, in self._own).
        self._shared: _Memo = {}

    def __call__(self, key_id: str) -> _KeyRow | None:
        params: tuple[str] | dict[str, str] = (key_id,) if self._positional else {"key_id": key_id}
        if self._own is not None:
            return self._sqlite_row(key_id, params)
        version = self._changes.version if self._changes is not None else None  # before reading
        if version is None:
            return self._postgres_row(params)
        kept = _current(self._shared, key_id, version)
        if kept is not None:
            return kept[1]
        return _remember(self._shared, key_id, version, self._postgres_row(params))

    def kept(self, key_id: str) -> _KeyRow | None:
        """The key's row if one is kept and still current (PostgreSQL with a change signal), else None."""
        version = self._changes.version if self._changes is not None else None
        kept = _current(self._shared, key_id, version) if version is not None else None
        return kept[1] if kept is not None else None

    def used(self, key_id: str, moment: datetime) -> None:
        """Note a use just recorded in the kept row, if any (SQLite reads again after any commit)."""
        kept = self._shared.get(key_id)
        if kept is not None and kept[1] is not None:
            self._shared[key_id] = (kept[0], kept[1]._replace(last_used_at=moment))

    def _postgres_row(self, params: tuple[str] | dict[str, str]) -> _KeyRow | None:
        connection = self._engine.raw_connection()
        driver = connection.driver_connection
        assert driver is not None
        try:
            # PostgreSQL: one statement, so no BEGIN and ROLLBACK round trips around it.
            driver.autocommit = True
            try:
                return self._fetch(connection, params)
            finally:
                driver.autocommit = False
        finally:
            connection.close()

    def _sqlite_row(self, key_id: str, params: tuple[str] | dict[str, str]) -> _KeyRow | None:
        """SQLite: the row as last read by this thread while the database is unchanged since, else read.

        ``PRAGMA data_version`` changes with every commit of any other connection, in any process: a key
        revoked or a user deactivated from the CLI is refused at the next request, as without the memo.
        """
        assert self._own is not None
        connection = self._thread_connection()
        version = sqlite_data_version(connection)  # before reading: a commit after it forces a new read
        memo: _Memo = self._own.__dict__.setdefault("rows", {})
        kept = _current(memo, key_id, version)
        if kept is not None:
            return kept[1]
        return _remember(memo, key_id, version, self._fetch(connection, params))

    def _thread_connection(self) -> PoolProxiedConnection:
        """This thread's SQLite connection, opened once (with the engine's PRAGMAs) outside the pool."""
        assert self._own is not None
        connection: PoolProxiedConnection = own_connection(self._engine, self._own)
        return connection

    def _fetch(
        self, connection: PoolProxiedConnection, params: tuple[str] | dict[str, str]
    ) -> _KeyRow | None:
        cursor = connection.cursor()
        try:
            cursor.execute(self._sql, params)
            found = cursor.fetchone()
        finally:
            cursor.close()
        return _KeyRow(*found) if found is not None else None


_KEY_MEMO = 10_000
"""Most key rows one memo keeps between changes (an unknown id is kept too, as ``None``)."""

_Memo = dict[str, tuple[int, _KeyRow | None]]
"""Key id -> (the database's version read before the row, the row)."""


def _current(memo: _Memo, key_id: str, version: int) -> tuple[int, _KeyRow | None] | None:
    """The memo's entry for ``key_id`` if it was read at ``version``, else None."""
    kept = memo.get(key_id)
    return kept if kept is not None and kept[0] == version else None


def _remember(memo: _Memo, key_id: str, version: int, row: _KeyRow | None) -> _KeyRow | None:
    """Keep ``row`` as read at ``version`` (emptying a full memo first) and return it."""
    if len(memo) >= _KEY_MEMO:
        memo.clear()
    memo[key_id] = (version, row)
    return row


def _driver_moment(value: object) -> datetime | None:
    """A timestamp as the driver returns it (SQLite: naive UTC text) as an aware datetime."""
    if isinstance(value, str):
        return _aware(datetime.fromisoformat(value))
    assert value is None or isinstance(value, datetime)
    return _aware(value)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time the gateway writes is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _user(row: sa.RowMapping) -> User:
    created = _aware(row["created_at"])
    assert created is not None
    return User(
        id=row["id"],
        username=row["username"],
        role=Role(row["role"]),
        display_name=row["display_name"],
        team=row["team"],
        active=bool(row["active"]),
        created_at=created,
        deactivated_at=_aware(row["deactivated_at"]),
    )


def _key(row: sa.RowMapping) -> KeyInfo:
    created = _aware(row["created_at"])
    assert created is not None
    return KeyInfo(
        id=row["id"],
        user_id=row["user_id"],
        created_at=created,
        revoked_at=_aware(row["revoked_at"]),
        last_used_at=_aware(row["last_used_at"]),
    )


class UserNames:
    """User names by user id for history rows and live notices, cached: ids and names never change."""

    def __init__(self, directory: UserDirectory) -> None:
        self._directory = directory
        self._known: dict[str, str] = {}

    def lookup(self, user_ids: Iterable[str]) -> dict[str, str]:
        """The names of those ids that are users."""
        ids = set(user_ids)
        missing = ids - self._known.keys()
        if missing:
            self._known.update(self._directory.usernames(missing))
        return {user_id: self._known[user_id] for user_id in ids if user_id in self._known}
