"""``crm-sync addin``: the Outlook add-in's manifest.

The add-in is the web app's ``/addin/taskpane`` page shown beside an open
message; the manifest (Microsoft's add-in only XML manifest, a ``MailApp``)
tells Outlook where it is and puts a button on the message's ribbon. An admin
sideloads it, or uploads it in the Microsoft 365 admin center for everyone.
"""

from __future__ import annotations

import re
import uuid
from importlib.metadata import version
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import click

from agent.cli.common import configured_base_url, pass_app
from agent.runtime.app import App

NAME = "crm-sync"
DESCRIPTION = (
    "The team's record of the people on the open message: "
    "fields, last conversation and who knows them."
)
DEFAULT_VERSION = "1.0.0.0"


@click.group()
def addin() -> None:
    """The Outlook add-in (a task pane beside the open message)."""


@addin.command()
@click.option(
    "--base-url",
    metavar="URL",
    help="Where users reach the web app, https only (default: [web] base_url).",
)
@click.option(
    "--id",
    "addin_id",
    metavar="GUID",
    help="The add-in's id. By default one derived from the base URL, so the same URL "
    "always gives the same id and a new manifest updates the add-in already installed.",
)
@pass_app
def manifest(app: App, base_url: str | None, addin_id: str | None) -> None:
    """Print the add-in's XML manifest, for sideloading or the Microsoft 365 admin center:

    crm-sync addin manifest --base-url https://crm.example.com > manifest.xml
    """
    base = checked_base_url(base_url or configured_base_url(app))
    click.echo(manifest_xml(base, checked_id(addin_id) if addin_id else default_id(base)), nl=False)


def checked_base_url(value: str) -> str:
    """An https origin, with an optional path prefix: Outlook loads add-ins over https only."""
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise click.BadParameter(
            "an https:// URL, such as https://crm.example.com", param_hint="--base-url"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise click.BadParameter("only scheme, host, port and path", param_hint="--base-url")
    return f"https://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def default_id(base_url: str) -> str:
    """A name-based (version 5) UUID of the base URL: stable across runs and machines."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, base_url))


def checked_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.BadParameter(
            "a GUID, such as 0b6c3b55-9d3f-4c4e-8f53-2a5e5d0e6c11", param_hint="--id"
        ) from None


def manifest_version() -> str:
    """The package's version in the manifest's ``n.n.n.n`` form: Outlook updates an add-in
    whose manifest version changed."""
    parts = re.findall(r"\d+", version("crm-sync").split("+")[0])[:4]
    return ".".join([*parts, *["0"] * (4 - len(parts))]) if parts else DEFAULT_VERSION


def manifest_xml(base_url: str, addin_id: str) -> str:
    """The add-in only manifest: a read-mode task pane on messages, opened by a button."""
    origin = "https://" + urlsplit(base_url).netloc

    def attr(value: str) -> str:
        return quoteattr(value)

    def url(path: str) -> str:
        return attr(base_url + path)

    icons = "\n".join(
        f'        <bt:Image id="Icon.{size}" DefaultValue={url(f"/static/addin-icon-{size}.png")}/>'
        for size in (16, 32, 80)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OfficeApp xmlns="http://schemas.microsoft.com/office/appforoffice/1.1"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
           xmlns:bt="http://schemas.microsoft.com/office/officeappbasictypes/1.0"
           xmlns:mailappor="http://schemas.microsoft.com/office/mailappversionoverrides/1.0"
           xsi:type="MailApp">
  <Id>{escape(addin_id)}</Id>
  <Version>{manifest_version()}</Version>
  <ProviderName>{NAME}</ProviderName>
  <DefaultLocale>en-US</DefaultLocale>
  <DisplayName DefaultValue="{NAME}"/>
  <Description DefaultValue={attr(DESCRIPTION)}/>
  <IconUrl DefaultValue={url("/static/addin-icon-64.png")}/>
  <HighResolutionIconUrl DefaultValue={url("/static/addin-icon-128.png")}/>
  <SupportUrl DefaultValue={url("/")}/>
  <AppDomains>
    <AppDomain>{escape(origin)}</AppDomain>
  </AppDomains>
  <Hosts>
    <Host Name="Mailbox"/>
  </Hosts>
  <Requirements>
    <Sets>
      <Set Name="Mailbox" MinVersion="1.1"/>
    </Sets>
  </Requirements>
  <FormSettings>
    <Form xsi:type="ItemRead">
      <DesktopSettings>
        <SourceLocation DefaultValue={url("/addin/taskpane")}/>
        <RequestedHeight>250</RequestedHeight>
      </DesktopSettings>
    </Form>
  </FormSettings>
  <Permissions>ReadItem</Permissions>
  <Rule xsi:type="RuleCollection" Mode="Or">
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Read"/>
  </Rule>
  <DisableEntityHighlighting>true</DisableEntityHighlighting>
  <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides"
                    xsi:type="VersionOverridesV1_0">
    <Requirements>
      <bt:Sets DefaultMinVersion="1.3">
        <bt:Set Name="Mailbox"/>
      </bt:Sets>
    </Requirements>
    <Hosts>
      <Host xsi:type="MailHost">
        <DesktopFormFactor>
          <ExtensionPoint xsi:type="MessageReadCommandSurface">
            <OfficeTab id="TabDefault">
              <Group id="crmSync.ReadGroup">
                <Label resid="Group.Label"/>
                <Control xsi:type="Button" id="crmSync.OpenPane">
                  <Label resid="Button.Label"/>
                  <Supertip>
                    <Title resid="Button.Label"/>
                    <Description resid="Button.Tooltip"/>
                  </Supertip>
                  <Icon>
                    <bt:Image size="16" resid="Icon.16"/>
                    <bt:Image size="32" resid="Icon.32"/>
                    <bt:Image size="80" resid="Icon.80"/>
                  </Icon>
                  <Action xsi:type="ShowTaskpane">
                    <SourceLocation resid="Taskpane.Url"/>
                  </Action>
                </Control>
              </Group>
            </OfficeTab>
          </ExtensionPoint>
        </DesktopFormFactor>
      </Host>
    </Hosts>
    <Resources>
      <bt:Images>
{icons}
      </bt:Images>
      <bt:Urls>
        <bt:Url id="Taskpane.Url" DefaultValue={url("/addin/taskpane")}/>
      </bt:Urls>
      <bt:ShortStrings>
        <bt:String id="Group.Label" DefaultValue="{NAME}"/>
        <bt:String id="Button.Label" DefaultValue="Show in {NAME}"/>
      </bt:ShortStrings>
      <bt:LongStrings>
        <bt:String id="Button.Tooltip" DefaultValue={attr(DESCRIPTION)}/>
      </bt:LongStrings>
    </Resources>
  </VersionOverrides>
</OfficeApp>
"""
