#!/usr/bin/python3
"""An independent GIST (Oliva and Torralba, as in the LMgist MATLAB reference) in NumPy, for
tests/io/images_test.cpp: reads a side x side float32 image (raw, row-major) and writes the 512
float64 values of its descriptor (4 scales x 8 orientations, 4 x 4 grid).

Usage: gist_reference.py IMAGE.f32 SIDE OUT.f64
"""
import sys

import numpy as np


def prefilt(img, fc=4):
    w = 5
    s1 = fc / np.sqrt(np.log(2))
    img = np.log(img + 1)
    img = np.pad(img, w, mode="symmetric")
    sn, sm = img.shape
    n = max(sn, sm)
    n += n % 2
    img = np.pad(img, ((0, n - sn), (0, n - sm)), mode="symmetric")
    fx, fy = np.meshgrid(np.arange(-n / 2, n / 2), np.arange(-n / 2, n / 2))
    gf = np.fft.fftshift(np.exp(-(fx ** 2 + fy ** 2) / s1 ** 2))
    out = img - np.real(np.fft.ifft2(np.fft.fft2(img) * gf))
    local_std = np.sqrt(np.abs(np.fft.ifft2(np.fft.fft2(out ** 2) * gf)))
    out = out / (0.2 + local_std)
    return out[w:sn - w, w:sm - w]


def create_gabor(orientations, n):
    params = []
    for i, o in enumerate(orientations):
        for j in range(o):
            params.append((0.35, 0.3 / 1.85 ** i, 16 * o ** 2 / 32 ** 2, np.pi / o * j))
    fx, fy = np.meshgrid(np.arange(-n / 2, n / 2), np.arange(-n / 2, n / 2))
    fr = np.fft.fftshift(np.sqrt(fx ** 2 + fy ** 2))
    t = np.fft.fftshift(np.angle(fx + 1j * fy))
    bank = []
    for p in params:
        tr = t + p[3]
        tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
        bank.append(np.exp(-10 * p[0] * (fr / n / p[1] - 1) ** 2 - 2 * p[2] * np.pi * tr ** 2))
    return bank


def down_n(x, n):
    rows = np.fix(np.linspace(0, x.shape[0], n + 1)).astype(int)
    cols = np.fix(np.linspace(0, x.shape[1], n + 1)).astype(int)
    y = np.zeros((n, n))
    for r in range(n):
        for c in range(n):
            y[r, c] = x[rows[r]:rows[r + 1], cols[c]:cols[c + 1]].mean()
    return y


def gist(img, blocks=4, border=32):
    img = img - img.min()
    if img.max() > 0:
        img = 255 * img / img.max()
    out = prefilt(img)
    padded = np.pad(out, border, mode="symmetric")
    f = np.fft.fft2(padded)
    ny, nx = padded.shape
    values = []
    for g in create_gabor([8, 8, 8, 8], ny):
        response = np.abs(np.fft.ifft2(f * g))[border:ny - border, border:nx - border]
        values.extend(down_n(response, blocks).flatten(order="F"))  # MATLAB's v(:)
    return np.array(values)


def main():
    side = int(sys.argv[2])
    img = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64).reshape(side, side)
    gist(img).astype(np.float64).tofile(sys.argv[3])


if __name__ == "__main__":
    main()
