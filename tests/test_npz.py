"""The parallel ``.npz`` writer of the CLI (``loihi_core/commands/_npz.py``): NumPy and
``zipfile`` read back every array bit for bit, with valid CRCs, zip64 records included."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from loihi_core.commands import _npz


def _arrays() -> dict:
    rng = np.random.default_rng(0)
    return {
        "output": rng.normal(size=(300, 10)),
        "spike_counts/conv0": rng.poisson(3, (64, 700)).astype(np.int64),
        "spikes/conv0": (rng.random((5, 40, 33)) < 0.1).astype(np.uint8),
        "rates/conv0": np.float64(212.5),
        "predictions": np.arange(64) % 10,
        "empty": np.zeros((0, 3), np.float32),
        "fortran": np.asfortranarray(rng.normal(size=(7, 5))),
        "strided": np.arange(100, dtype=np.int16)[::3],
        "flags": rng.random(17) < 0.5,
        "räte/ü": np.array([1.5, 2.5]),  # a non-ASCII name (UTF-8 flag)
    }


def _check(path, arrays: dict) -> None:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # every member's CRC-32
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_DEFLATED] * len(arrays)
    with np.load(path) as got:
        assert list(got.files) == list(arrays)
        for name, want in arrays.items():
            want = np.asanyarray(want)
            assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
            np.testing.assert_array_equal(got[name], want, err_msg=name)


@pytest.mark.parametrize("piece", [64, 1000, 4 << 20])
def test_arrays_read_back_bit_for_bit(tmp_path, monkeypatch, piece):
    """Small pieces: one array is deflated as many pieces that join into one stream."""
    monkeypatch.setattr(_npz, "PIECE", piece)
    arrays = _arrays()
    _npz.save_npz(tmp_path / "out.npz", arrays)
    _check(tmp_path / "out.npz", arrays)


def test_zip64_records_where_sizes_and_offsets_need_them(tmp_path, monkeypatch):
    """With the limit lowered, every size, offset and the directory take the zip64 path
    (the one a run with more than 2 GiB of recorded spikes takes)."""
    monkeypatch.setattr(_npz, "ZIP64_LIMIT", 100)
    monkeypatch.setattr(_npz, "PIECE", 5000)
    arrays = _arrays()
    _npz.save_npz(tmp_path / "big.npz", arrays)
    _check(tmp_path / "big.npz", arrays)
    with zipfile.ZipFile(tmp_path / "big.npz") as z:
        big = z.getinfo("spike_counts/conv0.npy")
        assert big.file_size > 100 and big.header_offset > 100 and big.extract_version == 45


def test_suffix_and_refusing_objects(tmp_path):
    _npz.save_npz(tmp_path / "plain", {"a": np.arange(3)})
    assert np.load(tmp_path / "plain.npz")["a"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="object arrays"):
        _npz.save_npz(tmp_path / "o.npz", {"a": np.array([{"x": 1}], dtype=object)})
