"""safetensors container helpers for the fp4moe interop test: our own writer and reader, and a writer that goes
through the safetensors package's Rust serializer. BF16 / F8_E4M3 travel as raw uint16 / uint8."""

import json
import struct

import numpy as np
import safetensors.numpy

ST_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "F8_E4M3": np.dtype("u1"), "F8_E5M2": np.dtype("u1"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"), "I8": np.dtype("i1"), "U64": np.dtype("<u8"), "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
def write_st(path, tensors, metadata=None, misalign=False):
    """tensors: list of (name, dtype string, numpy array with the matching storage dtype).

    Tensors are packed back to back without alignment padding; with misalign=True the header is padded with
    spaces so that the data section itself starts at an odd file offset (every tensor view is unaligned)."""
    header = {}
    blobs = []
    offset = 0
    for name, dt, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype=ST_DTYPES[dt])
        data = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header).encode()
    if misalign:
        text += b" " * ((3 - (8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def write_st_with_package(path, tensors, metadata=None):
    """The same, but the file is produced by the safetensors package's public numpy API (stable across its
    versions). numpy has no float8: F8_E4M3 tensors are stored as U8 raw bytes, which fp4moe accepts for scales;
    BF16 tensors are not supported here."""
    flat = {}
    for name, dt, arr in tensors:
        if dt == "BF16":
            raise ValueError(f"{name}: BF16 cannot be written through safetensors.numpy")
        flat[name] = np.ascontiguousarray(arr, dtype=np.uint8 if dt == "F8_E4M3" else ST_DTYPES[dt])
    meta = {str(k): str(v) for k, v in metadata.items()} if metadata else None
    safetensors.numpy.save_file(flat, str(path), metadata=meta)


def read_st(path):
    """Returns ({name: (dtype string, numpy array)}, metadata dict). Validates offsets and sizes."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes, no header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        dt = ST_DTYPES[e["dtype"]]
        b, en = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if en - b != count * dt.itemsize or en > len(data) or b > en:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {e['data_offsets']} for shape {e['shape']}")
        out[name] = (e["dtype"], np.frombuffer(data, dtype=dt, count=count, offset=b).reshape(e["shape"]))
    return out, meta
