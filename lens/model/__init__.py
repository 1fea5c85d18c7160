"""The LENS model (paper III): SCE -> FBE -> NSD in Keras 3 on TensorFlow, its training, decoding,
TF Serving export and Recommender adapter.

    from lens.model import CONFIGS, TrainingConfig, train_lens, export_saved_model, LensRecommender
    trained, report = train_lens(split.train, CONFIGS["lens1000"], TrainingConfig(), "runs/lens")
    export_saved_model(trained, "serving/models/lens")
    LensRecommender.load("runs/lens").predict(histories, k=20)

Importing this package does not import TensorFlow; ``LensModel`` loads it on first access.
"""

from lens.model.config import CONFIGS, LensConfig, TrainingConfig, get_config
from lens.model.dataset import SessionTable, UserIndex, build_session_table, make_dataset, pad_histories
from lens.model.export import SIGNATURES, export_saved_model
from lens.model.recommender import LensRecommender, Predictor
from lens.model.trained_lens import TrainedLens
from lens.model.training import Trainer, TrainingReport, train_lens

__all__ = [
    "CONFIGS",
    "SIGNATURES",
    "LensConfig",
    "LensModel",
    "LensRecommender",
    "Predictor",
    "SessionTable",
    "TrainedLens",
    "Trainer",
    "TrainingConfig",
    "TrainingReport",
    "UserIndex",
    "build_session_table",
    "export_saved_model",
    "get_config",
    "make_dataset",
    "pad_histories",
    "train_lens",
]


def __getattr__(name: str):
    if name == "LensModel":
        from lens.model.lens_model import LensModel

        return LensModel
    raise AttributeError(f"module 'lens.model' has no attribute {name!r}")
