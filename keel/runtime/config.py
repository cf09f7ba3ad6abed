"""Configuration from the environment, read once by the worker, the CLI and the stack launcher.

Every setting has a documented environment variable (see docs/operations.md) and a default
that works on a developer machine with the stack started by ``make up``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from keel.contracts.errors import ConfigError
from keel.contracts.names import APPROVER_AUDIENCE, CLAIM_ROLES, LOCAL_ISSUER, TASK_QUEUE

N = TypeVar("N", int, float)
SIGNING_FILE = "signing.pem"  # the file names of keel/runtime/keys.py (which imports PyJWT)
CODEC_FILE = "codec-keys.json"
JWKS_FILE = "jwks.json"
D = TypeVar("D")

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_LLM_BASE_URL = "http://127.0.0.1:8100/v1"
DEFAULT_MCP_SERVERS = {
    "support_desk": "http://127.0.0.1:8201/mcp",
    "knowledge": "http://127.0.0.1:8202/mcp",
}
MCP_ENV_PREFIX = "KEEL_MCP_"
STORE_DIR = "store"  # the embedded content store, under KEEL_HOME
SPEND_FILE = "spend.db"  # the default spend ledger (SQLite), under KEEL_HOME
# A payload this big (bytes, after the codec) is kept in the store, history holds a reference.
DEFAULT_PAYLOAD_THRESHOLD = 128 * 1024
MIN_PAYLOAD_THRESHOLD = 1024


@dataclass(frozen=True)
class MCPServerTarget:
    """Where an MCP server lives: a streamable-HTTP URL, or a stdio command line."""

    name: str
    url: str | None = None
    command: tuple[str, ...] = ()

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def describe(self) -> str:
        return self.url or "stdio: " + " ".join(self.command)


@dataclass(frozen=True)
class Settings:
    """Everything the worker and CLI need to know about their surroundings."""

    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    profiles_path: tuple[Path, ...] = (PROJECT_ROOT / "profiles",)
    llm_base_url: str = DEFAULT_LLM_BASE_URL
    llm_api_key_env: str = ""
    mcp_servers: Mapping[str, MCPServerTarget] = field(default_factory=dict)
    mcp_read_timeout_seconds: float = 30.0
    # Key material (keel/runtime/keys.py, docs/security.md): None turns the feature off.
    signing_key: Path | None = None  # signs the worker's access tokens and approval grants
    codec_keys: Path | None = None  # the payload codec's keyring: payloads are encrypted
    auth_issuer: str = LOCAL_ISSUER  # the ``iss`` of tokens signed with ``signing_key``
    # Approvers' identity tokens (profiles with approvals.require_identity): docs/security.md.
    approver_jwks: tuple[str, ...] = ()  # JWKS files or URLs; () = no approver keys
    approver_issuers: tuple[str, ...] = (LOCAL_ISSUER,)
    approver_audience: str = APPROVER_AUDIENCE
    approver_roles_claim: str = CLAIM_ROLES  # dotted path, e.g. realm_access.roles
    # The content store (keel/runtime/store/): a directory or s3://bucket/prefix; "" = none.
    store: str = ""
    store_endpoint_url: str = ""  # an S3-compatible server (MinIO, moto); "" = AWS
    payload_threshold: int = DEFAULT_PAYLOAD_THRESHOLD  # payloads this big go to the store
    # The spend ledger (keel/runtime/spend/): postgresql://… or a SQLite file path.
    spend_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        profiles = env.get("KEEL_PROFILES_PATH", "")
        paths = (
            tuple(Path(p) for p in profiles.split(os.pathsep) if p)
            if profiles
            else (PROJECT_ROOT / "profiles",)
        )
        return cls(
            temporal_address=env.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            namespace=env.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("KEEL_TASK_QUEUE", TASK_QUEUE),
            profiles_path=paths,
            llm_base_url=env.get("KEEL_LLM_BASE_URL", DEFAULT_LLM_BASE_URL).rstrip("/"),
            llm_api_key_env=env.get("KEEL_LLM_API_KEY_ENV", ""),
            mcp_servers=parse_mcp_servers(env),
            mcp_read_timeout_seconds=_float(env, "KEEL_MCP_READ_TIMEOUT_SECONDS", 30.0),
            signing_key=key_file(env, "KEEL_SIGNING_KEY", SIGNING_FILE),
            codec_keys=key_file(env, "KEEL_CODEC_KEYS", CODEC_FILE),
            auth_issuer=env.get("KEEL_AUTH_ISSUER", "").strip() or LOCAL_ISSUER,
            approver_jwks=approver_jwks(env),
            approver_issuers=_list(env, "KEEL_APPROVER_ISSUER") or (LOCAL_ISSUER,),
            approver_audience=env.get("KEEL_APPROVER_AUDIENCE", "").strip() or APPROVER_AUDIENCE,
            approver_roles_claim=env.get("KEEL_APPROVER_ROLES_CLAIM", "").strip() or CLAIM_ROLES,
            store=env.get("KEEL_STORE", "").strip() or str(keel_home(env) / STORE_DIR),
            store_endpoint_url=env.get("KEEL_STORE_ENDPOINT_URL", "").strip(),
            spend_url=env.get("KEEL_SPEND_URL", "").strip() or str(keel_home(env) / SPEND_FILE),
            payload_threshold=env_number(
                env,
                "KEEL_PAYLOAD_THRESHOLD",
                int,
                DEFAULT_PAYLOAD_THRESHOLD,
                not_a="a whole number of bytes",
                valid=lambda n: n >= MIN_PAYLOAD_THRESHOLD,
                rule=f"must be at least {MIN_PAYLOAD_THRESHOLD} (bytes)",
            ),
        )


def keel_home(env: Mapping[str, str]) -> Path:
    """Where the local stack keeps its state: ``KEEL_HOME``, else ``.keel`` in the checkout."""
    return Path(env.get("KEEL_HOME", "").strip() or PROJECT_ROOT / ".keel")


def keys_dir(env: Mapping[str, str]) -> Path:
    """The embedded default's key directory: ``KEEL_KEYS_DIR``, else ``<KEEL_HOME>/keys``."""
    return Path(env.get("KEEL_KEYS_DIR", "").strip() or keel_home(env) / "keys")


def key_file(env: Mapping[str, str], variable: str, default_name: str) -> Path | None:
    """A key file: ``variable`` if set (an empty value turns it off), else the file of that
    name in :func:`keys_dir` if it exists (what ``make up`` created), else None."""
    if variable in env:
        raw = env[variable].strip()
        if not raw:
            return None
        path = Path(raw)
        if not path.is_file():
            raise ConfigError(f"{variable}={raw!r}: no such file")
        return path
    candidate = keys_dir(env) / default_name
    return candidate if candidate.is_file() else None


def approver_jwks(env: Mapping[str, str]) -> tuple[str, ...]:
    """``KEEL_APPROVER_JWKS`` (comma-separated files or URLs; empty: none), else the embedded
    default's ``jwks.json`` in :func:`keys_dir` if it exists. Not read here: a source that
    cannot be read fails the runs that need it (``keel.approvers.keys``), not the worker."""
    if "KEEL_APPROVER_JWKS" in env:
        return _list(env, "KEEL_APPROVER_JWKS")
    candidate = keys_dir(env) / JWKS_FILE
    return (str(candidate),) if candidate.is_file() else ()


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def env_number(
    env: Mapping[str, str],
    name: str,
    convert: Callable[[str], N],
    default: D,
    *,
    not_a: str,
    valid: Callable[[N], bool],
    rule: str,
) -> N | D:
    """The number in variable ``name`` (``default`` when unset or blank), or a ConfigError
    naming the variable: ``<name>=<raw> is not <not_a>`` / ``<name>=<raw> <rule>``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {not_a}") from None
    if not valid(value):
        raise ConfigError(f"{name}={raw!r} {rule}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return env_number(
        env,
        name,
        float,
        default,
        not_a="a number",
        valid=lambda value: not value <= 0,
        rule="must be greater than 0",
    )


def parse_mcp_servers(env: Mapping[str, str]) -> dict[str, MCPServerTarget]:
    """Read ``KEEL_MCP_<NAME>=<url>|stdio:<command>`` variables over the built-in defaults.

    ``KEEL_MCP_SUPPORT_DESK=http://host:8201/mcp`` points the ``support_desk`` server
    elsewhere; ``KEEL_MCP_WEATHER=stdio:python weather.py`` adds a stdio server named
    ``weather``; an empty value removes a server.
    """
    raw: dict[str, str] = dict(DEFAULT_MCP_SERVERS)
    for key, value in env.items():
        if key.startswith(MCP_ENV_PREFIX) and key != "KEEL_MCP_READ_TIMEOUT_SECONDS":
            raw[key[len(MCP_ENV_PREFIX) :].lower()] = value.strip()
    servers: dict[str, MCPServerTarget] = {}
    for name, value in raw.items():
        if not value:
            continue
        if value.startswith(("http://", "https://")):
            servers[name] = MCPServerTarget(name=name, url=value)
        elif value.startswith("stdio:"):
            command = tuple(shlex.split(value[len("stdio:") :]))
            if not command:
                raise ConfigError(f"{MCP_ENV_PREFIX}{name.upper()}: 'stdio:' needs a command")
            servers[name] = MCPServerTarget(name=name, command=command)
        else:
            raise ConfigError(
                f"{MCP_ENV_PREFIX}{name.upper()}={value!r}: expected an http(s):// URL"
                " or 'stdio:<command>'"
            )
    return servers
