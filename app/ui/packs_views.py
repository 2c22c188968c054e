"""UI pages: packs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/t/{tenantId}", include_in_schema=False)
