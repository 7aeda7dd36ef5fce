#!/usr/bin/env python3
"""Regenerates the .npy fixtures of tests/tools/npy_test.cc with real NumPy (run: python3 make_fixtures.py).

Values follow simple formulas so that the test can recompute them; keep both in sync.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, array, version=None):
    with open(os.path.join(HERE, name), "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


save("f32_3x4.npy", (np.arange(12, dtype="<f4") * 0.25 - 1).reshape(3, 4))
save("f64_2x3.npy", (np.arange(6, dtype="<f8") * 0.1 - 0.2).reshape(2, 3))
save("i32_5.npy", np.arange(5, dtype="<i4") * 7 - 3)
save("i64_2x2x2.npy", (np.arange(8, dtype="<i8") * 1000 - 4000).reshape(2, 2, 2))
save("bool_4.npy", np.array([True, False, False, True]))
save("f32_scalar.npy", np.array(3.5, dtype="<f4"))
save("f32_empty_0x3.npy", np.zeros((0, 3), dtype="<f4"))
save("i64_rank8.npy", np.arange(16, dtype="<i8").reshape(1, 2, 1, 2, 1, 2, 1, 2))
# fortran_order True: C-order values are 0, 1, 2, ... after conversion.
save("f32_fortran_2x3.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
save("f64_fortran_2x3x4.npy", np.asfortranarray(np.arange(24, dtype="<f8").reshape(2, 3, 4)))
# Big-endian data: values i + 0.5 and 7 * i - 3.
save("f32_bigendian_2x2.npy", (np.arange(4, dtype=">f4") + 0.5).reshape(2, 2))
save("i32_bigendian_3.npy", np.arange(3, dtype=">i4") * 7 - 3)
# Format versions 2.0 and 3.0 (4-byte header length): values 0, 1, 2.
save("f32_v2_3.npy", np.arange(3, dtype="<f4"), version=(2, 0))
save("f32_v3_3.npy", np.arange(3, dtype="<f4"), version=(3, 0))
# Valid NumPy files in dtypes quarks does not read.
save("f16_2.npy", np.zeros(2, dtype="<f2"))
save("u8_3.npy", np.zeros(3, dtype="u1"))
save("structured_2.npy", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]))
