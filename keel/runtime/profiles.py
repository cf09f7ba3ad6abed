"""Loading agent profiles (TOML under ``profiles/``) with readable validation errors."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from keel.contracts import Profile
from keel.contracts.errors import ProfileError, describe_validation_error, names_hint

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def available_profiles(search_path: Sequence[Path]) -> list[str]:
    """Names of every ``*.toml`` profile on the search path, first occurrence wins."""
    names: list[str] = []
    for directory in search_path:
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                if path.stem not in names:
                    names.append(path.stem)
    return names


def find_profile(name: str, search_path: Sequence[Path]) -> Path:
    """The file of profile ``name``, or a ProfileError that names the closest known ones."""
    if not _NAME.match(name):
        raise ProfileError(
            f"profile name {name!r} is invalid: use lowercase letters, digits, '-' and '_'"
        )
    for directory in search_path:
        candidate = directory / f"{name}.toml"
        if candidate.is_file():
            return candidate
    hint = names_hint(name, available_profiles(search_path), noun="profiles")
    raise ProfileError(f"unknown profile {name!r}; {hint}")


def load_profile_file(path: Path) -> Profile:
    """Parse and validate one profile file; errors name the file and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(describe_validation_error(exc, str(path))) from None
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name: {profile.name!r} must match the file name")
    return profile


def load_profile(name: str, search_path: Sequence[Path]) -> Profile:
    """Find and load profile ``name``."""
    return load_profile_file(find_profile(name, search_path))
