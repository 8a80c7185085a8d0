"""The versions on disk and in memory: TensorFlow Serving's manager in miniature.

Every poll reads the model folder and the config file (app.model_folder) and applies the version policy. A version
the policy wants is loaded beside those serving, on the loader thread (never on the event loop), warmed up and
verified (app.verification); only then does it take traffic, by an atomic swap of the routing table (`Routes`).
Versions the policy no longer wants are retired: out of the routing table at once, unloaded after their last
request. The last good version is never unloaded, even when its folder is gone.

A folder is loaded once it is complete: it has a saved_model.pb and its files have not changed since the previous
poll (the first poll, and a poll asked for by SIGHUP, trusts what it finds). A version that fails is logged once,
counted and shown in the status; it is tried again only when its folder changes. A version serves what it loaded: a
change to its folder while it is loaded (a file touched, rewritten or made unreadable) does not take it out of
service. Routers ask `route()` for the version a request names (or the default) and hold it, as a context manager,
for the life of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.batching import BatchingEngine
from app.gc_policy import collect_retired
from app.model import DigitModel, ModelLoadError, ModelNotFoundError
from app.model_config import ModelConfig
from app.model_folder import ConfigWatch, Fingerprint, Folder, Scan, scan
from app.pacing import paced
from app.settings import Settings
from app.verification import verify
from app.versions import (
    AVAILABLE,
    END,
    LOADING,
    START,
    UNLOADING,
    LoadedVersion,
    NoVersionReadyError,
    Routes,
    VersionState,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    fingerprint: Fingerprint
    error: ModelLoadError


EngineFactory = Callable[[DigitModel], BatchingEngine]
Listener = Callable[[VersionState, LoadedVersion | None], None]


class Repository:
    def __init__(self, settings: Settings, make_engine: EngineFactory) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.model_dir = settings.model_dir
        self.make_engine = make_engine
        self.config = ConfigWatch(settings.model_config_file, settings.model_config_from_env())
        self.routes = Routes()
        self.listeners: list[Listener] = []  # told of every state change, on the event loop (e.g. metrics)
        self.polls = 0
        self.not_versions: tuple[str, ...] = ()
        self.label_errors: dict[str, str] = {}
        self._loaded: dict[int, LoadedVersion] = {}
        self._states: dict[int, VersionState] = {}
        self._failures: dict[int, Failure] = {}
        self._previous = Scan()
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        self._retiring: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._poll_now = asyncio.Event()

    # ------------------------------------------------------------------ what routers call

    def route(self, version: int | str | None = None, label: str | None = None) -> LoadedVersion:
        """The loaded version a request names (by number or label), else the default. Hold it with `with`."""
        routes = self.routes
        if version is None and label is None:
            if routes.default is None:
                raise NoVersionReadyError(f"no version of model '{self.name}' serves yet: {self.readiness()[1]}")
            return routes.default
        if label is not None:
            found = routes.labels.get(label)
            if found is None:
                raise ModelNotFoundError(f"label '{label}' of model '{self.name}' is not assigned to a loaded version")
            return found
        number = version if isinstance(version, int) else int(version) if version and version.isdecimal() else None
        found = routes.versions.get(number) if number is not None else None
        if found is None:
            loaded = sorted(routes.versions)
            raise ModelNotFoundError(f"version '{version}' of model '{self.name}' is not loaded; loaded: {loaded}")
        return found

    def readiness(self, version: str | None = None) -> tuple[str, str]:
        """('ready', ...) once a verified version serves; else 'loading' or 'unavailable', with why. Of one version
        named in a URL: 'ready' when AVAILABLE, else its state (in lower case) and its error."""
        if version is not None:
            state = self.state_of(version)
            if state is None:
                raise ModelNotFoundError(f"version '{version}' of model '{self.name}' is unknown")
            if state.state == AVAILABLE:
                return "ready", ""
            return state.state.lower(), state.error_message or state.state
        if self.routes.default is not None:
            return "ready", f"version {self.routes.default.version} serves"
        if self.polls == 0 or any(s.state == LOADING for s in self._states.values()):
            return "loading", "loading the model"
        failed = [f"version {v}: {s.error_message}" for v, s in sorted(self._states.items()) if s.state == END]
        if failed:
            return "unavailable", "no version could be loaded; " + "; ".join(failed)
        return "unavailable", f"no complete version under {self.model_dir}/ (expected <N>/saved_model.pb)"

    def states(self) -> list[VersionState]:
        return [self._states[v] for v in sorted(self._states)]

    def state_of(self, version: str) -> VersionState | None:
        """The state of a version named in a URL; None if the repository does not know it."""
        return self._states.get(int(version)) if version.isdecimal() else None

    @property
    def on_disk(self) -> list[int]:
        """The version folders the last poll found."""
        return sorted(self._previous.versions)

    @property
    def without_folder(self) -> list[int]:
        """Loaded versions whose folder the last poll did not find: they serve from memory."""
        return sorted(set(self._loaded) - set(self._previous.versions))

    @property
    def pending(self) -> int:
        return sum(loaded.engine.pending for loaded in self._loaded.values())

    # ------------------------------------------------------------------ the poll loop

    def start(self, prepare: Callable[[], None] = lambda: None) -> None:
        """Poll in the background; `prepare` runs on the loader thread first (e.g. sizing TensorFlow's threads)."""
        self._task = asyncio.get_running_loop().create_task(self._run(prepare), name="model-repository")

    async def _run(self, prepare: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._loader, prepare)
        seconds = self.settings.model_poll_seconds
        last_reason = ""
        asked = True  # the first poll, as a poll on demand, trusts the folders it finds
        while True:
            try:
                await self.poll(trusted=asked)
            except Exception:  # a surprise in one poll must not end the polling
                log.exception("model repository poll failed")
            status, reason = self.readiness()
            if status != "ready" and reason != last_reason:
                log.warning("model %s not ready: %s", self.name, reason)
            last_reason = reason if status != "ready" else ""
            asked = False
            with contextlib.suppress(TimeoutError):  # no poll interval (0): only a poll on demand
                asked = await asyncio.wait_for(self._poll_now.wait(), seconds if seconds > 0 else None)
            self._poll_now.clear()

    def poll_now(self) -> None:
        """Look at the model folder and the config file at once instead of at the next poll (on the event loop). The
        operator asking says the folders are complete: as at start-up, they load without waiting to settle."""
        log.info("model %s: looking at the model folder and the config file now", self.name)
        self._poll_now.set()

    async def poll(self, trusted: bool = False) -> None:
        """One look at the disk; `trusted` loads complete folders at once instead of after a poll unchanged."""
        loop = asyncio.get_running_loop()
        config = await loop.run_in_executor(self._loader, self.config.read)
        found = await loop.run_in_executor(self._loader, scan, self.model_dir)
        self._note_not_versions(found.not_versions)
        candidates, waiting = self._sort_folders(found, trusted)
        self._previous = found
        self.polls += 1
        wanted = config.policy.select(candidates)
        self._show_waiting(config, candidates, waiting)
        for version in sorted(wanted - set(self._loaded), reverse=True):
            await self._load(version, candidates[version])
        self._retire_unwanted(wanted, set(found.versions))
        self._publish(config)

    def _sort_folders(self, found: Scan, trusted: bool) -> tuple[dict[int, Folder], dict[int, str]]:
        """Complete, settled folders that have not failed as they are; and those still being written, with why."""
        ready, waiting = {}, {}
        for version, folder in found.versions.items():
            failure = self._failures.get(version)
            if failure is not None and failure.fingerprint == folder.fingerprint:
                continue
            self._failures.pop(version, None)
            before = self._previous.versions.get(version)
            settled = trusted or (before is not None and before.fingerprint == folder.fingerprint)
            if (folder.has_saved_model and settled) or version in self._loaded:  # a loaded one serves from memory
                ready[version] = folder
            else:
                waiting[version] = "still changing" if folder.has_saved_model else "no saved_model.pb yet"
        for version in set(self._states) - set(found.versions) - set(self._loaded):
            if self._states[version].state != UNLOADING:
                self._forget(version)
                self._failures.pop(version, None)
        return ready, waiting

    def _show_waiting(self, config: ModelConfig, ready: dict[int, Folder], waiting: dict[int, str]) -> None:
        """START for a folder still being written that the policy would serve once complete; nothing for others."""
        shown = {version for version in waiting if version in config.policy.select([*ready, version])}
        for version in shown:
            message = f"waiting for the folder to be complete ({waiting[version]})"
            self._set(VersionState(version, START, "OK", message))
        for version, state in list(self._states.items()):
            if state.state == START and version not in shown:
                self._forget(version)

    async def _load(self, version: int, folder: Folder) -> None:
        self._set(VersionState(version, LOADING))
        try:
            model, verify_seconds = await asyncio.get_running_loop().run_in_executor(
                self._loader, self._load_verified, version
            )
        except Exception as error:  # whatever a damaged or foreign version raises, it is refused, not retried
            if not isinstance(error, ModelLoadError):
                error = ModelLoadError(f"cannot load or verify it: {type(error).__name__}: {error}")
            self._failures[version] = Failure(folder.fingerprint, error)
            log.warning("model %s version %d refused (%s): %s", self.name, version, error.reason, error)
            self._set(VersionState(version, END, error.code, str(error), error.reason))
            return
        loaded = LoadedVersion(model, self.make_engine(model))
        self._loaded[version] = loaded
        self._set(VersionState(version, AVAILABLE), loaded)
        self._publish(self.config.config)  # serves at once, before any other version loads
        log.info(
            "model %s version %d verified and serving (load and warm-up %.3f s, verify %.3f s)",
            self.name,
            version,
            model.info.load_seconds,
            verify_seconds,
        )

    def _load_verified(self, version: int) -> tuple[DigitModel, float]:
        """On the loader thread: paced while another version serves (app.pacing), at full speed before."""
        share = self.settings.model_load_share if self.routes.default is not None else 1.0
        with paced(share):
            model = DigitModel(self.model_dir, self.name, version)
            started = time.perf_counter()
            verify(model)
            verify_seconds = time.perf_counter() - started
        return model, verify_seconds

    def _retire_unwanted(self, wanted: set[int], on_disk: set[int]) -> None:
        keep = wanted & set(self._loaded)
        if not keep:  # nothing the policy wants is loaded: the default goes on serving (the last good version)
            default = self.routes.default
            keep = {default.version} if default is not None else set(self._loaded)
        for version in sorted(set(self._loaded) - keep):
            loaded = self._loaded.pop(version)
            self._set(VersionState(version, UNLOADING), loaded)
            task = asyncio.get_running_loop().create_task(self._unload(loaded, version in on_disk))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _unload(self, loaded: LoadedVersion, on_disk: bool) -> None:
        version = loaded.version
        await loaded.retire()
        del loaded  # the last reference but the requests' own, which have all finished
        if version not in self._loaded:  # not loaded again meanwhile
            self._forget(version)
        await asyncio.get_running_loop().run_in_executor(self._loader, collect_retired)
        log.info("model %s version %d unloaded", self.name, version)

    def _publish(self, config: ModelConfig) -> None:
        """Swap in the routing table for what is loaded now: the default is the newest version the policy wants
        (else the newest loaded), labels point only at loaded versions."""
        versions = dict(self._loaded)
        wanted = config.policy.select(versions)
        default_version = max(wanted or versions, default=None)
        labels, errors = {}, {}
        for name, version in config.labels.items():
            if version in versions:
                labels[name] = versions[version]
            else:
                errors[name] = f"label '{name}' points at version {version}, which is not loaded"
        for name, message in errors.items():
            if self.label_errors.get(name) != message:
                log.warning("model %s: %s; the label is not served", self.name, message)
        self.label_errors = errors
        default = versions[default_version] if default_version is not None else None
        self.routes = Routes(default, versions, labels)

    def _note_not_versions(self, names: tuple[str, ...]) -> None:
        for name in set(names) - set(self.not_versions):
            log.warning("model %s: folder '%s' ignored: a version folder is named by a number", self.name, name)
        self.not_versions = names

    def _set(self, state: VersionState, loaded: LoadedVersion | None = None) -> None:
        if self._states.get(state.version) == state:
            return
        self._states[state.version] = state
        for listener in self.listeners:
            listener(state, loaded)

    def _forget(self, version: int) -> None:
        """The version is neither loaded nor on disk: out of the status (listeners hear END without an error)."""
        self._states.pop(version, None)
        for listener in self.listeners:
            listener(VersionState(version, END), None)

    async def close(self) -> None:
        """Stop polling, then finish every request of every version and stop their engines."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        loaded = list(self._loaded.values())
        self._loaded.clear()
        await asyncio.gather(*(version.retire() for version in loaded), *self._retiring)
        self._loader.shutdown(wait=False)
