"""Maildir trees: every folder in one, what each folder is for, and how far each was read.

Terms. A *Maildir* is a directory holding one file per message: a message is
written into ``tmp/`` and then moved to ``new/`` (not yet seen by a client) or
``cur/`` (seen; its flags follow ``:2,`` in the file name). The file name up
to the ``:`` is the message's *unique name*: it never changes and starts with
the delivery time, so sorted unique names are about delivery order. *Maildir++*
(Courier, and Dovecot's default layout) keeps INBOX at the root and every other
folder as a Maildir beside it named ``.Folder``, a subfolder as
``.Parent.Child``; folder names that are not ASCII are written in IMAP's
*modified UTF-7* (``.&AMk-l&AOk-ments envoy&AOk-s`` is "Éléments envoyés").
Other tools nest plain directories instead (Dovecot's ``LAYOUT=fs``, mbsync's
``SubFolders Verbatim``: ``Sent/cur``, ``Archive/2023/cur``). Every directory
below the root that holds ``cur/`` or ``new/`` is a folder, in either layout.
``tmp/`` is never read: its files are still being delivered.

Folder roles. IMAP servers mark the sent, drafts, junk and trash folders with
special-use attributes (``\\Sent``, RFC 6154), but no file in a Maildir records
them reliably: Dovecot takes them from ``special_use`` in its own config, and
its ``dovecot-uidlist``, ``subscriptions`` and ``dovecot.list.index*`` files
hold names, UIDs and counters only; mbsync and offlineimap write none. Roles
are therefore recognised by the folder's name (its last part, so
``[Gmail]/Sent Mail`` is a sent folder), from :data:`FOLDER_ROLES`: the names
mail clients and servers give these folders in several languages. Messages of
a sent folder carry the ``\\Sent`` label, as the IMAP connector labels a
message with its folder's special use. Junk, trash and drafts are left out
unless chosen by name (drafts were never sent; the other two, like Gmail's
SPAM and TRASH, are not conversations to log).

Ids and cursor. INBOX's messages keep the ids they always had,
``maildir:<unique name>``. Any other folder's are
``maildir:<folder directory>/<unique name>``, the directory relative to the
root (``maildir:.Sent/1700000000.M1P1.host``): unique across the tree, and
unchanged while the folder keeps its place. The cursor (version 2) records per
folder the last unique name read; a version 1 cursor, written when only INBOX
was read, still works as INBOX's position, so after an upgrade INBOX resumes
where it was and the other folders are read from their start.
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from connectors.errors import CursorInvalid
from connectors.records import Cursor

CURSOR_VERSION = 2
ROOT = "."
"""The root folder's key: INBOX in Maildir++."""

Role = Literal["sent", "drafts", "junk", "trash"]

FOLDER_ROLES: Mapping[Role, tuple[str, ...]] = {
    "sent": (
        "Sent", "Sent Items", "Sent Messages", "Sent Mail",
        "Gesendet", "Gesendete Elemente", "Gesendete Objekte", "Gesendete Nachrichten",
        "Envoyés", "Éléments envoyés", "Messages envoyés",
        "Enviados", "Elementos enviados", "Mensajes enviados",
        "Itens enviados", "Mensagens enviadas",
        "Inviati", "Posta inviata", "Elementi inviati", "Messaggi inviati",
        "Verzonden", "Verzonden items", "Verzonden berichten",
        "Skickat", "Skickade", "Skickade objekt", "Skickade meddelanden",
        "Sendt", "Sendte", "Sendte elementer", "Sendte meldinger", "Sendt post",
        "Lähetetyt", "Lähetetyt kohteet", "Lähetetyt viestit",
        "Wysłane", "Elementy wysłane",
        "Odeslané", "Odeslaná", "Odeslaná pošta", "Odeslané položky",
        "Elküldött", "Elküldött elemek", "Elküldött üzenetek",
        "Gönderilen", "Gönderilenler", "Gönderilmiş Öğeler",
        "Trimise", "Elemente trimise",
        "Enviats", "Elements enviats",
        "Απεσταλμένα",
        "Отправленные", "Отправленные элементы", "Отправленные письма",
        "Надіслані",
        "已发送", "已发送邮件", "已發送", "寄件備份",
        "送信済み", "送信済みアイテム", "送信済みメール", "送信済みトレイ",
        "보낸 편지함", "보낸메일함",
    ),
    "drafts": (
        "Drafts", "Draft", "Entwürfe", "Brouillons", "Borradores", "Rascunhos",
        "Bozze", "Concepten", "Utkast", "Kladder", "Luonnokset", "Wersje robocze",
        "Koncepty", "Piszkozatok", "Taslaklar", "Ciorne", "Esborranys",
        "Πρόχειρα", "Черновики", "Чернетки", "草稿", "草稿箱", "下書き", "임시 보관함",
    ),
    "junk": (
        "Junk", "Junk E-mail", "Junk Email", "Junk Mail", "Spam", "Bulk Mail",
        "Courrier indésirable", "Pourriel", "Correo no deseado",
        "Lixo eletrônico", "Lixo eletrónico", "Posta indesiderata", "Ongewenste e-mail",
        "Skräppost", "Uønsket e-post", "Uønsket post", "Roskaposti", "Wiadomości-śmieci",
        "Nevyžádaná pošta", "Levélszemét", "Gereksiz E-posta", "Correu brossa",
        "Ανεπιθύμητα", "Нежелательная почта", "Спам", "Небажана пошта",
        "垃圾邮件", "垃圾郵件", "迷惑メール", "스팸 편지함",
    ),
    "trash": (
        "Trash", "Deleted", "Deleted Items", "Deleted Messages", "Bin",
        "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte",
        "Corbeille", "Éléments supprimés", "Papelera", "Elementos eliminados",
        "Lixeira", "Lixo", "Itens excluídos", "Cestino", "Posta eliminata",
        "Prullenbak", "Verwijderde items", "Papperskorgen", "Borttagna objekt",
        "Papirkurv", "Slettede elementer", "Roskakori", "Poistetut", "Poistetut kohteet",
        "Kosz", "Elementy usunięte", "Koš", "Odstraněná pošta", "Lomtár", "Törölt elemek",
        "Çöp Kutusu", "Silinmiş Öğeler", "Paperera", "Κάδος απορριμμάτων", "Διαγραμμένα",
        "Корзина", "Удаленные", "Удалённые", "Кошик",
        "已删除", "已删除邮件", "垃圾箱", "已刪除郵件", "ゴミ箱", "削除済みアイテム", "휴지통",
    ),
}  # fmt: skip
"""Folder names by role, as mail clients and servers name these folders in their languages;
matched whatever the case, the Unicode normal form, and spaces, hyphens or underscores
(``sent-mail`` is ``Sent Mail``, ``Junk-E-Mail`` is ``Junk E-mail``)."""

SKIPPED_ROLES: Mapping[Role, str] = {
    "junk": "junk mail",
    "trash": "deleted mail",
    "drafts": "drafts, never sent",
}
"""Roles whose folders are left out unless chosen by name, and why."""

SENT_LABEL = "\\Sent"
NOT_CHOSEN = "not chosen"
_PARTS = frozenset({"cur", "new", "tmp"})
_SEPARATORS = re.compile(r"[\s_-]+")
_MUTF7 = re.compile(r"&([A-Za-z0-9+,]*)-")


def _name_key(name: str) -> str:
    return _SEPARATORS.sub(" ", unicodedata.normalize("NFC", name).casefold()).strip()


_ROLE_BY_NAME: dict[str, Role] = {
    _name_key(name): role for role, names in FOLDER_ROLES.items() for name in names
}


@dataclass(frozen=True)
class Folder:
    """One Maildir in the tree: ``key`` is its directory relative to the root (``.`` for
    the root), ``name`` its IMAP-style name (``INBOX``, ``Sent``, ``Archive/2023``)."""

    key: str
    name: str
    path: Path
    role: Role | None = None

    @property
    def labels(self) -> frozenset[str]:
        return frozenset({SENT_LABEL}) if self.role == "sent" else frozenset()

    def source_id(self, unique: str) -> str:
        return f"maildir:{unique}" if self.key == ROOT else f"maildir:{self.key}/{unique}"


@dataclass(frozen=True)
class Selection:
    """The folders to read, those left out with the reason, and chosen names not found."""

    read: tuple[Folder, ...]
    skipped: tuple[tuple[Folder, str], ...] = ()
    missing: tuple[str, ...] = ()


def role_of(name: str) -> Role | None:
    """The role a folder's name gives it: its last part (``[Gmail]/Sent Mail``), or the
    last dot-separated piece of that (a Courier ``INBOX.Sent`` copied as one directory)."""
    last = name.rsplit("/", 1)[-1]
    return _ROLE_BY_NAME.get(_name_key(last)) or _ROLE_BY_NAME.get(
        _name_key(last.rsplit(".", 1)[-1])
    )


def folders(root: Path) -> list[Folder]:
    """Every folder of the tree at ``root``: the root itself first when it is a Maildir
    (INBOX), then the folders below it, sorted by name."""
    found = [_root_folder(root)] if _is_maildir(root) else []
    below = sorted(_folders_below(root, root), key=lambda f: (f.name.casefold(), f.key))
    return found + below


def choose(found: Sequence[Folder], wanted: Sequence[str]) -> Selection:
    """The folders named in ``wanted`` (by name or directory, any case), or with none
    named every folder but junk, trash and drafts."""
    if not wanted:
        reasons = {
            f: SKIPPED_ROLES[f.role]
            for f in found
            if f.role is not None and f.role in SKIPPED_ROLES
        }
        return Selection(tuple(f for f in found if f not in reasons), tuple(reasons.items()))
    keys = {name.strip().casefold() for name in wanted}
    chosen = tuple(f for f in found if {f.name.casefold(), f.key.casefold()} & keys)
    matched = {k for f in chosen for k in (f.name.casefold(), f.key.casefold())}
    return Selection(
        chosen,
        tuple((f, NOT_CHOSEN) for f in found if f not in chosen),
        tuple(name for name in wanted if name.strip().casefold() not in matched),
    )


def messages(folder: Folder) -> list[tuple[str, Path]]:
    """``(unique name, file)`` of each message in ``cur/`` and ``new/``, sorted."""
    entries: list[tuple[str, Path]] = []
    for sub in ("cur", "new"):
        try:
            with os.scandir(folder.path / sub) as listing:
                entries.extend(
                    (entry.name.split(":", 1)[0], Path(entry.path))
                    for entry in listing
                    if not entry.name.startswith(".") and entry.is_file()
                )
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(entries)


def read(folder: Folder, unique: str, path: Path) -> bytes | None:
    """The message's bytes; None when it was expunged since the folder was listed.

    A client that sees a message in ``new/`` moves it to ``cur/`` and a flag
    change renames it: the unique name finds it again.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    for again, moved in messages(folder):
        if again == unique:
            try:
                return moved.read_bytes()
            except FileNotFoundError:
                return None
    return None


def positions(cursor: Cursor | None) -> dict[str, str]:
    """Per folder key, the last unique name read (module docstring: the cursor)."""
    if not cursor:
        return {}
    version = cursor.get("v")
    if version == 1 and "last" in cursor:
        last = cursor["last"]
        return {ROOT: str(last).split(":", 1)[0]} if last is not None else {}
    done = cursor.get("folders")
    if (
        version == CURSOR_VERSION
        and isinstance(done, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in done.items())
    ):
        return dict(done)
    raise CursorInvalid(f"unreadable Maildir cursor: {cursor!r}")


def cursor_of(done: Mapping[str, str]) -> Cursor:
    return {"v": CURSOR_VERSION, "folders": dict(sorted(done.items()))}


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _root_folder(root: Path) -> Folder:
    """INBOX, unless the root is itself a Maildir++ folder (``~/Maildir/.Sent``) given
    on its own: then its name, so a sent folder is still known (its ids stay INBOX's)."""
    if root.name.startswith(".") and _is_maildir(root.parent):
        name = _folder_name(root.name)
        return Folder(ROOT, name, root, role_of(name))
    return Folder(ROOT, "INBOX", root)


def _folders_below(root: Path, directory: Path) -> Iterator[Folder]:
    """Folders under ``directory``, in either layout; symbolic links are not followed,
    so a link cannot make the walk go round."""
    try:
        with os.scandir(directory) as listing:
            subdirectories = [
                Path(entry.path)
                for entry in listing
                if entry.name not in _PARTS and entry.is_dir(follow_symlinks=False)
            ]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for path in subdirectories:
        if _is_maildir(path):
            key = path.relative_to(root).as_posix()
            name = _folder_name(key)
            yield Folder(key, name, path, role_of(name))
        yield from _folders_below(root, path)


def _folder_name(key: str) -> str:
    """``.Archive.2023`` (Maildir++) and ``Archive/2023`` (nested) are both ``Archive/2023``."""
    parts: list[str] = []
    for part in key.split("/"):
        if part.startswith("."):
            parts.extend(piece for piece in part[1:].split(".") if piece)
        else:
            parts.append(part)
    return "/".join(_decode_mutf7(part) for part in parts)


def _decode_mutf7(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 5.1.3) decoded; a name that is not valid in it
    (a tool that writes UTF-8 names as they are) is returned unchanged."""

    def decode(match: re.Match[str]) -> str:
        chunk = match.group(1)
        if not chunk:
            return "&"
        padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
        return base64.b64decode(padded, validate=True).decode("utf-16-be")

    try:
        return _MUTF7.sub(decode, name)
    except (ValueError, UnicodeDecodeError):
        return name
