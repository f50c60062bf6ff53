"""The registry: a builder for every kind, each loading only its own connector's modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.runtime.registry import BUILDERS, build_connector
from config import parse_settings
from config.schema import CONNECTOR_KINDS
from tests.support.paths import REPO

BUILD_IMAP_AND_MBOX = """
import sys
from pathlib import Path
from agent.runtime.registry import build_connector
from config import parse_settings
settings = parse_settings({"connectors": [
    {"name": "box", "kind": "imap", "account": "me@example.com", "host": "127.0.0.1",
     "security": "plain", "password": "x"},
    {"name": "file", "kind": "mbox", "account": "me@example.com", "path": "box.mbox"},
]}, None)
for config in settings.connectors:
    build_connector(config, settings, Path.cwd())
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("google", "googleapiclient"))
print(" ".join(loaded + [name for name in sys.modules if name.startswith("connectors.google")]))
"""


def test_every_kind_has_a_builder() -> None:
    assert set(BUILDERS) == set(CONNECTOR_KINDS)


def test_an_imap_or_mbox_connector_never_loads_the_google_client() -> None:
    """The Google client takes a second to import and most of an IMAP agent's memory."""
    ran = subprocess.run(
        [sys.executable, "-c", BUILD_IMAP_AND_MBOX],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == []


def test_the_batch_bytes_setting_reaches_the_mail_connectors(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "agent": {"batch_bytes": 3 * 2**20},
            "connectors": [
                {"name": "box", "kind": "imap", "account": "me@example.com",
                 "host": "127.0.0.1", "security": "plain", "password": "x"},
                {"name": "file", "kind": "mbox", "account": "me@example.com", "path": "box.mbox"},
            ],
        },
        None,
    )  # fmt: skip
    built = [build_connector(config, settings, tmp_path) for config in settings.connectors]
    assert [getattr(connector, "batch_bytes", None) for connector in built] == [3 * 2**20] * 2
