"""What every Keel MCP server shares, deployable without Keel's runtime.

One concern per module:

- :mod:`mcp_servers.shared.launcher` — CLI parsing, streamable HTTP or stdio, ``/healthz``,
  Host-header checks, exit codes;
- :mod:`mcp_servers.shared.ledger` — the idempotency ledger for write tools;
- :mod:`mcp_servers.shared.logs` — JSON log lines on stderr (trace ids, masked secrets);
- :mod:`mcp_servers.shared.tracing` — the tracer provider the standard ``OTEL_*`` variables
  ask for;
- :mod:`mcp_servers.shared.config` — the servers' error type and environment parsing.

Dependency rule: this package (and every server) imports only ``keel.contracts.names`` from
Keel, for the names shared with the worker (``io.keel/idempotency-key``, the "call in
progress" error code), and none of the worker's third-party packages (temporalio,
temporalio-mcp, genai-prices, jsonschema, prometheus-client). So the base install
(``pip install keel``, without the ``runtime`` extra) is enough to run a server.
"""
