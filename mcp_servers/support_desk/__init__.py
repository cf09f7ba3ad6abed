"""Support-desk MCP server: customers, orders, refunds, emails and tickets in SQLite.

Run it with ``python -m mcp_servers.support_desk`` (see ``__main__`` for options).
"""
