"""The Gmail add-on's HTTP endpoints (Google Workspace add-ons, alternate runtime)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
