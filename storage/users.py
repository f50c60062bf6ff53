"""People who sign in, the mailboxes they own, and their API tokens.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, which follow
RFC 9106's recommendations) and re-hashed on sign-in when those defaults
move. API tokens are random and shown once; only their SHA-256 is stored,
which is enough for a 256-bit random secret and lets a lookup be an index
probe rather than a hash per row.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from storage import audit
from storage.db import transaction
from storage.models import ApiToken, User, UserMailbox, utcnow
from storage.visibility import ROLES, Viewer

TOKEN_PREFIX = "crm_"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
"""Longer passwords are refused before hashing: argon2 would hash them, slowly, for anyone."""
_TOUCH_EVERY = timedelta(minutes=5)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when there is no user, so that an unknown address costs a hash."""
    return _hasher.hash("an unknown user still costs one hash")


class UserError(Exception):
    """A request about users that cannot be done; the message says why."""


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    display_name: str | None
    role: str
    disabled: bool
    has_password: bool
    mailboxes: tuple[str, ...]
    created_at: datetime


def viewer_of(user: User) -> Viewer:
    return Viewer(user_id=user.id, email=user.email, role=user.role)


def get_user(session: Session, email: str) -> User | None:
    return session.scalar(
        select(User)
        .where(User.email == email.strip().lower())
        .options(selectinload(User.mailboxes))
    )


def list_users(session: Session) -> list[UserRow]:
    users = session.scalars(select(User).options(selectinload(User.mailboxes)).order_by(User.email))
    return [_row(user) for user in users]


def add_user(
    session: Session,
    email: str,
    *,
    role: str = "member",
    display_name: str | None = None,
    password: str | None = None,
    mailboxes: Iterable[str] = (),
    actor: str,
) -> User:
    """A new user; their own address is always one of their mailboxes."""
    address = _address(email)
    _check_role(role)
    if get_user(session, address) is not None:
        raise UserError(f"{address} is already a user")
    user = User(email=address, role=role, display_name=display_name, disabled=False)
    if password is not None:
        user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    set_mailboxes(session, user, [address, *mailboxes], actor=actor)
    audit.record(session, [audit.Change(actor, "user_add", "user", user.id, None, _public(user))])
    return user


def set_mailboxes(session: Session, user: User, accounts: Iterable[str], *, actor: str) -> None:
    """``user`` owns exactly ``accounts``; an account another user owns is refused."""
    wanted = sorted({_address(a) for a in accounts})
    taken = session.scalars(
        select(UserMailbox).where(UserMailbox.account.in_(wanted), UserMailbox.user_id != user.id)
    ).first()
    if taken is not None:
        raise UserError(f"{taken.account} is already owned by another user")
    before = [m.account for m in user.mailboxes]
    user.mailboxes[:] = [m for m in user.mailboxes if m.account in wanted]
    held = {m.account for m in user.mailboxes}
    user.mailboxes.extend(UserMailbox(account=a) for a in wanted if a not in held)
    session.flush()
    if before and before != wanted:
        audit.record(
            session,
            [
                audit.Change(
                    actor,
                    "user_mailboxes",
                    "user",
                    user.id,
                    {"accounts": before},
                    {"accounts": wanted},
                )
            ],
        )


def set_role(session: Session, email: str, role: str, *, actor: str) -> User:
    user = _existing(session, email)
    _check_role(role)
    if user.role == "admin" and role != "admin":
        _keep_an_admin(session, user)
    before = user.role
    user.role = role
    audit.record(
        session,
        [audit.Change(actor, "user_role", "user", user.id, {"role": before}, {"role": role})],
    )
    return user


def set_password(session: Session, email: str, password: str, *, actor: str) -> User:
    """A new password also ends every session made with the old one."""
    user = _existing(session, email)
    user.password_hash = hash_password(password)
    end_sessions(user)
    audit.record(session, [audit.Change(actor, "user_password", "user", user.id)])
    return user


def remove_user(session: Session, email: str, *, actor: str) -> None:
    """The user, their mailbox ownership and their tokens go; what they logged stays."""
    user = _existing(session, email)
    if user.role == "admin":
        _keep_an_admin(session, user)
    audit.record(
        session, [audit.Change(actor, "user_remove", "user", user.id, _public(user), None)]
    )
    session.delete(user)
    session.flush()


def end_sessions(user: User) -> None:
    user.session_version += 1


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user whose password this is, or ``None``; as slow for an unknown address as for a
    known one, so that timing does not tell which addresses have accounts."""
    user = get_user(session, email) if len(password) <= MAX_PASSWORD else None
    held = user.password_hash if user is not None and not user.disabled else None
    try:
        _hasher.verify(held or _dummy_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or held is None:
        return None
    if _hasher.check_needs_rehash(held):
        user.password_hash = _hasher.hash(password)
    return user


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"a password may have at most {MAX_PASSWORD} characters")
    return _hasher.hash(password)


# -- API tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    id: int
    email: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


def create_token(session: Session, email: str, name: str, *, actor: str) -> str:
    """A new token for the user; the returned text is the only copy there will be."""
    user = _existing(session, email)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name.strip() or "token", token_hash=_digest(token))
    session.add(row)
    session.flush()
    audit.record(
        session, [audit.Change(actor, "token_create", "user", user.id, None, {"token": row.name})]
    )
    return token


def revoke_token(session: Session, email: str, name: str, *, actor: str) -> int:
    user = _existing(session, email)
    result = session.execute(
        delete(ApiToken).where(ApiToken.user_id == user.id, ApiToken.name == name)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(
            session, [audit.Change(actor, "token_revoke", "user", user.id, {"token": name}, None)]
        )
    return count


def list_tokens(session: Session, email: str | None = None) -> list[TokenRow]:
    query = select(ApiToken, User.email).join(User, User.id == ApiToken.user_id)
    if email is not None:
        query = query.where(User.email == email.strip().lower())
    rows = session.execute(query.order_by(User.email, ApiToken.name, ApiToken.id))
    return [TokenRow(t.id, mail, t.name, t.created_at, t.last_used_at) for t, mail in rows]


@dataclass(frozen=True)
class TokenUse:
    user: User
    token_id: int
    stale: bool
    """Its last use is unknown or older than a few minutes: worth noting again."""


def token_owner(session: Session, token: str) -> TokenUse | None:
    """The enabled user holding ``token``; reads only."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    found = session.execute(
        select(User, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token))
    ).first()
    if found is None or found[0].disabled:
        return None
    user, token_id, last_used = found
    return TokenUse(user, token_id, last_used is None or utcnow() - last_used > _TOUCH_EVERY)


def note_token_use(sessions: sessionmaker[Session], token_id: int) -> None:
    """Record a token's last use, at most every few minutes, in a short write of its own:
    reading the API must not turn each request into a write, nor fail when another
    writer holds the database for a moment (it is a note, not data)."""
    stale = utcnow() - _TOUCH_EVERY
    try:
        with transaction(sessions) as session:
            session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token_id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale),
                )
                .values(last_used_at=utcnow())
            )
    except DBAPIError:
        pass


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _address(email: str) -> str:
    address = email.strip().lower()
    if "@" not in address or len(address) > 320 or any(c.isspace() for c in address):
        raise UserError(f"not an email address: {email!r}")
    return address


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def _existing(session: Session, email: str) -> User:
    user = get_user(session, email)
    if user is None:
        raise UserError(f"no user {email.strip().lower()!r}")
    return user


def _keep_an_admin(session: Session, leaving: User) -> None:
    others: Sequence[int] = session.scalars(
        select(User.id).where(User.role == "admin", User.id != leaving.id, User.disabled.is_(False))
    ).all()
    if not others:
        raise UserError(f"{leaving.email} is the last admin: make someone else admin first")


def _public(user: User) -> dict[str, object]:
    return {"email": user.email, "role": user.role, "display_name": user.display_name}


def _row(user: User) -> UserRow:
    return UserRow(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        disabled=user.disabled,
        has_password=user.password_hash is not None,
        mailboxes=tuple(m.account for m in user.mailboxes),
        created_at=user.created_at,
    )
