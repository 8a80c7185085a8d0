"""Which versions to serve and what labels name them: TensorFlow Serving's version policy and version labels.

One grammar for the policy, whether it comes from the environment or from the config file:
`latest` (the newest version), `latest N` (the N newest), `all`, `specific [3, 4]`. Labels map a name to a version
number (`stable = 3`). The config file is TOML (MODEL_CONFIG_FILE), read by the standard library:

    version_policy = "latest 2"
    [labels]
    stable = 3
    canary = 4
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLICY_GRAMMAR = "'latest', 'latest N', 'all' or 'specific [3, 4]'"
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_LATEST = re.compile(r"latest(?:\s+(\d+))?")
_SPECIFIC = re.compile(r"specific\s*\[\s*(\d+(?:\s*,\s*\d+)*)?\s*,?\s*\]")


class ConfigError(ValueError):
    """A policy, label or config file that cannot be used; the message is one line saying why."""


@dataclass(frozen=True)
class VersionPolicy:
    """`kind` is 'latest', 'all' or 'specific'; `count` the N of 'latest N'; `versions` those of 'specific'."""

    kind: str = "latest"
    count: int = 1
    versions: frozenset[int] = frozenset()

    def select(self, present: Iterable[int]) -> set[int]:
        """The versions to serve among those `present` (complete on disk, not failed)."""
        ordered = sorted(set(present), reverse=True)
        if self.kind == "all":
            return set(ordered)
        if self.kind == "specific":
            return set(self.versions) & set(ordered)
        return set(ordered[: self.count])

    def __str__(self) -> str:
        if self.kind == "specific":
            return f"specific [{', '.join(map(str, sorted(self.versions)))}]"
        return f"latest {self.count}" if self.kind == "latest" and self.count > 1 else self.kind


def parse_policy(text: str) -> VersionPolicy:
    words = " ".join(text.strip().lower().split())
    if words == "all":
        return VersionPolicy("all")
    if match := _LATEST.fullmatch(words):
        count = int(match.group(1) or 1)
        if count < 1:
            raise ConfigError(f"version policy '{text}': 'latest N' needs N >= 1")
        return VersionPolicy("latest", count)
    if match := _SPECIFIC.fullmatch(words):
        numbers = {int(n) for n in re.findall(r"\d+", match.group(1) or "")}
        if not numbers or 0 in numbers:
            raise ConfigError(f"version policy '{text}': 'specific' needs one or more versions >= 1")
        return VersionPolicy("specific", versions=frozenset(numbers))
    raise ConfigError(f"version policy '{text}' not understood; expected {POLICY_GRAMMAR}")


def check_labels(labels: Mapping[str, Any]) -> dict[str, int]:
    checked = {}
    for name, version in labels.items():
        if not LABEL_NAME.fullmatch(name):
            raise ConfigError(f"label '{name}': a label is letters, digits, '_' or '-', starting with a letter")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(f"label '{name}' = {version!r}: a label names a version number >= 1")
        checked[name] = version
    return checked


def parse_labels(text: str) -> dict[str, int]:
    """`stable=3,canary=4` (the environment's form) -> {'stable': 3, 'canary': 4}."""
    labels: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, version = item.partition("=")
        if not equals or not version.strip().isdecimal():
            raise ConfigError(f"label '{item}': expected name=version, e.g. stable=3")
        labels[name.strip()] = int(version)
    return check_labels(labels)


@dataclass(frozen=True)
class ModelConfig:
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = field(default_factory=dict)


def read_config_file(path: Path) -> ModelConfig:
    """The config file's policy and labels; ConfigError (one line) when it is unreadable or wrong."""
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = set(document) - {"version_policy", "labels"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; expected 'version_policy' and [labels]")
    policy = document.get("version_policy", "latest")
    labels = document.get("labels", {})
    if not isinstance(policy, str):
        raise ConfigError(f"{path}: version_policy must be a string: {POLICY_GRAMMAR}")
    if not isinstance(labels, dict):
        raise ConfigError(f"{path}: labels must be a table, e.g. [labels] then stable = 3")
    try:
        return ModelConfig(parse_policy(policy), check_labels(labels))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
