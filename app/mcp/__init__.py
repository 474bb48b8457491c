"""The MCP front door: the same tools over stdio (``timbre mcp``) and streamable HTTP (``/mcp``).
``server`` declares them, ``backends`` answers them (in-process or over HTTP), ``http`` mounts
the server in the app behind the API's key rules."""
