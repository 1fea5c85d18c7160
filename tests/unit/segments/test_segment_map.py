import numpy as np
import pytest

from lens.anomaly import ClusterModel
from lens.errors import ConfigError, DataError
from lens.segments.segment_map import CUSTOMER_CLUSTERS_FILE, PRODUCT_MAP_FILE, SegmentMap


def test_segment_ids_survive_a_save_and_load(tmp_path):
    clusters = ClusterModel(np.array([[0.0, 0.0], [10.0, 10.0]]))
    SegmentMap(products={"milk": 0, "tea": 3}, clusters=clusters).save(tmp_path)
    loaded = SegmentMap.load(tmp_path)
    assert loaded.product_segment("tea") == 3
    assert loaded.product_segment("caviar") is None
    assert loaded.customer_segment([9.0, 8.0]) == 1 == clusters.assign_one([9.0, 8.0])
    # The clusters file is an ordinary ClusterModel: the worker's --clusters reads it.
    assert ClusterModel.load(tmp_path / CUSTOMER_CLUSTERS_FILE).k == 2


def test_a_map_with_one_half_says_what_is_missing(tmp_path):
    SegmentMap(products={"milk": 0}).save(tmp_path)
    loaded = SegmentMap.load(tmp_path)
    with pytest.raises(ConfigError, match="lens segments customers"):
        loaded.customer_segment([0.0])
    with pytest.raises(ConfigError, match="lens segments products"):
        SegmentMap(clusters=ClusterModel(np.zeros((1, 2)))).product_segment("milk")


def test_loading_checks_the_directory_and_format(tmp_path):
    with pytest.raises(ConfigError, match="lens segments"):
        SegmentMap.load(tmp_path)
    (tmp_path / PRODUCT_MAP_FILE).write_text('{"format": "something else"}')
    with pytest.raises(DataError, match="not a product segment map"):
        SegmentMap.load(tmp_path)
