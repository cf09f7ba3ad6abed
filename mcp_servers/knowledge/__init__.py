"""Knowledge-base MCP server: ranked search over bundled support-policy articles.

Run it with ``python -m mcp_servers.knowledge`` (see ``__main__`` for options).
"""
