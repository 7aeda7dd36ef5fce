#!/usr/bin/env python3
"""Writes the seeds of fuzz_safetensors (corpus/safetensors/*.safetensors): small files as Hugging
Face's writer lays them out (8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, data) in every dtype the reader knows, plus near-valid ones that each break one check,
so fuzzing starts from both the conversions and the checks.

Run from anywhere: python3 tests/fuzz/make_safetensors_corpus.py
"""
import json
import os
import struct

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
         "F8_E4M3": 1, "F8_E5M2": 1}


def layout(tensors, metadata=None, align=8):
    """tensors: [(name, dtype, shape, bytes)] placed one after another."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    return raw(json.dumps(header, separators=(",", ":")), data, align)


def raw(header_text, data, align=8):
    text = header_text.encode()
    text += b" " * (-len(text) % align)
    return struct.pack("<Q", len(text)) + text + data


def filled(dtype, shape, seed=1):
    n = 1
    for d in shape:
        n *= d
    return bytes((seed * 37 + i * 11) % 256 for i in range(n * SIZES[dtype]))


SEEDS = {
    "f32_bf16_f16": layout([("model.embed_tokens.weight", "BF16", [4, 3], filled("BF16", [4, 3])),
                            ("model.norm.weight", "F32", [3], struct.pack("<3f", 1.0, -0.5, 2.0)),
                            ("lm_head.weight", "F16", [2, 3], struct.pack("<6H", 0x3c00, 0x8001, 0x7c00, 0xfe01,
                                                                           0x0400, 0x7bff))],
                           metadata={"format": "pt"}),
    "scalar_and_empty": layout([("scalar", "F32", [], struct.pack("<f", 3.5)), ("empty", "BF16", [0, 3], b""),
                                ("zero_middle", "F16", [2, 0, 2], b"")]),
    "every_dtype": layout([(dt.lower(), dt, [2], filled(dt, [2], i)) for i, dt in enumerate(SIZES)]),
    "rank8": layout([("r8", "F32", [1, 2, 1, 2, 1, 1, 2, 1], filled("F32", [8]))]),
    "unaligned_f32": layout([("w", "F32", [2], struct.pack("<2f", 1.0, 2.0))], align=1),
    "odd_offsets": layout([("b", "U8", [1], b"\x01"), ("w", "F32", [1], struct.pack("<f", 4.0))]),
    "extra_keys_and_gaps": raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8],"note":{"x":[1,[2]]}},'
                               '"__metadata__":{"k":"v"}}', filled("F32", [2])),
    # Near-valid: each breaks one check.
    "size_mismatch": raw('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', filled("F32", [2])),
    "overlap": raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                   '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', filled("F32", [3])),
    "duplicate_name": raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                          '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', filled("F32", [2])),
    "metadata_number": raw('{"__metadata__":{"total_size":8},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                           filled("F32", [1])),
    "huge_shape": raw('{"a":{"dtype":"BF16","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}',
                      filled("BF16", [2])),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
