"""The model repository: integer version directories under a model's base path.

    <base_path>/
      1/saved_model.pb, variables/, assets.extra/tf_serving_warmup_requests
      2/...

A child directory whose name is a non-negative integer (leading zeros allowed, as in TensorFlow
Serving) is a version; anything else is ignored. The version policy picks the versions to serve:
``latest { num_versions: N }`` (default N = 1), ``all {}``, ``specific { versions: [...] }``.
"""

import logging
from pathlib import Path

from tensorflow_serving.config import file_system_storage_path_source_pb2 as fs_pb2

__all__ = ["aspired_versions", "list_versions"]

log = logging.getLogger(__name__)

VersionPolicy = fs_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


def list_versions(base_path: str | Path) -> dict[int, Path]:
    """Version number -> directory, for every integer-named directory under ``base_path``."""
    base = Path(base_path)
    try:
        children = list(base.iterdir())
    except FileNotFoundError:
        return {}
    except NotADirectoryError:
        log.warning("model base path %s is not a directory", base)
        return {}
    versions = {}
    for child in children:
        if child.name.isdigit() and child.is_dir():
            versions[int(child.name)] = child
    return versions


def aspired_versions(available: set[int] | dict[int, Path], policy: VersionPolicy) -> set[int]:
    """The versions a policy wants served, out of those present on disk."""
    present = set(available)
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return present
    if which == "specific":
        return present & set(policy.specific.versions)
    num = policy.latest.num_versions if which == "latest" and policy.latest.num_versions else 1
    return set(sorted(present, reverse=True)[:num])
