"""The Hugging Face hub: whether it can be reached, and fetching one file of a pinned revision
into huggingface_hub's cache (with errors that say what to do instead)."""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

from timbre.errors import ModelFilesError

log = logging.getLogger(__name__)

_HUB_DEFAULT = "https://huggingface.co"
_cache_only_said: set[str] = set()
_probed: dict[str, str | None] = {}
"""Endpoint -> why it cannot be reached (None: reachable), probed once per process."""


def hub_unreachable(timeout_s: float) -> str | None:
    """Why the hub (``HF_ENDPOINT``) cannot be reached, or None when a TCP connection opens
    (to the proxy, when one is configured). One attempt per process: huggingface_hub retries
    a failed request with back-off for ~24 s per file."""
    endpoint = os.environ.get("HF_ENDPOINT") or _HUB_DEFAULT
    if endpoint not in _probed:
        url = urlparse(endpoint)
        proxy = urllib.request.getproxies().get(url.scheme)
        if proxy and urllib.request.proxy_bypass(url.hostname or ""):  # NO_PROXY
            proxy = None
        target = url if not proxy else urlparse(proxy if "://" in proxy else f"http://{proxy}")
        port = target.port or (80 if target.scheme == "http" else 443)
        try:
            socket.create_connection((target.hostname or "", port), timeout=timeout_s).close()
            _probed[endpoint] = None
        except OSError as exc:
            via = f" through the proxy {target.hostname}:{port}" if proxy else ""
            _probed[endpoint] = f"{endpoint} cannot be reached{via} ({exc.strerror or exc})"
    return _probed[endpoint]


def _offline_by_setting() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_only(timeout_s: float) -> bool:
    """Whether to look in the local hub cache only (``HF_HUB_OFFLINE``, or the hub cannot be
    reached); says why once per reason and process."""
    unreachable = "HF_HUB_OFFLINE is set" if _offline_by_setting() else None
    unreachable = unreachable or hub_unreachable(timeout_s)
    if unreachable is not None and unreachable not in _cache_only_said:
        _cache_only_said.add(unreachable)
        log.warning("the Hugging Face hub: %s; looking in the local hub cache only", unreachable)
    return unreachable is not None


def commit_of(path: Path, fallback: str) -> str:
    # hub cache layout: .../snapshots/<commit>/<file>; the folder name is the resolved commit.
    parent = path.parent
    if parent.parent.name == "snapshots" and len(parent.name) == 40:
        return parent.name
    return fallback


def hub_file(repo: str, revision: str, filename: str, offline: bool = False) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(hf_hub_download(repo, filename, revision=revision, local_files_only=offline))
    except LocalEntryNotFoundError as exc:
        raise ModelFilesError(
            f"{repo}/{filename} at revision {revision} is not in the local hub cache and the hub "
            "cannot be reached (or HF_HUB_OFFLINE=1). Point TIMBRE_MODELS__BUNDLE at a model "
            "bundle folder (`timbre models download --to DIR` where the hub is reachable; "
            "`timbre models random DIR` for a random-weight test bundle)"
        ) from exc
    except EntryNotFoundError as exc:
        raise ModelFilesError(f"{repo} has no file {filename} at revision {revision}") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise ModelFilesError(f"hub repository {repo}@{revision} not found: {exc}") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelFilesError(f"could not fetch {repo}/{filename}@{revision}: {exc}") from exc


def hub_optional(repo: str, revision: str, filename: str, offline: bool) -> Path | None:
    try:
        return hub_file(repo, revision, filename, offline)
    except ModelFilesError:
        return None


def hub_first(repo: str, revision: str, names: Iterable[str], offline: bool) -> Path:
    errors = []
    for name in names:
        try:
            return hub_file(repo, revision, name, offline)
        except ModelFilesError as exc:
            errors.append(str(exc))
    raise ModelFilesError("; ".join(errors))


def hub_file_sha256(repo: str, revision: str, filename: str) -> str | None:
    """The sha256 the hub announces for an LFS file (its linked ETag), if it announces one."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision))
    etag = (meta.etag or "").strip('"')
    return etag if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) else None
