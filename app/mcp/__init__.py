"""The MCP front door: the same tools over stdio (``timbre mcp``) and streamable HTTP (``/mcp``).

``server`` declares the tools, resources and prompt; ``backends`` answers them, in-process
(the service itself) or through a running service's HTTP API, with the same results;
``http`` mounts the server in the FastAPI app behind the API's key rules.
"""
