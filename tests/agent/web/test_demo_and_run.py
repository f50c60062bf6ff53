"""The web app as an admin starts it: on the demo's database, and inside the agent."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx

from tests.support.cli import FAST_AGENT, run_cli, start_cli, upgrade_database
from tests.support.mailbuilder import message, write_mbox
from tests.support.web import free_port, sign_in


def _wait_until_up(url: str, process_log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered: {process_log.read_text()}")


def test_the_demo_prints_a_sign_in_that_serve_accepts(tmp_path: Path) -> None:
    demo = run_cli("demo", cwd=tmp_path, timeout=300)
    assert demo.returncode == 0, demo.stderr
    line = re.search(r"sign in as (\S+) with the password (\S+)", demo.stdout)
    assert line is not None, demo.stdout
    email, password = line.groups()
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_cli(
        "--config", "demo.toml", "serve", "--port", str(port), cwd=tmp_path, output=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, log)
        with httpx.Client(base_url=url) as client:
            assert sign_in(client, email, "not the password").status_code == 401
            assert sign_in(client, email, password).status_code == 303
            page = client.get("/search", params={"q": "acme"})
            assert page.status_code == 200 and "Dana Whitfield" in page.text
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn ends a graceful shutdown by re-raising the signal it caught
        assert server.wait(15) in (0, -signal.SIGTERM), log.read_text()


def test_run_with_web_serves_the_app_beside_the_agent(tmp_path: Path) -> None:
    mails = [
        message(
            sender=f"Customer {n} <customer{n}@acme.example>",
            to=["carol@ourteam.example"],
            subject=f"Order {n}",
            message_id=f"<order-{n}@acme.example>",
        )
        for n in range(3)
    ]
    mbox = write_mbox(tmp_path / "carol.mbox", mails)
    port = free_port()
    config = tmp_path / "crm-sync.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///crm.db"

[agent]
interval = "1s"
auto_create_contacts = "sent_and_received"

[web]
port = {port}
session_secret = "a-session-secret-long-enough-for-the-check"

[[connectors]]
name = "carol-mbox"
kind = "mbox"
account = "carol@ourteam.example"
path = "{mbox}"
"""
    )
    upgrade_database(tmp_path, env=FAST_AGENT)
    added = run_cli(
        "users",
        "add",
        "carol@ourteam.example",
        "--password-stdin",
        cwd=tmp_path,
        input="long enough password\n",
        env=FAST_AGENT,
    )
    assert added.returncode == 0, added.stderr
    log = tmp_path / "run.log"
    agent = start_cli("run", "--web", cwd=tmp_path, output=log, env=FAST_AGENT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, log)
        with httpx.Client(base_url=url) as client:
            assert (
                sign_in(client, "carol@ourteam.example", "long enough password").status_code == 303
            )
            deadline = time.monotonic() + 30
            while "Order 2" not in client.get("/activity").text:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            assert "customer1@acme.example" in client.get("/search", params={"q": "customer1"}).text
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0, log.read_text()
