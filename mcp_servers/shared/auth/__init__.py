"""Authentication for Keel's MCP servers: access tokens (OAuth 2.1 resource server) and
approval grants, verified against JWK Sets. See docs/security.md."""
