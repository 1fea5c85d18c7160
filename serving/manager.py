"""Which model versions are loaded: polling the repository, loading and unloading, version states.

``ModelManager`` follows TensorFlow Serving's ``ServerCore`` with the availability-preserving
policy: a new aspired version is loaded (and warmed up) and becomes AVAILABLE *before* a version
that is no longer aspired is unloaded, and a version is only unloaded when another aspired
version of the model is AVAILABLE (or none is aspired any more). Unloading removes a version from
the routing table; requests that already hold it (including queued batches) finish on it.

States per version, as ``GetModelStatus`` reports them: START -> LOADING -> AVAILABLE ->
UNLOADING -> END; a failed load ends in END with the error, and is retried on later polls up to
``max_num_load_retries`` times.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import ServingError
from serving.repository import aspired_versions, list_versions
from serving.servable import Servable
from serving.warmup import run_warmup

__all__ = ["ModelManager", "State", "VersionStatus"]

log = logging.getLogger(__name__)

State = get_model_status_pb2.ModelVersionStatus.State


@dataclass(frozen=True)
class VersionStatus:
    """One version's state; ``error`` is the failed load's message (empty when OK)."""

    version: int
    state: int  # a State value
    error: str = ""
    error_code: int = 0  # grpc status code number of the failed load (0 = OK)


@dataclass(frozen=True)
class _Routing:
    """What requests read, replaced whole on every change (readers take no lock)."""

    servables: dict  # model name -> {version: Servable}
    labels: dict  # model name -> {label: version}


class ModelManager:
    """Loads the versions the config's version policies ask for and routes ModelSpecs to them.

    ``on_change(model_name, available_versions)`` runs after every load or unload.
    """

    def __init__(
        self,
        config: model_server_config_pb2.ModelServerConfig,
        *,
        enable_warmup: bool = True,
        max_num_load_retries: int = 5,
        on_change: Callable[[str, list[int]], None] | None = None,
        servable_factory: Callable[[str, int, str], Servable] = Servable,
    ) -> None:
        self._config = config
        self._enable_warmup = enable_warmup
        self._max_retries = max_num_load_retries
        self._on_change = on_change
        self._factory = servable_factory
        self._routing = _Routing({}, {})
        self._states: dict[str, dict[int, VersionStatus]] = {}
        self._failures: dict[tuple[str, int], int] = {}
        self._warned_empty: set[str] = set()
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- routing ---------------------------------------------------------------------------
    def servable(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The servable a ModelSpec asks for; raises ServingError with TF Serving's wording."""
        routing = self._routing
        name = model_spec.name
        versions = routing.servables.get(name, {})
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version_label":
            label = model_spec.version_label
            version = routing.labels.get(name, {}).get(label)
            if version is None:
                raise ServingError.invalid_argument(f"Unrecognized servable version label: {label}")
        elif choice == "version":
            version = model_spec.version.value
        else:
            if not versions:
                raise ServingError.not_found(f"Servable not found for request: Latest({name})")
            return versions[max(versions)]
        servable = versions.get(version)
        if servable is None:
            raise ServingError.not_found(f"Servable not found for request: Specific({name}, {version})")
        return servable

    def status(self, model_spec: model_pb2.ModelSpec) -> list[VersionStatus]:
        """GetModelStatus: every version seen (newest first), or the one asked for."""
        name = model_spec.name
        states = self._states.get(name, {})  # replaced whole on change: safe without a lock
        if model_spec.HasField("version"):
            version = model_spec.version.value
            if version not in states:
                raise ServingError.not_found(f"Could not find version {version} of model {name}")
            return [states[version]]
        if not states:
            raise ServingError.not_found(f"Could not find any versions of model {name}")
        return [states[v] for v in sorted(states, reverse=True)]

    def available_versions(self, name: str) -> list[int]:
        return sorted(self._routing.servables.get(name, {}))

    def model_names(self) -> list[str]:
        return [m.name for m in self._config.model_config_list.config]

    def all_models_available(self) -> bool:
        """True when every configured model has at least one AVAILABLE version."""
        return all(self._routing.servables.get(n) for n in self.model_names())

    @property
    def config(self) -> model_server_config_pb2.ModelServerConfig:
        return self._config

    # -- changes ---------------------------------------------------------------------------
    def apply_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Switch to a new ModelServerConfig (a reload) and sync the repository at once."""
        with self._sync_lock:
            self._config = config
        self.poll()

    def poll(self) -> None:
        """One pass: load aspired versions, then unload what is no longer aspired."""
        with self._sync_lock:
            config = self._config
            configured = {m.name: m for m in config.model_config_list.config}
            for model in configured.values():
                try:
                    self._sync_model(model)
                except Exception:  # noqa: BLE001 - one broken model must not stop the others
                    log.exception("syncing model %s failed", model.name)
            for name in list(self._routing.servables):
                if name not in configured:
                    log.info("model %s left the config; unloading it", name)
                    for version in sorted(self._routing.servables[name]):
                        self._unload(name, version)
            self._publish(labels=self._resolve_labels(configured))

    def _resolve_labels(self, configured: dict) -> dict:
        """Labels may only point at AVAILABLE versions (TF Serving refuses the rest); a label
        that cannot move yet keeps its previous version and is retried on the next poll."""
        labels = {}
        for name, model in configured.items():
            previous = self._routing.labels.get(name, {})
            available = self._routing.servables.get(name, {})
            resolved = {}
            for label, version in model.version_labels.items():
                if version in available:
                    resolved[label] = version
                    continue
                if label in previous:
                    resolved[label] = previous[label]
                log.error(
                    "Request to assign label to version %d of model %s, which is not currently "
                    "available for inference", version, name,
                )
            labels[name] = resolved
        return labels

    def _sync_model(self, model: model_server_config_pb2.ModelConfig) -> None:
        name = model.name
        on_disk = list_versions(model.base_path)
        if not on_disk:
            if name not in self._warned_empty:  # once per model until versions appear
                self._warned_empty.add(name)
                log.warning(
                    "No versions of servable %s found under base path %s; waiting for an integer "
                    "version directory", name, model.base_path,
                )
        else:
            self._warned_empty.discard(name)
        aspired = aspired_versions(on_disk, model.model_version_policy)
        loaded = self._routing.servables.get(name, {})
        for version in sorted(aspired):
            if version in loaded:
                continue
            if self._failures.get((name, version), 0) > self._max_retries:
                continue
            self._load(name, version, str(on_disk[version]))
        loaded = self._routing.servables.get(name, {})
        if aspired and not any(v in loaded for v in aspired):
            return  # availability-preserving: keep the old versions until a new one is up
        for version in sorted(loaded):
            if version not in aspired:
                self._unload(name, version)

    def _load(self, name: str, version: int, path: str) -> None:
        self._set_state(name, version, State.LOADING)
        log.info("Loading servable: {name: %s version: %d} from %s", name, version, path)
        try:
            servable = self._factory(name, version, path)
            if self._enable_warmup:
                run_warmup(servable)
        except Exception as exc:  # noqa: BLE001 - any load failure ends this version
            attempts = self._failures.get((name, version), 0) + 1
            self._failures[(name, version)] = attempts
            message = getattr(exc, "message", None) or str(exc)
            code = exc.code.value[0] if isinstance(exc, ServingError) else 2  # UNKNOWN
            log.error(
                "Loading servable: {name: %s version: %d} failed (attempt %d): %s",
                name, version, attempts, message,
            )
            self._set_state(name, version, State.END, message, code)
            return
        self._failures.pop((name, version), None)
        servables = dict(self._routing.servables)
        servables[name] = {**servables.get(name, {}), version: servable}
        self._publish(servables=servables)
        self._set_state(name, version, State.AVAILABLE)
        log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
        self._changed(name)

    def _unload(self, name: str, version: int) -> None:
        self._set_state(name, version, State.UNLOADING)
        servables = dict(self._routing.servables)
        remaining = {v: s for v, s in servables.get(name, {}).items() if v != version}
        if remaining:
            servables[name] = remaining
        else:
            servables.pop(name, None)
        self._publish(servables=servables)
        self._set_state(name, version, State.END)
        log.info("Unloaded servable version {name: %s version: %d}", name, version)
        self._changed(name)

    def _publish(self, servables: dict | None = None, labels: dict | None = None) -> None:
        current = self._routing
        self._routing = _Routing(
            servables if servables is not None else current.servables,
            labels if labels is not None else current.labels,
        )

    def _set_state(
        self, name: str, version: int, state: int, error: str = "", error_code: int = 0
    ) -> None:
        states = dict(self._states.get(name, {}))
        states[version] = VersionStatus(version, state, error, error_code)
        self._states = {**self._states, name: states}

    def _changed(self, name: str) -> None:
        if self._on_change is not None:
            try:
                self._on_change(name, self.available_versions(name))
            except Exception:  # noqa: BLE001 - metrics must never break loading
                log.exception("on_change callback failed")

    # -- polling thread --------------------------------------------------------------------
    def start_polling(self, interval_s: float) -> None:
        """Poll the file system every ``interval_s`` seconds (TF Serving: <= 0 polls only once)."""
        if interval_s <= 0 or self._poller is not None:
            return
        self._poller = threading.Thread(
            target=self._poll_loop, args=(interval_s,), name="model-poller", daemon=True
        )
        self._poller.start()

    def _poll_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.poll()

    def close(self) -> None:
        """Stop polling and unload every version."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
        with self._sync_lock:
            for name in list(self._routing.servables):
                for version in sorted(self._routing.servables[name]):
                    self._unload(name, version)
