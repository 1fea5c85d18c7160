"""Next-basket baselines LENS is measured against, all speaking the ``Recommender`` protocol.

``BASELINES`` maps each baseline's name to a factory that builds it with its default settings::

    model = BASELINES["tifu-knn"]().fit(train)
    answers = model.predict(histories, k=20)
"""

from collections.abc import Callable

from lens.baselines.global_top import GlobalTop
from lens.baselines.personal_then_global import PersonalThenGlobal
from lens.baselines.personal_top import PersonalTop
from lens.baselines.recommender import NextBasket, Recommender
from lens.baselines.tifu_knn import TifuKnn, TifuKnnSettings
from lens.baselines.xgboost_baseline import XGBoostBaseline, XGBoostSettings

__all__ = [
    "BASELINES",
    "GlobalTop",
    "NextBasket",
    "PersonalThenGlobal",
    "PersonalTop",
    "Recommender",
    "TifuKnn",
    "TifuKnnSettings",
    "XGBoostBaseline",
    "XGBoostSettings",
]

BASELINES: dict[str, Callable[[], Recommender]] = {
    GlobalTop.name: GlobalTop,
    PersonalTop.name: PersonalTop,
    PersonalThenGlobal.name: PersonalThenGlobal,
    TifuKnn.name: TifuKnn,
    XGBoostBaseline.name: XGBoostBaseline,
}
