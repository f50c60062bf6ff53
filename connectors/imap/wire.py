"""The commands imapclient has no call for, sent through its private layer.

imapclient offers no EXAMINE with a CONDSTORE/QRESYNC parameter, no
LIST-STATUS (``LIST ... RETURN (STATUS ...)``), and its own FETCH parser is
slow (``connectors.imap.fetch``). These commands therefore go through the
layer under its public API, and this module is the only place that does.
It relies on:

* ``IMAPClient._imap``, the ``imaplib.IMAP4`` connection imapclient drives,
  and on that: ``untagged_responses`` (a dict of response name -> lines),
  ``_simple_command``, ``_untagged_response`` and ``uid``;
* ``IMAPClient._checkok`` (raises imapclient's errors on a NO or BAD),
  ``_command_and_check``, ``_normalise_folder`` (quotes and UTF-7 encodes a
  folder name), ``_proc_folder_list`` (LIST lines -> (flags, delimiter,
  name)) and ``_process_select_response`` (SELECT/EXAMINE untagged responses
  -> ``{b"UIDVALIDITY": n, ...}``);
* ``imapclient.response_parser.parse_response`` for STATUS lines.

Checked against imapclient 4.1.0; ``pyproject.toml`` pins the range so that
an upgrade is a decision, taken after reading these again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imapclient import IMAPClient
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response

Listed = tuple[tuple[Any, ...], Any, str]
"""One LIST line: (flags, delimiter, folder name)."""


def list_folders(
    client: IMAPClient, return_options: str | None
) -> tuple[list[Listed], dict[str, dict[bytes, Any]]]:
    """``LIST "" "*" [RETURN (return_options)]``: every folder, and the STATUS
    values (``{b"UIDNEXT": n, ...}``) the server sent along, by folder name."""
    imap = client._imap
    imap.untagged_responses = {}
    args = ['""', '"*"']
    if return_options:
        args += ["RETURN", f"({return_options})"]
    typ, data = imap._simple_command("LIST", *args)
    client._checkok("list", typ, data)
    _, listed = imap._untagged_response(typ, data, "LIST")
    statuses: dict[str, dict[bytes, Any]] = {}
    for line in imap.untagged_responses.pop("STATUS", []):
        name, values = parse_response([line])
        statuses[_folder_name(name)] = dict(zip(values[::2], values[1::2], strict=False))
    folders: list[Listed] = client._proc_folder_list(listed)
    return folders, statuses


def examine(
    client: IMAPClient, folder: str, parameters: str = ""
) -> tuple[dict[bytes, Any], Mapping[str, list[Any]]]:
    """``EXAMINE folder parameters``: the folder's figures (``{b"UIDVALIDITY": n, ...}``)
    and the untagged responses by name (``VANISHED``, ``FETCH``, ...)."""
    quoted = client._normalise_folder(folder)
    if isinstance(quoted, bytes):
        quoted = quoted.decode("ascii")
    client._command_and_check("select", quoted + parameters, True)
    untagged: Mapping[str, list[Any]] = client._imap.untagged_responses
    figures: dict[bytes, Any] = client._process_select_response(untagged)
    return figures, untagged


def uid_command(client: IMAPClient, command: str, *args: str) -> list[Any]:
    """``UID command args``: the response lines as imaplib returns them, unparsed."""
    typ, data = client._imap.uid(command, *args)
    client._checkok(f"uid {command.lower()}", typ, data)
    lines: list[Any] = data
    return lines


def _folder_name(name: object) -> str:
    if isinstance(name, bytes):
        return str(decode_utf7(name))
    return str(name)
