import lens.anomaly


def test_public_names_are_exported():
    assert sorted(lens.anomaly.__all__) == sorted(set(lens.anomaly.__all__))
    for name in lens.anomaly.__all__:
        assert getattr(lens.anomaly, name) is not None
