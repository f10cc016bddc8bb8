#!/usr/bin/env python3
"""Writes the evaluation sets of bench/quality_suite.sh: three tabular sets as CSV files and a
10,000-image slice of Fashion-MNIST.

Every set comes from a Debian package, read from the package file itself (apt-get download
and dpkg-deb -x into the output folder), so neither R nor scikit-learn has to be installed:

  satellite.csv  mlbench's Satellite (Landsat spectral values): 6,435 rows, 36 features, 6 classes
  letter.csv     mlbench's LetterRecognition: 20,000 rows, 16 features, 26 classes
  digits.csv     scikit-learn's bundled digits (8x8 intensity counts): 1,797 rows, 64 features,
                 10 classes

  fmnist10k/     the first 10,000 training images of Fashion-MNIST (dataset-fashion-mnist) and
                 their labels, as IDX files (small image collections)

mlbench stores R data files; python3-rdata (a Debian package) reads them. Each CSV has a
header, the features as numbers and a `label` column holding the class as an integer (classes
numbered in their sorted order). Usage: bench/quality_data.py [OUT_DIR] (default data/quality).
"""
import csv
import glob
import gzip
import os
import subprocess
import sys

MLBENCH_SETS = {"satellite": "Satellite", "letter": "LetterRecognition"}


def extract(package, out_dir):
    """Unpacks the package's .deb into out_dir/pkg and returns that root."""
    root = os.path.join(out_dir, "pkg")
    os.makedirs(root, exist_ok=True)
    debs = glob.glob(os.path.join(root, package + "_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=root, check=True)
        debs = glob.glob(os.path.join(root, package + "_*.deb"))
    subprocess.run(["dpkg-deb", "-x", debs[0], root], check=True)
    return root


def write_csv(path, header, rows, labels):
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header + ["label"])
        for row, label in zip(rows, labels):
            w.writerow([repr(float(v)) if v != int(v) else int(v) for v in row] + [label])
    os.replace(path + ".tmp", path)
    print(f"{path}: {len(rows)} rows, {len(header)} features, {len(set(labels))} classes")


def mlbench(out_dir):
    try:
        import rdata
    except ImportError:
        sys.exit("python3-rdata is missing: apt-get install python3-rdata")
    root = extract("r-cran-mlbench", out_dir)
    for name, rname in MLBENCH_SETS.items():
        rda = os.path.join(root, "usr/lib/R/site-library/mlbench/data", rname + ".rda")
        frame = next(iter(rdata.conversion.convert(rdata.parser.parse_file(rda)).values()))
        class_col = [c for c in frame.columns if str(frame[c].dtype) == "category"]
        if len(class_col) != 1:
            sys.exit(f"{rda}: expected one class column, found {class_col}")
        classes = frame[class_col[0]]
        names = sorted(str(c) for c in classes.cat.categories)
        labels = [names.index(str(c)) for c in classes]
        features = frame.drop(columns=class_col)
        if features.isna().any().any():
            sys.exit(f"{rda}: has missing values")
        write_csv(os.path.join(out_dir, name + ".csv"), [str(c) for c in features.columns],
                  features.to_numpy().tolist(), labels)


def sklearn_digits(out_dir):
    root = extract("python3-sklearn", out_dir)
    path = os.path.join(root, "usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz")
    rows, labels = [], []
    with gzip.open(path, "rt") as f:
        for line in csv.reader(f):
            values = [float(v) for v in line]
            rows.append(values[:-1])
            labels.append(int(values[-1]))
    write_csv(os.path.join(out_dir, "digits.csv"), [f"p{i}" for i in range(64)], rows, labels)


def fmnist_slice(out_dir, rows=10000):
    src = "/usr/share/datasets/fashion-mnist"
    dst = os.path.join(out_dir, "fmnist10k")
    os.makedirs(dst, exist_ok=True)
    for name, item_bytes in (("train-images-idx3-ubyte.gz", 28 * 28), ("train-labels-idx1-ubyte.gz", 1)):
        with gzip.open(os.path.join(src, name), "rb") as f:
            data = f.read()
        header = 16 if item_bytes > 1 else 8
        out = bytearray(data[:header])
        out[4:8] = rows.to_bytes(4, "big")  # the item count
        out += data[header:header + rows * item_bytes]
        with gzip.open(os.path.join(dst, name), "wb") as f:
            f.write(bytes(out))
    print(f"{dst}: the first {rows} Fashion-MNIST training images and labels")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "data/quality"
    os.makedirs(out_dir, exist_ok=True)
    mlbench(out_dir)
    sklearn_digits(out_dir)
    fmnist_slice(out_dir)


if __name__ == "__main__":
    main()
