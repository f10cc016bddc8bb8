"""Fashion-MNIST as the bench scripts read it: Debian's dataset-fashion-mnist IDX files."""
import gzip
import os
import struct

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    """One IDX file of the package (train-images-idx3-ubyte.gz, ...) as a uint8 array."""
    with gzip.open(os.path.join(FASHION, name)) as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data[4 + 4 * dims:], dtype=np.uint8).reshape(shape)
