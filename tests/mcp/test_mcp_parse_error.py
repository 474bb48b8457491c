"""``timbre mcp`` answers a line it cannot parse with a JSON-RPC error at once, instead of
leaving the client to wait out its timeout (through a real subprocess on stdio)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

from tests.conftest import keep_export_dir
from tests.support.mcp_helpers import TIMBRE


def test_an_unparseable_line_gets_a_parse_error(mcp_indexed_dir: Path, tiny_bundle: Path) -> None:
    env = keep_export_dir(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_")},
            "TIMBRE_DATA_DIR": str(mcp_indexed_dir),  # a read command needs an index
            "TIMBRE_MODELS__BUNDLE": str(tiny_bundle),
            "TIMBRE_MODELS__THREADS": "1",
        }
    )
    lines = [
        "this is not json",
        '{"jsonrpc": "2.0", "id": 7, "method": "ping"}',
        "[1, 2]",
        '{"jsonrpc": "2.0", "id": 8, "method": "ping"}',
    ]
    process = subprocess.Popen(
        [str(TIMBRE), "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    guard = threading.Timer(60, process.kill)  # a missing answer fails the test, never hangs it
    guard.start()
    assert process.stdin is not None and process.stdout is not None
    try:
        replies = []
        for line in lines:  # one at a time: each must be answered before the next is sent
            process.stdin.write(line + "\n")
            process.stdin.flush()
            replies.append(json.loads(process.stdout.readline()))
    finally:
        guard.cancel()
        process.stdin.close()
        process.wait(timeout=60)
    assert replies[0]["id"] is None and replies[0]["error"]["code"] == -32700
    assert "Parse error" in replies[0]["error"]["message"]
    assert replies[1] == {"jsonrpc": "2.0", "id": 7, "result": {}}  # the line after still works
    assert replies[2]["id"] is None and replies[2]["error"]["code"] == -32600
    assert replies[3] == {"jsonrpc": "2.0", "id": 8, "result": {}}
