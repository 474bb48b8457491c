"""A client nobody here wrote: the MCP Inspector's CLI (from npm) lists and calls the tools of
``timbre mcp`` over stdio and of ``/mcp`` over streamable HTTP.

Slow tier: ``npx`` fetches the Inspector (~160 MB) on first use. Run it with
``pytest -m slow tests/mcp/test_mcp_inspector.py``; it skips when npx is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ingest.synthetic import Library
from tests.support.live import live_service
from tests.support.mcp_helpers import TIMBRE
from timbre.settings import load_settings

pytestmark = pytest.mark.slow

NPX = shutil.which("npx")
INSPECTOR = "@modelcontextprotocol/inspector@0.22.0"


def inspect(target: list[str], *args: str, env: dict[str, str] | None = None) -> Any:
    assert NPX is not None
    done = subprocess.run(
        [NPX, "-y", INSPECTOR, "--cli", *target, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


@pytest.mark.skipif(NPX is None, reason="npx (Node.js) is not installed")
def test_the_inspector_cli_lists_and_calls_the_tools(
    mcp_library: Library, mcp_indexed_dir: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(mcp_indexed_dir, data, ignore=shutil.ignore_patterns("service.json"))
    env = {
        "TIMBRE_DATA_DIR": str(data),
        "TIMBRE_MODELS__BUNDLE": str(tiny_bundle),
        "TIMBRE_API__LIBRARY_ROOTS": json.dumps([str(mcp_library.root)]),
    }
    stdio = [str(TIMBRE), "mcp"]
    listed = inspect(stdio, "--method", "tools/list", env=env)
    assert "build_palette" in {t["name"] for t in listed["tools"]}
    found = inspect(
        stdio,
        *("--method", "tools/call", "--tool-name", "search_samples"),
        *("--tool-arg", "query=punchy kick", "top_k=3"),
        env=env,
    )
    assert not found.get("isError") and len(found["structuredContent"]["hits"]) == 3
    bad = inspect(
        stdio, "--method", "tools/call", "--tool-name", "get_sample", "--tool-arg", "id=x", env=env
    )
    assert bad["isError"] and bad["content"][0]["text"] == "no indexed item 'x' (ids are UUIDs)"

    settings = load_settings(
        data_dir=data,
        models={"bundle": tiny_bundle, "threads": 2},
        api={"library_roots": [str(mcp_library.root)]},
    )
    with live_service(settings) as url:
        http = [f"{url}/mcp", "--transport", "http"]
        prompt = inspect(
            http,
            *("--method", "prompts/get", "--prompt-name", "build_palette"),
            *("--prompt-args", "brief=dub techno at 118 BPM"),
        )
        assert "dub techno at 118 BPM" in prompt["messages"][0]["content"]["text"]
        palette = inspect(
            http,
            *("--method", "tools/call", "--tool-name", "build_palette"),
            "--tool-arg",
            'slots=[{"slot": "kick", "query": "kick", "top_k": 2}, {"query": "hat", "top_k": 2}]',
        )
    slots = palette["structuredContent"]["slots"]
    assert [len(s["hits"]) for s in slots] == [2, 2]
