"""What is on disk, read once per poll: the version folders with a fingerprint of their files, the folders that are
not versions, and the config file when it has changed. Plain file-system reads (the repository runs them on a
thread), nothing loaded."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.contract import version_of
from app.model_config import ConfigError, ModelConfig, read_config_file

log = logging.getLogger(__name__)

SAVED_MODEL_FILE = "saved_model.pb"
Fingerprint = tuple[tuple[str, int, int], ...]  # (relative path, size, mtime in ns) of every file, sorted


@dataclass(frozen=True)
class Folder:
    version: int
    fingerprint: Fingerprint
    has_saved_model: bool


@dataclass(frozen=True)
class Scan:
    versions: dict[int, Folder] = field(default_factory=dict)
    not_versions: tuple[str, ...] = ()  # visible folders whose name is not a version number


def fingerprint(folder: Path) -> Fingerprint:
    """Every file's path, size and modification time: a copy still being written changes it between two polls."""
    entries = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            try:
                stat = path.stat()
            except OSError:  # removed while we looked: the next poll sees the folder as it is then
                continue
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def scan(model_dir: Path) -> Scan:
    """The model folder's contents. Hidden folders (an export's `.staging-*`) are neither versions nor refused."""
    try:
        entries = [entry for entry in model_dir.iterdir() if entry.is_dir()]
    except OSError:  # no folder (yet, or any more): no versions
        return Scan()
    versions, others = {}, []
    for entry in entries:
        number = version_of(entry.name)
        if number is not None:
            versions[number] = Folder(number, fingerprint(entry), has_saved_model(entry))
        elif not entry.name.startswith("."):
            others.append(entry.name)
    return Scan(versions, tuple(sorted(others)))


def has_saved_model(folder: Path) -> bool:
    """Whether the folder holds its SavedModel's file. A folder that cannot be read counts as holding it: loading
    it then fails with the reason (such as "Permission denied"), which the status shows, and one such folder
    does not stop the scan of the others."""
    try:
        return (folder / SAVED_MODEL_FILE).is_file()
    except OSError:
        return True


class ConfigWatch:
    """The config file, re-read when its size or modification time has changed and then stayed the same for one
    poll (an editor or `echo >` writes in steps; a file read half-written would apply a config nobody wrote). The
    first read, at start-up, applies at once. A file that cannot be used keeps the previous config in force; its
    error is kept for the status (and logged once)."""

    def __init__(self, path: Path | None, fallback: ModelConfig) -> None:
        self.path = path
        self.config = fallback
        self.error: str | None = None
        self._stamp: tuple[int, int] | None = None  # of the content last applied or refused
        self._seen: tuple[int, int] | None = None  # of the content seen at the previous read

    def read(self) -> ModelConfig:
        if self.path is None:
            return self.config
        try:
            stat = self.path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError as error:
            stamp = (-1, -1)
            self._fail(stamp, f"{self.path}: cannot read ({error.strerror or error})")
            return self.config
        settling = self._stamp is not None and stamp != self._seen
        self._seen = stamp
        if stamp == self._stamp or settling:
            return self.config
        try:
            config = read_config_file(self.path)
        except ConfigError as error:
            self._fail(stamp, str(error))
            return self.config
        self._stamp, self.config, self.error = stamp, config, None
        log.info("model config %s: version policy '%s', labels %s", self.path, config.policy, config.labels or "none")
        return config

    def _fail(self, stamp: tuple[int, int], message: str) -> None:
        if stamp != self._stamp:
            log.warning("model config not applied, the previous one stays in force: %s", message)
        self._stamp, self.error = stamp, message
