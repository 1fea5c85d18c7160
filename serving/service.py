"""gRPC servicers: ``tensorflow.serving.PredictionService`` and ``tensorflow.serving.ModelService``.

Predict and GetModelMetadata are served with TensorFlow Serving's semantics; Classify, Regress and
MultiInference answer UNIMPLEMENTED (LENS models export Predict signatures only). Every failure is
a gRPC status whose code and message are TensorFlow Serving's.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.batching import BatchScheduler
from serving.errors import ServingError
from serving.manager import ModelManager
from serving.metrics import ServerMetrics
from serving.servable import DEFAULT_SIGNATURE
from serving.tensors import to_tensor_proto

__all__ = ["ModelService", "PredictionService"]

log = logging.getLogger(__name__)

SIGNATURE_DEF = "signature_def"


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict (optionally through a BatchScheduler) and GetModelMetadata on a ModelManager."""

    def __init__(
        self,
        manager: ModelManager,
        metrics: ServerMetrics,
        executor: Executor,
        batcher: BatchScheduler | None = None,
    ) -> None:
        self._manager = manager
        self._metrics = metrics
        self._executor = executor
        self._batcher = batcher

    async def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        start = time.perf_counter()
        model = request.model_spec.name
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        code = grpc.StatusCode.OK
        try:
            if not request.HasField("model_spec"):
                raise ServingError.invalid_argument("Missing ModelSpec")
            servable = self._manager.servable(request.model_spec)
            batching = self._batcher is not None
            prepared = servable.prepare(request, batching=batching)
            if batching:
                outputs = await asyncio.wrap_future(self._batcher.submit(servable, prepared))
            else:
                outputs = await asyncio.get_running_loop().run_in_executor(
                    self._executor, servable.run,
                    prepared.signature_name, prepared.inputs, prepared.output_aliases,
                )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = model
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = prepared.signature_name
            for alias, array in outputs.items():
                response.outputs[alias].CopyFrom(to_tensor_proto(array))
            return response
        except ServingError as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer the call
            log.exception("Predict failed")
            code = grpc.StatusCode.INTERNAL
            await context.abort(code, f"Predict internal error: {exc}")
        finally:
            self._metrics.observe_request(
                "Predict", model, signature, code.name, time.perf_counter() - start
            )

    async def GetModelMetadata(self, request, context) -> get_model_metadata_pb2.GetModelMetadataResponse:
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if not request.HasField("model_spec"):
                raise ServingError.invalid_argument("Missing ModelSpec")
            if not request.metadata_field:
                raise ServingError.invalid_argument(
                    "GetModelMetadataRequest must specify at least one metadata_field"
                )
            for field in request.metadata_field:
                if field != SIGNATURE_DEF:
                    raise ServingError.invalid_argument(f"Metadata field {field} is not supported")
            servable = self._manager.servable(request.model_spec)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.metadata[SIGNATURE_DEF].Pack(servable.signature_def_map())
            return response
        except ServingError as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        finally:
            self._metrics.observe_request(
                "GetModelMetadata", request.model_spec.name, "", code.name, time.perf_counter() - start
            )

    async def Classify(self, request, context):
        await self._unimplemented("Classify", context)

    async def Regress(self, request, context):
        await self._unimplemented("Regress", context)

    async def MultiInference(self, request, context):
        await self._unimplemented("MultiInference", context)

    async def _unimplemented(self, method: str, context) -> None:
        self._metrics.observe_request(method, "", "", grpc.StatusCode.UNIMPLEMENTED.name, 0.0)
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{method} is not served by the LENS model server; use Predict with a predict signature",
        )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus, and HandleReloadConfigRequest (switches to the given ModelServerConfig)."""

    def __init__(self, manager: ModelManager, normalize_config: Callable | None = None) -> None:
        self._manager = manager
        self._normalize = normalize_config

    async def GetModelStatus(self, request, context) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            if not request.HasField("model_spec"):
                raise ServingError.invalid_argument("Missing ModelSpec")
            statuses = self._manager.status(request.model_spec)
        except ServingError as exc:
            await context.abort(exc.code, exc.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add(version=status.version, state=status.state)
            if status.error:
                entry.status.error_code = status.error_code or grpc.StatusCode.UNKNOWN.value[0]
                entry.status.error_message = status.error
        return response

    async def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        try:
            config = self._normalize(request.config) if self._normalize else request.config
            await asyncio.to_thread(self._manager.apply_config, config)
        except Exception as exc:  # noqa: BLE001 - a bad config is the caller's to fix
            message = getattr(exc, "message", None) or str(exc)
            response.status.error_code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            response.status.error_message = message
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        return response
