import lens.stockout


def test_public_names_are_exported():
    assert sorted(lens.stockout.__all__) == sorted(set(lens.stockout.__all__))
    for name in lens.stockout.__all__:
        assert getattr(lens.stockout, name) is not None
