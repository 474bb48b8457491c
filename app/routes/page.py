"""What a browser asks of the page's origin besides the API: the icon."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The page's icon (browsers ask for /favicon.ico whatever the page says)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
