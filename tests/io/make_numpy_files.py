#!/usr/bin/python3
"""Writes the NumPy files datasets_test reads, with NumPy itself (Debian's python3-numpy).

Usage: make_numpy_files.py FOLDER
"""
import os
import sys

import numpy as np

out = sys.argv[1]
x = np.arange(12, dtype=np.float64).reshape(4, 3) / 4.0  # values exact in float16 too
y = np.array([0, 2, 1, 2], dtype=np.int64)
np.save(os.path.join(out, "f32.npy"), x.astype(np.float32))
np.save(os.path.join(out, "f16.npy"), x.astype(np.float16))
np.save(os.path.join(out, "f64_fortran.npy"), np.asfortranarray(x))
np.save(os.path.join(out, "u8.npy"), (x * 4).astype(np.uint8))
np.save(os.path.join(out, "i8.npy"), (-x * 4).astype(np.int8))
np.save(os.path.join(out, "labels.npy"), y)
np.savez(os.path.join(out, "plain.npz"), embeddings=x.astype(np.float32), labels=y)
np.savez_compressed(os.path.join(out, "compressed.npz"), x.astype(np.float32))  # arr_0
np.savez(os.path.join(out, "ambiguous.npz"), a=x, b=x)
np.save(os.path.join(out, "cube.npy"), np.zeros((2, 2, 2), dtype=np.float32))
bad = x.astype(np.float32)
bad[2, 1] = np.nan
np.save(os.path.join(out, "nan.npy"), bad)
np.save(os.path.join(out, "big_endian.npy"), x.astype(">f4"))
np.save(os.path.join(out, "complex.npy"), x.astype(np.complex64))
