"""The Outlook add-in's task pane, served by the web app."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
