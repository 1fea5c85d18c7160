"""The model server process: TensorFlow Serving's flags, gRPC API, health, metrics, shutdown.

``ModelServer`` wires a ModelManager (repository polling), an optional BatchScheduler, the gRPC
servicers, the ``grpc.health.v1.Health`` service and a Prometheus HTTP endpoint. Like
``tensorflow_model_server``, it loads the configured models before it opens the gRPC port; it
then polls the model base paths every ``--file_system_poll_wait_seconds`` and the config file
every ``--model_config_file_poll_wait_seconds``. SIGTERM/SIGINT stop it gracefully: health turns
NOT_SERVING, new calls are refused, calls in flight (and queued batches) finish.

Run it as ``lens serve ...`` or ``python -m serving.server ...``.
"""

import argparse
import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from lens.errors import ConfigError
from serving.batching import BatchScheduler
from serving.config import (
    BatchingParameters,
    load_batching_parameters,
    load_model_server_config,
    load_monitoring_config,
    normalize_config,
    parse_prefix_map,
    single_model_config,
)
from serving.manager import ModelManager
from serving.metrics import ServerMetrics
from serving.options import ServerOptions, add_flags, options_from_args
from serving.service import ModelService, PredictionService

__all__ = ["ModelServer", "ServerOptions", "add_flags", "main", "options_from_args", "serve"]

log = logging.getLogger(__name__)

SERVICES = ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")


class ModelServer:
    """One model server; ``await start()``, then ``await stop()`` (or ``run_until_signal``)."""

    def __init__(self, options: ServerOptions, registry=None) -> None:
        self.options = options
        self._prefix_map = parse_prefix_map(list(options.model_base_path_prefix_map))
        self.metrics = ServerMetrics(registry)
        self._config_text: str | None = None  # the config file as last applied
        if options.model_config_file:
            config = load_model_server_config(options.model_config_file, self._prefix_map)
            self._config_text = Path(options.model_config_file).read_text()
        else:
            config = single_model_config(options.model_name, options.model_base_path, self._prefix_map)
        self.batching = None
        if options.enable_batching:
            self.batching = (
                load_batching_parameters(options.batching_parameters_file)
                if options.batching_parameters_file
                else BatchingParameters()
            )
        self.monitoring = (
            load_monitoring_config(options.monitoring_config_file)
            if options.monitoring_config_file
            else None
        )
        self.health = health.aio.HealthServicer()
        self.manager = ModelManager(
            config,
            enable_warmup=options.enable_model_warmup,
            max_num_load_retries=options.max_num_load_retries,
            on_change=self._on_versions_changed,
        )
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="predict")
        self.batcher = (
            BatchScheduler(self.batching, on_batch=self.metrics.observe_batch)
            if self.batching
            else None
        )
        self._server: grpc.aio.Server | None = None
        self._http = None
        self._tasks: list[asyncio.Task] = []
        self.port: int | None = None
        self.metrics_port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> int:
        """Load the models, open the gRPC port (and metrics HTTP port); returns the gRPC port."""
        options = self.options
        if options.rest_api_port:
            log.warning(
                "--rest_api_port=%d: the REST API is not served by the LENS model server (gRPC "
                "only); the port serves Prometheus metrics when the monitoring config enables it",
                options.rest_api_port,
            )
        await asyncio.to_thread(self.manager.poll)
        self.manager.start_polling(options.file_system_poll_wait_seconds)
        server = grpc.aio.server(
            options=[
                # gRPC refuses a larger request itself (RESOURCE_EXHAUSTED, "Received message
                # larger than max (N vs. M)") before it is parsed into memory.
                ("grpc.max_receive_message_length", options.max_request_bytes),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ]
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, self.metrics, self._executor, self.batcher), server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.manager, self._normalize), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        address = f"{options.host}:{options.port}" if ":" not in options.host else f"[{options.host}]:{options.port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise ConfigError(f"cannot bind the gRPC port {address}; is it in use? Pick another --port")
        await server.start()
        self._server = server
        await self._update_health()
        self._start_metrics_http()
        if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
            self._tasks.append(asyncio.create_task(self._poll_config()))
        self._tasks.append(asyncio.create_task(self._watch_health()))
        log.info(
            "Running gRPC ModelServer at %s:%d (models: %s; batching %s)",
            options.host, self.port, ", ".join(self.manager.model_names()) or "none",
            "on" if self.batcher else "off",
        )
        return self.port

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful: health NOT_SERVING, refuse new calls, let calls in flight finish."""
        grace = self.options.grace_period_s if grace_s is None else grace_s
        await self.health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)
        await asyncio.to_thread(self.manager.close)
        self._executor.shutdown(wait=False)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        log.info("model server stopped")

    async def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("signal received: shutting down")
        await self.stop()

    # -- internals -------------------------------------------------------------------------
    def _normalize(self, config):
        base = Path(self.options.model_config_file).resolve().parent if self.options.model_config_file else Path.cwd()
        return normalize_config(config, self._prefix_map, base, source="ReloadConfigRequest")

    def _on_versions_changed(self, model: str, versions: list[int]) -> None:
        self.metrics.set_versions(model, versions)

    async def _update_health(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.manager.all_models_available()
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in SERVICES:
            await self.health.set(service, status)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self._update_health()

    async def _poll_config(self) -> None:
        path = Path(self.options.model_config_file)
        while True:
            await asyncio.sleep(self.options.model_config_file_poll_wait_seconds)
            try:
                text = path.read_text()
                if text == self._config_text:
                    continue
                config = load_model_server_config(path, self._prefix_map)
                self._config_text = text
                log.info("model config %s changed: reloading", path)
                await asyncio.to_thread(self.manager.apply_config, config)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving the old config
                log.error("cannot reload %s (keeping the current config): %s", path, exc)

    def _start_metrics_http(self) -> None:
        import prometheus_client

        port = self.options.metrics_port
        if port is None and self.monitoring and self.monitoring.prometheus_enable:
            port = self.options.rest_api_port or None
        if port is None:
            return
        self._http, _ = prometheus_client.start_http_server(
            port, addr=self.options.host, registry=self.metrics.registry
        )
        self.metrics_port = self._http.server_port
        path = self.monitoring.prometheus_path if self.monitoring else "/metrics"
        log.info("Prometheus metrics at http://%s:%d%s", self.options.host, self.metrics_port, path)


def serve(options: ServerOptions) -> int:
    """Run a model server in this process until SIGTERM/SIGINT."""
    server = ModelServer(options)
    asyncio.run(server.run_until_signal())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__)
    add_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(options_from_args(args))
    except ConfigError as exc:
        print(f"model server: error: {exc}", flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
