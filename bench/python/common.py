"""Shared helpers of radkit's Python PyTorch twins (bench/python/): safetensors files written by
radkit (read with numpy, no safetensors package needed), thread settings pinned like radkit's, peak
RSS, medians. Benchmarks only: nothing in radkit's tests or CI needs Python."""
import json
import os
import resource
import struct
import sys

import numpy as np
import torch

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_, "F16": np.float16}


def read_safetensors(path):
    """{name: torch.Tensor} of a .safetensors file (bfloat16 is not needed by the benches)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}, which the bench reader does not read")
        b, end = e["data_offsets"]
        arr = np.frombuffer(data, dtype=_DTYPES[e["dtype"]], count=(end - b) // np.dtype(_DTYPES[e["dtype"]]).itemsize, offset=base + b)
        out[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    rev = {np.dtype(v): k for k, v in _DTYPES.items()}
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        b = a.tobytes()
        header[name] = {"dtype": rev[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
    os.replace(path + ".tmp", path)


def set_threads(n):
    """The same settings as radkit's setNumThreads(n): LibTorch's intra-op threads (OpenMP) and, through
    the environment the parent set (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS), OpenBLAS's pool."""
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def emit(obj):
    """One JSON line on stdout: what the TypeScript harness reads."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
