from google.protobuf import text_format

from serving.repository import VersionPolicy, aspired_versions, list_versions


def policy(text: str) -> VersionPolicy:
    return text_format.Parse(text, VersionPolicy())


def test_only_integer_directories_are_versions(tmp_path):
    for name in ("1", "007", "10", "tmp", "-3", ".2"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version")
    assert sorted(list_versions(tmp_path)) == [1, 7, 10]


def test_missing_base_path_has_no_versions(tmp_path):
    assert list_versions(tmp_path / "nope") == {}


def test_default_policy_is_latest_one():
    assert aspired_versions({1, 2, 3}, VersionPolicy()) == {3}


def test_latest_n_all_and_specific():
    assert aspired_versions({1, 2, 3}, policy("latest { num_versions: 2 }")) == {2, 3}
    assert aspired_versions({1, 2, 3}, policy("all {}")) == {1, 2, 3}
    assert aspired_versions({1, 2, 3}, policy("specific { versions: 1 versions: 4 }")) == {1}
    assert aspired_versions(set(), policy("latest { num_versions: 2 }")) == set()
