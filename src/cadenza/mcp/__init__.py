"""The MCP surface: every action of the registry as a tool, for AI agents.

* ``server``: the MCP server (tool listing and calls, resources) and stdio serving;
* ``http``: streamable HTTP behind bearer API keys, mounted on an ASGI app;
* ``tools``: each action's tool definition (compact schemas, description, hints);
* ``calls``: running one tool call through the catalogue, and its result;
* ``errors``: the one table from domain errors to tool errors;
* ``texts``: the server instructions and the scheduling guide.

Only ``server`` and ``http`` import the MCP SDK; the rest is plain Python so its
rules can be tested without a session.
"""
