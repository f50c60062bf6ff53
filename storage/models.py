"""The database tables of DESIGN.md as typed SQLAlchemy models.

Table and column names are a contract: other tools and reports read them.
Timestamps are stored timezone-aware (UTC); JSON columns use the generic
``JSON`` type so SQLite and PostgreSQL share one schema.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database.

    SQLite has no time zones: SQLAlchemy would store an aware value's wall
    clock and drop its offset. Converting to UTC first keeps the stored text
    comparable and ordered, which the merge and the cursors rely on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime refused (give it a time zone): {value!r}")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class _PortableText(TypeDecorator[str]):
    """Text stored the same way on SQLite and PostgreSQL.

    PostgreSQL refuses NUL characters in text and values longer than a
    column's length; SQLite keeps both. Mail is written by strangers, so the
    same message would be logged on one database and fail on the other. NUL
    characters are dropped, and a value longer than its column is refused
    on both, so that the sync quarantines the item that carries it.
    """

    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            value = value.replace("\x00", "")
        length = getattr(self.impl, "length", None)
        if length is not None and len(value) > length:
            raise ValueError(
                f"a value of {len(value)} characters does not fit a column of {length}"
            )
        return value


class Str(_PortableText):
    """``VARCHAR(length)`` (see :class:`_PortableText`)."""

    impl = String
    cache_ok = True


class LongText(_PortableText):
    """``TEXT`` (see :class:`_PortableText`)."""

    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        str: LongText(),
    }


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Str(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    domains: Mapped[list[CompanyDomain]] = relationship(
        back_populates="company", cascade="all, delete-orphan", order_by="CompanyDomain.id"
    )

    @property
    def domain(self) -> str | None:
        """The company's first domain, for display."""
        return self.domains[0].domain if self.domains else None


class CompanyDomain(Base):
    """A registrable domain (Public Suffix List) and the one company that owns it."""

    __tablename__ = "company_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(Str(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship(back_populates="domains")


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(Str(300))
    first_name: Mapped[str | None] = mapped_column(Str(200))
    last_name: Mapped[str | None] = mapped_column(Str(200))
    title: Mapped[str | None] = mapped_column(Str(300))
    phone: Mapped[str | None] = mapped_column(Str(100))
    address: Mapped[str | None] = mapped_column(LongText)
    birthday: Mapped[date | None] = mapped_column(Date)
    preferred_channel: Mapped[str | None] = mapped_column(Str(50))
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    owner: Mapped[str | None] = mapped_column(Str(320))
    lead_source: Mapped[str | None] = mapped_column(Str(200))
    last_contacted_at: Mapped[datetime | None]
    last_interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    company: Mapped[Company | None] = relationship()
    last_interaction: Mapped[Interaction | None] = relationship()
    emails: Mapped[list[ContactEmail]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactEmail.id"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ContactEmail(Base):
    __tablename__ = "contact_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(Str(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="emails")


class Interaction(Base):
    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(Str(20))
    dedupe_key: Mapped[str] = mapped_column(Str(500), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime | None]
    subject: Mapped[str | None] = mapped_column(LongText)
    summary: Mapped[str | None] = mapped_column(LongText)
    body: Mapped[str | None] = mapped_column(LongText)
    direction: Mapped[str] = mapped_column(Str(20))
    thread: Mapped[str | None] = mapped_column(Str(500), index=True)
    visibility: Mapped[str] = mapped_column(Str(20), default="shared")
    status: Mapped[str] = mapped_column(Str(20), default="active")
    owner: Mapped[str | None] = mapped_column(Str(320))
    revised_at: Mapped[datetime | None]
    """When the source last changed it (a meeting's LAST-MODIFIED): the latest revision wins."""
    fingerprint: Mapped[str | None] = mapped_column(Str(80))
    """What the dedupe key was first seen with (``storage.ingest``): a key is trusted only
    while what arrives under it has the same."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    participants: Mapped[list[InteractionParticipant]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan"
    )
    sources: Mapped[list[InteractionSource]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan"
    )


class InteractionParticipant(Base):
    __tablename__ = "interaction_participants"
    __table_args__ = (
        UniqueConstraint("interaction_id", "email", "role"),
        Index(
            "ix_interaction_participants_history",
            "contact_id",
            "occurred_at",
            "interaction_id",
            "private",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(Str(320), index=True)
    name: Mapped[str | None] = mapped_column(Str(300))
    role: Mapped[str] = mapped_column(Str(20))
    response_status: Mapped[str | None] = mapped_column(Str(20))
    responded_at: Mapped[datetime | None]
    """When ``response_status`` was given (a reply's DTSTAMP, a meeting's revision): several
    agents write answers in any order, and an older one never replaces a newer one."""
    occurred_at: Mapped[datetime | None] = mapped_column(server_default=FetchedValue())
    private: Mapped[bool] = mapped_column(server_default=false())
    """Copies of the interaction's time and of whether it is private, kept equal to it by
    the database's triggers (migration 0010) whoever writes: with them and the history
    index, a person's newest interactions, held-back count and teammates are read from
    their participant rows in time order, without visiting their whole history."""

    interaction: Mapped[Interaction] = relationship(back_populates="participants")


class InteractionSource(Base):
    __tablename__ = "interaction_sources"
    __table_args__ = (UniqueConstraint("connector", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    connector: Mapped[str] = mapped_column(Str(200))
    source_id: Mapped[str] = mapped_column(Str(500))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    interaction: Mapped[Interaction] = relationship(back_populates="sources")


class SyncState(Base):
    """One row per connector: its durable cursor, health, lease and counters."""

    __tablename__ = "sync_state"

    connector: Mapped[str] = mapped_column(Str(200), primary_key=True)
    kind: Mapped[str | None] = mapped_column(Str(50))
    cursor: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(Str(20), default="new")
    last_success_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(LongText)
    last_error_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(Str(200))
    lease_expires_at: Mapped[datetime | None]
    account: Mapped[str | None] = mapped_column(Str(320))
    """The mailbox the connector reads: whose private threads its interactions are."""
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Observation(Base):
    """One fact about a contact with its provenance; the merge derives fields from these."""

    __tablename__ = "observations"
    # One row per fact and source: a repeated fact only moves ``observed_at``
    # forward, which is all the merge ranks on.
    __table_args__ = (UniqueConstraint("contact_id", "field", "value", "source", "manual"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(Str(100))
    value: Mapped[str] = mapped_column(LongText)
    source: Mapped[str] = mapped_column(Str(200))
    observed_at: Mapped[datetime]
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conflict(Base):
    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(Str(100))
    base_value: Mapped[str | None] = mapped_column(LongText)
    values: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(Str(20), default="open")
    resolution: Mapped[str | None] = mapped_column(LongText)
    resolved_by: Mapped[str | None] = mapped_column(Str(200))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Append-only: who changed what, from what, to what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(Str(200))
    action: Mapped[str] = mapped_column(Str(50))
    entity: Mapped[str] = mapped_column(Str(50))
    entity_id: Mapped[int | None]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]


class Quarantine(Base):
    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("connector", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector: Mapped[str] = mapped_column(Str(200))
    source_id: Mapped[str] = mapped_column(Str(500))
    reason: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """Someone who signs in: an ``admin`` or a ``member``."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(Str(320), unique=True)
    display_name: Mapped[str | None] = mapped_column(Str(300))
    role: Mapped[str] = mapped_column(Str(20), default="member")
    password_hash: Mapped[str | None] = mapped_column(Str(200))
    """argon2; ``None`` for someone who signs in with Google only."""
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """Carried in every session cookie and checked on each request: raising it (sign-out,
    a new password, disabling) ends every session made before, on every device."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    mailboxes: Mapped[list[UserMailbox]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserMailbox.account"
    )


class UserMailbox(Base):
    """A mailbox account and the one user who owns it (and its private threads)."""

    __tablename__ = "user_mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account: Mapped[str] = mapped_column(Str(320), unique=True)

    user: Mapped[User] = relationship(back_populates="mailboxes")


class ApiToken(Base):
    """A personal API token; only its SHA-256 is kept, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Str(200))
    token_hash: Mapped[str] = mapped_column(Str(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class _Figures:
    """What the team's history with one contact or one company adds up to.

    Kept current in the transaction of every batch that touches the subject
    (:mod:`storage.relationship_increments`), and computed for one day (``as_of``): the
    windowed counts and everything derived from them are relative to the end of
    that day, so a row is a pure function of the history and the day, and a full
    recomputation for the same day gives the same row. Only interactions the
    whole team may read (not private threads) are counted.
    """

    as_of: Mapped[date] = mapped_column(Date)
    first_at: Mapped[datetime | None]
    last_at: Mapped[datetime | None]
    emails_in_30: Mapped[int] = mapped_column(Integer, default=0)
    emails_out_30: Mapped[int] = mapped_column(Integer, default=0)
    meetings_30: Mapped[int] = mapped_column(Integer, default=0)
    emails_in_90: Mapped[int] = mapped_column(Integer, default=0)
    emails_out_90: Mapped[int] = mapped_column(Integer, default=0)
    meetings_90: Mapped[int] = mapped_column(Integer, default=0)
    emails_in_365: Mapped[int] = mapped_column(Integer, default=0)
    emails_out_365: Mapped[int] = mapped_column(Integer, default=0)
    meetings_365: Mapped[int] = mapped_column(Integer, default=0)
    before_90: Mapped[int] = mapped_column(Integer, default=0)
    """Interactions in the 90 days before the last 30: the trend's baseline."""
    strength: Mapped[float] = mapped_column(default=0.0)
    level: Mapped[str] = mapped_column(Str(10), default="none")
    trend: Mapped[str] = mapped_column(Str(10), default="none")
    closest_teammate: Mapped[str | None] = mapped_column(Str(320))
    teammates: Mapped[int] = mapped_column(Integer, default=0)
    """Teammates who took part in an interaction with the subject in 365 days."""
    team: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per teammate, ``[interactions, last ISO time]`` in 365 days: what lets a new
    interaction update the closest teammate without counting the history again."""

    @declared_attr
    def first_interaction_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))

    @declared_attr
    def last_interaction_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))


class ContactFigures(_Figures, Base):
    __tablename__ = "contact_figures"
    __table_args__ = (Index(None, "level", "last_at"),)

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )


class CompanyFigures(_Figures, Base):
    __tablename__ = "company_figures"
    __table_args__ = (Index(None, "level", "last_at"),)

    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Str(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactTag(Base):
    """A tag on a contact, and who put it there (``user:NAME``, ``csv:FILE``, ``rule:NAME``)."""

    __tablename__ = "contact_tags"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    source: Mapped[str] = mapped_column(Str(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CompanyTag(Base):
    """A tag on a company (see :class:`ContactTag`)."""

    __tablename__ = "company_tags"

    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    source: Mapped[str] = mapped_column(Str(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """A saved question over contacts or companies, answered afresh each time it is read."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Str(100), unique=True)
    subject: Mapped[str] = mapped_column(Str(10))
    """``contact`` or ``company``."""
    definition: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(Str(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectorDay(Base):
    """What one connector brought on one day, by measure (``items``, ``logged``,
    ``quarantined``, ``skipped:REASON``, ``limited:REASON``): the sources report over time."""

    __tablename__ = "connector_days"

    connector: Mapped[str] = mapped_column(Str(200), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    measure: Mapped[str] = mapped_column(Str(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


CONTRACT_TABLES = frozenset(Base.metadata.tables)
