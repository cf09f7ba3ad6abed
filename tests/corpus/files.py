"""Cases as files: a simulator scenario (TOML) and a profile per case, under a temp dir.

Every tool call is written as ``arguments_raw`` (the JSON text exactly as it goes on the
wire: the simulator sends ``arguments_raw`` verbatim and serializes ``arguments`` to the same
text), so arguments TOML cannot hold — null, huge integers, NaN — need no special form.
Each scenario is loaded with the simulator's own loader before the stack starts; one it
refuses is left out and its case fails alone with the loader's message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator.scenarios import ScenarioError, load_scenario
from tests.corpus import profiles
from tests.corpus.case import Case


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(f"cannot write {value!r} to a scenario")


def wire_call(spec: dict[str, Any]) -> dict[str, Any]:
    """A case's call as the simulator's ToolCallSpec: arguments always as raw JSON text."""
    wired = {k: v for k, v in spec.items() if k != "arguments"}
    if "arguments" in spec:
        wired["arguments_raw"] = json.dumps(spec["arguments"], ensure_ascii=False)
    return wired


def scenario_text(case: Case) -> str:
    lines = [f"description = {toml_string(f'corpus case {case.name} ({case.klass})')}"]
    lines.append(f"after_last = {toml_string(case.after_last)}")
    for spec in case.turns:
        lines.append("[[turns]]")
        for key, value in spec.items():
            if key == "tool_calls":
                value = [wire_call(c) for c in value]
                if not value:
                    continue
            if key == "content" and not value:
                continue
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_cases(cases: list[Case], root: Path) -> tuple[Path, Path, dict[str, str]]:
    """Scenario and profile directories for ``cases``; the scenario errors by case name."""
    scenarios, profile_dir = root / "scenarios", root / "profiles"
    scenarios.mkdir(parents=True, exist_ok=True)
    profile_dir.mkdir(parents=True, exist_ok=True)
    # The simulator refuses an empty directory; every case may be a start-failure case.
    (scenarios / "corpus_idle.toml").write_text('[[turns]]\ncontent = "idle"\n')
    errors: dict[str, str] = {}
    for case in cases:
        if not case.turns:
            continue
        path = scenarios / f"{case.slug}.toml"
        path.write_text(scenario_text(case), encoding="utf-8")
        try:
            load_scenario(path)
        except ScenarioError as exc:
            path.unlink()
            errors[case.name] = f"the simulator cannot play this case: {exc}"
            continue
        profile = profiles.render(case.profile, case.slug)
        (profile_dir / f"{case.slug}.toml").write_text(profile, encoding="utf-8")
    return scenarios, profile_dir, errors
