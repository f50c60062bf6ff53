"""``crm-sync addin manifest``: the Outlook add-in's XML manifest, run as an admin runs it.

Microsoft's schema files are not here, so the test checks what the add-in only manifest
reference documents: the namespaces, the elements a ``MailApp`` must have and their order,
a read-mode task pane on messages, the ``ShowTaskpane`` button on the message-read
command surface, and that every URL in it is the web app's own, over https.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.cli import run_cli

APP = "http://schemas.microsoft.com/office/appforoffice/1.1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
BT = "http://schemas.microsoft.com/office/officeappbasictypes/1.0"
OVERRIDES = "http://schemas.microsoft.com/office/mailappversionoverrides"
TYPE = f"{{{XSI}}}type"
BASE = "https://crm.example.com"
ORDER = (
    "Id",
    "Version",
    "ProviderName",
    "DefaultLocale",
    "DisplayName",
    "Description",
    "IconUrl",
    "HighResolutionIconUrl",
    "SupportUrl",
    "AppDomains",
    "Hosts",
    "Requirements",
    "FormSettings",
    "Permissions",
    "Rule",
    "DisableEntityHighlighting",
)
"""The order the schema's sequence gives the ``OfficeApp`` children a mail add-in uses."""


def manifest(tmp_path: Path, *args: str) -> tuple[str, ET.Element]:
    done = run_cli("addin", "manifest", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout, ET.fromstring(done.stdout.encode())


def one(root: ET.Element, path: str) -> ET.Element:
    found = root.findall(path, {"o": APP, "bt": BT, "v": OVERRIDES})
    assert len(found) == 1, path
    return found[0]


@pytest.fixture(autouse=True)
def config(tmp_path: Path) -> Path:
    """Every command reads the config; these take the base URL from it when not given."""
    path = tmp_path / "crm-sync.toml"
    path.write_text("")
    return path


def test_the_manifest_is_a_mail_app_with_a_read_task_pane(tmp_path: Path) -> None:
    text, root = manifest(tmp_path, "--base-url", BASE)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<OfficeApp ')
    assert root.tag == f"{{{APP}}}OfficeApp"
    assert root.get(TYPE) == "MailApp"
    for prefix, uri in (("xsi", XSI), ("bt", BT)):
        assert f'xmlns:{prefix}="{uri}"' in text

    children = [child.tag.removeprefix(f"{{{APP}}}") for child in root]
    assert children == [*ORDER, f"{{{OVERRIDES}}}VersionOverrides"]
    assert str(uuid.UUID(one(root, "o:Id").text or "")) == one(root, "o:Id").text
    assert one(root, "o:Version").text == "0.1.0.0"
    assert one(root, "o:DisplayName").get("DefaultValue") == "crm-sync"
    assert one(root, "o:AppDomains/o:AppDomain").text == BASE
    assert one(root, "o:Hosts/o:Host").get("Name") == "Mailbox"
    mailbox = one(root, "o:Requirements/o:Sets/o:Set")
    assert (mailbox.get("Name"), mailbox.get("MinVersion")) == ("Mailbox", "1.1")

    form = one(root, "o:FormSettings/o:Form")
    assert form.get(TYPE) == "ItemRead"
    source = one(form, "o:DesktopSettings/o:SourceLocation")
    assert source.get("DefaultValue") == f"{BASE}/addin/taskpane"
    height = int(one(form, "o:DesktopSettings/o:RequestedHeight").text or "0")
    assert 32 <= height <= 450
    assert one(root, "o:Permissions").text == "ReadItem"
    rules = one(root, "o:Rule")
    assert rules.get(TYPE) == "RuleCollection"
    (rule,) = list(rules)
    assert (rule.get(TYPE), rule.get("ItemType"), rule.get("FormType")) == (
        "ItemIs",
        "Message",
        "Read",
    )


def test_the_button_opens_the_pane_on_messages_being_read(tmp_path: Path) -> None:
    _, root = manifest(tmp_path, "--base-url", BASE)
    overrides = one(root, "v:VersionOverrides")
    assert overrides.get(TYPE) == "VersionOverridesV1_0"
    sets = one(overrides, "v:Requirements/bt:Sets")
    assert sets.get("DefaultMinVersion") == "1.3"
    assert one(sets, "bt:Set").get("Name") == "Mailbox"
    host = one(overrides, "v:Hosts/v:Host")
    assert host.get(TYPE) == "MailHost"
    point = one(host, "v:DesktopFormFactor/v:ExtensionPoint")
    assert point.get(TYPE) == "MessageReadCommandSurface"
    control = one(point, "v:OfficeTab/v:Group/v:Control")
    assert control.get(TYPE) == "Button"
    action = one(control, "v:Action")
    assert action.get(TYPE) == "ShowTaskpane"

    resources = one(overrides, "v:Resources")
    ids = {
        element.get("id"): element.get("DefaultValue")
        for element in resources.iter()
        if element.get("id") is not None
    }
    used = [element.get("resid") for element in overrides.iter() if element.get("resid")]
    assert used and all(resid in ids for resid in used), used
    assert ids[one(action, "v:SourceLocation").get("resid")] == f"{BASE}/addin/taskpane"
    images = {image.get("size") for image in one(control, "v:Icon")}
    assert images == {"16", "32", "80"}
    short = [e.get("DefaultValue") or "" for e in one(resources, "bt:ShortStrings")]
    long = [e.get("DefaultValue") or "" for e in one(resources, "bt:LongStrings")]
    assert all(0 < len(s) <= 125 for s in short) and all(0 < len(s) <= 250 for s in long)


def test_every_url_is_the_web_apps_own(tmp_path: Path) -> None:
    _, root = manifest(tmp_path, "--base-url", BASE + "/")
    urls = [
        value
        for element in root.iter()
        for name, value in element.attrib.items()
        if name == "DefaultValue" and value.startswith("http")
    ]
    assert len(urls) >= 7
    assert all(url.startswith(f"{BASE}/") for url in urls), urls
    icons = [url for url in urls if url.endswith(".png")]
    assert sorted(icons) == sorted(
        f"{BASE}/static/addin-icon-{size}.png" for size in (16, 32, 64, 80, 128)
    )
    static = Path(__file__).parents[3] / "agent" / "web" / "static"
    assert all((static / url.rsplit("/", 1)[1]).is_file() for url in icons)


def test_the_id_is_stable_for_a_base_url_and_may_be_given(tmp_path: Path) -> None:
    first = manifest(tmp_path, "--base-url", BASE)[1]
    again = manifest(tmp_path, "--base-url", "HTTPS://CRM.example.com/")[1]
    other = manifest(tmp_path, "--base-url", "https://crm.other.example")[1]
    derived = one(first, "o:Id").text
    assert derived == str(uuid.uuid5(uuid.NAMESPACE_URL, BASE))
    assert one(again, "o:Id").text == derived
    assert one(other, "o:Id").text != derived

    given = "0B6C3B55-9D3F-4C4E-8F53-2A5E5D0E6C11"
    chosen = manifest(tmp_path, "--base-url", BASE, "--id", given)[1]
    assert one(chosen, "o:Id").text == given.lower()


def test_a_path_prefix_is_kept_and_escaped(tmp_path: Path) -> None:
    text, root = manifest(tmp_path, "--base-url", "https://example.com/crm&co")
    assert "crm&amp;co" in text
    source = one(root, "o:FormSettings/o:Form/o:DesktopSettings/o:SourceLocation")
    assert source.get("DefaultValue") == "https://example.com/crm&co/addin/taskpane"
    assert one(root, "o:AppDomains/o:AppDomain").text == "https://example.com"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--base-url", "http://crm.example.com"), "an https:// URL"),
        (("--base-url", "crm.example.com"), "an https:// URL"),
        (("--base-url", "https://"), "an https:// URL"),
        (("--base-url", "https://crm.example.com/?x=1"), "only scheme, host, port and path"),
        (("--base-url", "https://user:pw@crm.example.com"), "only scheme, host, port and path"),
        (("--base-url", BASE, "--id", "not-a-guid"), "a GUID"),
        ((), "give --base-url, or set [web] base_url"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = run_cli("addin", "manifest", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_the_base_url_comes_from_the_config_when_not_given(tmp_path: Path, config: Path) -> None:
    missing = run_cli("addin", "manifest", cwd=tmp_path)
    assert missing.returncode == 2
    assert "give --base-url, or set [web] base_url" in missing.stderr
    config.write_text('[web]\nbase_url = "https://crm.example.com"\n')
    given = run_cli("addin", "manifest", "--base-url", "https://crm.example.com", cwd=tmp_path)
    configured = run_cli("addin", "manifest", cwd=tmp_path)
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout == given.stdout and "https://crm.example.com/" in given.stdout
