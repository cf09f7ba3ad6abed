"""Profiles, environment configuration and per-run limits: readable errors naming the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keel.contracts import LimitOverrides, Limits
from keel.contracts.errors import ConfigError, ProfileError
from keel.contracts.limits import LimitError, effective_limits
from keel.runtime.config import DEFAULT_MCP_SERVERS, Settings, parse_mcp_servers
from keel.runtime.profiles import available_profiles, load_profile
from tests.helpers import REPO

GOOD = """
system_prompt = "You help."
[model]
name = "sim/quick_answer"
price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
[[servers]]
name = "support_desk"
tools = ["get_order"]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_bundled_support_profile_loads() -> None:
    profile = load_profile("support", [REPO / "profiles"])
    assert profile.model.name == "sim/actor"
    assert [s.name for s in profile.servers] == ["support_desk", "knowledge"]
    assert profile.limits.max_steps == 8


def test_every_test_profile_loads() -> None:
    path = [REPO / "tests" / "profiles"]
    names = available_profiles(path)
    assert "quick" in names and "slow" in names
    for name in names:
        assert load_profile(name, path).name == name


def test_defaults_fill_unset_fields(tmp_path: Path) -> None:
    write(tmp_path, "mini", GOOD)
    profile = load_profile("mini", [tmp_path])
    assert profile.name == "mini"
    assert profile.limits == Limits()
    assert profile.model.base_url == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace('name = "sim/quick_answer"', ""), "model.name: Field required"),
        (GOOD + "\n[limits]\nmax_steps = 0\n", "limits.max_steps: Input should be greater"),
        (GOOD + "\n[limits]\nmax_stpes = 3\n", "limits.max_stpes: Extra inputs are not permitted"),
        (GOOD.replace("[model]", "[model]\ntemperature = 'hot'"), "model.temperature"),
        (GOOD + '[[servers]]\nname = "support_desk"\n', "server listed more than once"),
        ("system_prompt = 'x'\n[model\n", "invalid TOML"),
    ],
)
def test_invalid_profile_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, "broken", text)
    with pytest.raises(ProfileError) as info:
        load_profile("broken", [tmp_path])
    assert "broken.toml" in str(info.value)
    assert expected in str(info.value)


def test_unknown_profile_lists_available_and_suggests() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("suport", [REPO / "profiles"])
    assert "unknown profile 'suport'" in str(info.value)
    assert "did you mean 'support'" in str(info.value)


def test_unknown_profile_among_many_names_only_the_closest_few(tmp_path: Path) -> None:
    for i in range(800):
        write(tmp_path, f"team-{i:03d}-agent", GOOD)
    write(tmp_path, "support", GOOD)
    write(tmp_path, "support-eu", GOOD)

    with pytest.raises(ProfileError) as info:
        load_profile("suport", [tmp_path])
    message = str(info.value)
    assert message.startswith("unknown profile 'suport'; closest of 802 profiles: support")
    assert "did you mean 'support'" in message
    assert "team-" not in message
    assert len(message) < 300

    with pytest.raises(ProfileError) as info:
        load_profile("zzz", [tmp_path])
    assert "none of the 802 profiles is close" in str(info.value)
    assert len(str(info.value)) < 300


def test_profile_name_must_match_file(tmp_path: Path) -> None:
    write(tmp_path, "one", 'name = "two"\n' + GOOD)
    with pytest.raises(ProfileError, match="must match the file name"):
        load_profile("one", [tmp_path])


def test_path_traversal_in_profile_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="invalid"):
        load_profile("../etc/passwd", [tmp_path])


def test_mcp_servers_from_environment() -> None:
    servers = parse_mcp_servers(
        {
            "KEEL_MCP_SUPPORT_DESK": "http://desk:9000/mcp",
            "KEEL_MCP_WEATHER": "stdio:python -m weather --flag 'a b'",
            "KEEL_MCP_KNOWLEDGE": "",
        }
    )
    assert servers["support_desk"].url == "http://desk:9000/mcp"
    assert servers["weather"].command == ("python", "-m", "weather", "--flag", "a b")
    assert servers["weather"].transport == "stdio"
    assert "knowledge" not in servers


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.task_queue == "agents"
    assert {n: t.url for n, t in settings.mcp_servers.items()} == DEFAULT_MCP_SERVERS


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KEEL_MCP_DESK": "ftp://x"}, "KEEL_MCP_DESK='ftp://x': expected an http(s):// URL"),
        ({"KEEL_MCP_DESK": "stdio:"}, "needs a command"),
        ({"KEEL_MCP_READ_TIMEOUT_SECONDS": "soon"}, "is not a number"),
    ],
)
def test_bad_environment_is_a_config_error(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env(env)


def test_limits_may_be_lowered_not_raised() -> None:
    ceiling = Limits(max_steps=8, max_tool_calls=20)
    assert effective_limits(ceiling, None) == ceiling
    lowered = effective_limits(ceiling, LimitOverrides(max_steps=3))
    assert lowered == Limits(max_steps=3, max_tool_calls=20)
    with pytest.raises(LimitError, match=r"limits\.max_tool_calls=21 exceeds"):
        effective_limits(ceiling, LimitOverrides(max_tool_calls=21))


def test_worker_startup_check_reports_missing_key_and_server(tmp_path: Path) -> None:
    from worker import check_profiles

    write(tmp_path, "keyed", GOOD.replace("[model]", '[model]\napi_key_env = "KEEL_TEST_NO_KEY"'))
    write(tmp_path, "elsewhere", GOOD.replace('"support_desk"', '"crm"'))
    problems = check_profiles(Settings.from_env({"KEEL_PROFILES_PATH": str(tmp_path)}))
    assert problems == [
        "profile 'elsewhere': MCP server 'crm' is not configured (set KEEL_MCP_CRM)",
        "profile 'keyed': environment variable KEEL_TEST_NO_KEY is not set",
    ]


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ('error_pattern = "^Error: ("\n', "servers.0.error_pattern"),
        ('[tools.get_order]\nerror_pattern = "[unclosed"\n', "tools.get_order.error_pattern"),
    ],
)
def test_invalid_error_pattern_is_one_readable_line(
    tmp_path: Path, section: str, where: str
) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("p", [write(tmp_path, "p", GOOD + section).parent])
    [line] = str(info.value).splitlines()
    assert f"p.toml: {where}: Value error, invalid regular expression" in line


def test_error_patterns_are_kept(tmp_path: Path) -> None:
    text = GOOD + 'error_pattern = "^Error: "\n[tools.get_order]\nerror_pattern = "^Oops"\n'
    profile = load_profile("p", [write(tmp_path, "p", text).parent])
    assert profile.servers[0].error_pattern == "^Error: "
    assert profile.tools["get_order"].error_pattern == "^Oops"
