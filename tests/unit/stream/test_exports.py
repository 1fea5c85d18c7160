import lens.stream


def test_public_names_are_exported():
    assert sorted(lens.stream.__all__) == sorted(set(lens.stream.__all__))
    for name in lens.stream.__all__:
        assert getattr(lens.stream, name) is not None
