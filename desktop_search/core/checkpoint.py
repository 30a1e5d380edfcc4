"""Model weights read one tensor at a time from the files on disk, without torch and without loading them all.

The int8 CPU copy of BGE-M3 is built from the weights tensor by tensor (``m3graph.py``), so at no point does a
second full fp32 copy of the 2.3 GB model sit in memory. This module finds where each tensor's bytes are in the
checkpoint and reads just those:

* ``model.safetensors`` (and sharded ``model.safetensors.index.json``): a JSON header gives each tensor's dtype,
  shape and byte range;
* ``pytorch_model.bin`` / ``*.pt`` (torch's zip format, what the BGE-M3 repository ships): ``data.pkl`` is read
  with a restricted unpickler that accepts only tensor and storage records (nothing is executed, like torch's
  ``weights_only`` load) and notes each tensor's storage entry, offset, shape and strides; the storage entries
  are stored uncompressed in the zip, so a tensor is one ``pread`` at a known offset.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# torch storage class names in data.pkl -> numpy dtype (bfloat16 is read as uint16 and widened).
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"), "HalfStorage": np.dtype("<f2"), "BFloat16Storage": np.dtype("<u2"),
    "DoubleStorage": np.dtype("<f8"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_SAFETENSORS_DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}


class CheckpointError(ValueError):
    """The checkpoint cannot be read this way (unknown record, missing tensor, truncated file)."""


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's values are: a file, a byte offset, and how to view the bytes read from there."""

    path: Path
    offset: int  # byte offset of the first element of the storage range read
    dtype: np.dtype
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    bfloat16: bool = False

    def read(self) -> np.ndarray:
        """The tensor as a fresh, contiguous float32 (or integer) array."""
        extent = 1 + sum((n - 1) * s for n, s in zip(self.shape, self.strides)) if all(self.shape) else 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            flat = np.fromfile(f, dtype=self.dtype, count=extent)
        if flat.size != extent:
            raise CheckpointError(f"{self.path.name} is truncated")
        item = flat.dtype.itemsize
        arr = np.lib.stride_tricks.as_strided(flat, self.shape, tuple(s * item for s in self.strides))
        if self.bfloat16:
            return (arr.astype(np.uint32) << 16).view(np.float32)
        if arr.dtype.kind == "f":
            return np.ascontiguousarray(arr, dtype=np.float32)
        return np.ascontiguousarray(arr)


    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of a row-major 2-D tensor, read alone (a 1 GB embedding table in slices)."""
        if len(self.shape) != 2 or self.strides != (self.shape[1], 1):
            return self.read()[start:stop]
        stop = min(stop, self.shape[0])
        width = self.shape[1]
        part = TensorRef(self.path, self.offset + start * width * self.dtype.itemsize, self.dtype,
                         (max(0, stop - start), width), self.strides, self.bfloat16)
        return part.read()


class Checkpoint:
    """Name -> :class:`TensorRef` for every tensor in one or more checkpoint files."""

    def __init__(self, refs: dict[str, TensorRef]) -> None:
        self.refs = refs

    def __contains__(self, name: str) -> bool:
        return name in self.refs

    def __iter__(self) -> Iterator[str]:
        return iter(self.refs)

    def read(self, name: str) -> np.ndarray:
        try:
            return self.refs[name].read()
        except KeyError:
            raise CheckpointError(f"tensor {name!r} not in the checkpoint") from None

    def ref(self, name: str) -> TensorRef:
        try:
            return self.refs[name]
        except KeyError:
            raise CheckpointError(f"tensor {name!r} not in the checkpoint") from None

    def strip_prefix(self, prefix: str) -> "Checkpoint":
        """The same tensors with ``prefix`` removed from names that have it (``roberta.``, ``model.``)."""
        return Checkpoint({(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in self.refs.items()})


def open_checkpoint(path: Path) -> Checkpoint:
    """Read the index of a safetensors file, a sharded safetensors/torch index, or a torch zip checkpoint."""
    path = Path(path)
    if path.name.endswith(".index.json"):
        weight_map = json.loads(path.read_text("utf-8"))["weight_map"]
        refs: dict[str, TensorRef] = {}
        for shard in sorted(set(weight_map.values())):
            refs.update(open_checkpoint(path.parent / shard).refs)
        return Checkpoint(refs)
    if path.suffix == ".safetensors":
        return Checkpoint(_safetensors_refs(path))
    return Checkpoint(_torch_zip_refs(path))


def _safetensors_refs(path: Path) -> dict[str, TensorRef]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    refs = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise CheckpointError(f"{path.name}: unsupported dtype {info['dtype']} for {name}")
        shape = tuple(int(d) for d in info["shape"])
        refs[name] = TensorRef(path, 8 + n + int(info["data_offsets"][0]), dtype, shape, _contiguous(shape),
                               bfloat16=info["dtype"] == "BF16")
    return refs


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    bfloat16: bool


@dataclass(frozen=True)
class _Pending:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_rest: object) -> _Pending:
    return _Pending(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data: _Pending, *_rest: object) -> _Pending:
    return data


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _RefUnpickler(pickle.Unpickler):
    """Only the records a torch state dict is made of; anything else is refused, never executed."""

    _ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise CheckpointError(f"unexpected record {module}.{name} in a weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent record {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unexpected storage type {storage_type!r}")
        return _Storage(key, _STORAGE_DTYPES[storage_type.name], storage_type.name == "BFloat16Storage")


def _torch_zip_refs(path: Path) -> dict[str, TensorRef]:
    with zipfile.ZipFile(path) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise CheckpointError(f"{path.name} is not a torch zip checkpoint (no data.pkl)")
        prefix = pkl[: -len("data.pkl")]
        state = _RefUnpickler(z.open(pkl)).load()
        if not isinstance(state, dict):
            raise CheckpointError(f"{path.name} does not hold a state dict")
        infos = {i.filename: i for i in z.infolist()}
        with open(path, "rb") as raw:
            data_start = {}
            refs = {}
            for name, t in state.items():
                if not isinstance(t, _Pending):
                    continue
                entry = f"{prefix}data/{t.storage.key}"
                info = infos.get(entry)
                if info is None:
                    raise CheckpointError(f"{path.name}: storage {entry} missing")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"{path.name}: storage {entry} is compressed")
                if entry not in data_start:
                    # The local file header is 30 bytes plus the name and an extra field of its own length.
                    raw.seek(info.header_offset + 26)
                    name_len, extra_len = struct.unpack("<HH", raw.read(4))
                    data_start[entry] = info.header_offset + 30 + name_len + extra_len
                itemsize = t.storage.dtype.itemsize
                refs[name] = TensorRef(path, data_start[entry] + t.offset * itemsize, t.storage.dtype, t.shape,
                                       t.strides, bfloat16=t.storage.bfloat16)
    return refs


def find_weights(model_dir: Path) -> Path:
    """The weights file transformers would load from ``model_dir`` (safetensors first, then torch)."""
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json"):
        if (Path(model_dir) / name).is_file():
            return Path(model_dir) / name
    raise CheckpointError(f"no weights file in {model_dir}")
