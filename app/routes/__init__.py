"""HTTP routes: each validates, makes one service call off the event loop, and maps the result.
One module per concern; the app includes :data:`ROUTERS` in this order."""

from __future__ import annotations

from fastapi import APIRouter

from app.routes import admin, browse, collections, items, kits, library, recommend, search

ROUTERS: tuple[APIRouter, ...] = (
    search.router,
    search.uploads,
    recommend.router,
    items.router,
    browse.router,
    collections.read,
    collections.write,
    kits.read,
    kits.write,
    library.router,
    admin.write,
    admin.read,
    admin.probes,
)
