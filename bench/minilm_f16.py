"""Writes a copy of a safetensors file with its F32 tensors stored as F16, halving the MiniLM folder that
bench/gpu_pack.sh puts beside the binary (oassl's text-encoder loader converts F16 back to f32).

Usage: python bench/minilm_f16.py SRC.safetensors DST.safetensors   (needs torch)
"""
import ctypes
import json
import os
import struct
import sys

import torch


def main(src: str, dst: str) -> None:
    raw = open(src, "rb").read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    data_start = 8 + header_len
    out_header, chunks, offset = {}, [], 0
    for name, meta in header.items():
        if name == "__metadata__":
            out_header[name] = meta
            continue
        begin, end = meta["data_offsets"]
        data, dtype = raw[data_start + begin:data_start + end], meta["dtype"]
        if dtype == "F32":
            half = torch.frombuffer(bytearray(data), dtype=torch.float32).half().contiguous()
            data, dtype = ctypes.string_at(half.data_ptr(), half.numel() * 2), "F16"
        out_header[name] = {"dtype": dtype, "shape": meta["shape"], "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(out_header).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)
    os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
