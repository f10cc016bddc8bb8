// GIST (Oliva and Torralba; the LMgist reference) on FFTW.
#ifdef IMSAT_IMAGE_CODECS
#include <fftw3.h>
#endif

#include <algorithm>
#include <cmath>
#include <complex>
#include <map>
#include <mutex>
#include <stdexcept>

#include "io/image_internal.h"

namespace imsat::io {

#ifdef IMSAT_IMAGE_CODECS

namespace {

using cplx = std::complex<double>;

// FFTW plans for n x n transforms, made once per size and direction (planning is not thread-safe;
// executing a plan on other arrays is).
struct PlanCache {
  std::mutex mutex;
  std::map<std::pair<int, int>, fftw_plan> plans;
  ~PlanCache() {
    for (auto& [key, plan] : plans) fftw_destroy_plan(plan);
    fftw_cleanup();  // FFTW's own planner memory, so leak checkers see none
  }
};

fftw_plan plan_for(int n, int direction) {
  static PlanCache cache;
  std::lock_guard lock(cache.mutex);
  auto& plan = cache.plans[{n, direction}];
  if (plan == nullptr) {
    std::vector<cplx> a(static_cast<size_t>(n) * n), b(a.size());
    plan = fftw_plan_dft_2d(n, n, reinterpret_cast<fftw_complex*>(a.data()),
                            reinterpret_cast<fftw_complex*>(b.data()), direction,
                            FFTW_ESTIMATE | FFTW_UNALIGNED);
  }
  return plan;
}

// out = FFT(in) (forward) or the normalised inverse.
void fft2(int n, const std::vector<cplx>& in, std::vector<cplx>* out, bool inverse) {
  out->resize(in.size());
  fftw_execute_dft(plan_for(n, inverse ? FFTW_BACKWARD : FFTW_FORWARD),
                   reinterpret_cast<fftw_complex*>(const_cast<cplx*>(in.data())),
                   reinterpret_cast<fftw_complex*>(out->data()));
  if (inverse) {
    const double scale = 1.0 / (static_cast<double>(n) * n);
    for (cplx& v : *out) v *= scale;
  }
}

// Frequency of FFT index u in an n-point transform (MATLAB's fftshift(-n/2 : n/2 - 1)).
double freq(int u, int n) { return u < n / 2 ? u : u - n; }

// MATLAB's padarray(x, [p p], 'symmetric') of a side x side image, then 'post' padding (also
// symmetric) up to n x n.
std::vector<cplx> pad_symmetric(const std::vector<double>& x, int side, int p, int n) {
  auto mirror = [side](int i) {
    // Reflect with the edge repeated, as often as needed.
    const int period = 2 * side;
    i %= period;
    if (i < 0) i += period;
    return i < side ? i : period - 1 - i;
  };
  std::vector<cplx> out(static_cast<size_t>(n) * n);
  for (int y = 0; y < n; ++y) {
    for (int xx = 0; xx < n; ++xx) {
      out[static_cast<size_t>(y) * n + xx] =
          x[static_cast<size_t>(mirror(y - p)) * side + mirror(xx - p)];
    }
  }
  return out;
}

// LMgist's prefilt: log, whitening by a Gaussian high-pass (fc = 4) and local contrast
// normalisation, on a symmetric 5-pixel border.
std::vector<double> prefilter(const std::vector<double>& img, int side) {
  const int w = 5;
  const double fc = 4, s1 = fc / std::sqrt(std::log(2.0));
  std::vector<double> logged(img.size());
  for (size_t i = 0; i < img.size(); ++i) logged[i] = std::log(img[i] + 1);
  int n = side + 2 * w;
  n += n % 2;
  std::vector<cplx> x = pad_symmetric(logged, side, w, n);
  std::vector<double> gf(x.size());
  for (int v = 0; v < n; ++v) {
    for (int u = 0; u < n; ++u) {
      const double fx = freq(u, n), fy = freq(v, n);
      gf[static_cast<size_t>(v) * n + u] = std::exp(-(fx * fx + fy * fy) / (s1 * s1));
    }
  }
  std::vector<cplx> f, low;
  fft2(n, x, &f, false);
  for (size_t i = 0; i < f.size(); ++i) f[i] *= gf[i];
  fft2(n, f, &low, true);
  std::vector<cplx> out(x.size()), sq(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    out[i] = x[i].real() - low[i].real();
    sq[i] = out[i].real() * out[i].real();
  }
  fft2(n, sq, &f, false);
  for (size_t i = 0; i < f.size(); ++i) f[i] *= gf[i];
  fft2(n, f, &low, true);
  std::vector<double> cropped(static_cast<size_t>(side) * side);
  for (int y = 0; y < side; ++y) {
    for (int xx = 0; xx < side; ++xx) {
      const size_t i = static_cast<size_t>(y + w) * n + (xx + w);
      const double local_std = std::sqrt(std::abs(low[i]));
      cropped[static_cast<size_t>(y) * side + xx] = out[i].real() / (0.2 + local_std);
    }
  }
  return cropped;
}

// LMgist's createGabor for an n x n transform: filter l = scale * 8 + orientation.
const std::vector<std::vector<double>>& gabor_bank(int n) {
  static std::mutex mutex;
  static std::map<int, std::vector<std::vector<double>>> banks;
  std::lock_guard lock(mutex);
  auto& bank = banks[n];
  if (!bank.empty()) return bank;
  const double pi = std::acos(-1.0);
  for (int scale = 0; scale < kGistScales; ++scale) {
    for (int o = 0; o < kGistOrientations; ++o) {
      const double p1 = 0.35, p2 = 0.3 / std::pow(1.85, scale);
      const double p3 = 16.0 * kGistOrientations * kGistOrientations / (32.0 * 32.0);
      const double p4 = pi / kGistOrientations * o;
      std::vector<double> g(static_cast<size_t>(n) * n);
      for (int v = 0; v < n; ++v) {
        for (int u = 0; u < n; ++u) {
          const double fx = freq(u, n), fy = freq(v, n);
          const double fr = std::sqrt(fx * fx + fy * fy);
          double tr = std::atan2(fy, fx) + p4;
          if (tr < -pi) tr += 2 * pi;
          if (tr > pi) tr -= 2 * pi;
          const double a = fr / n / p2 - 1;
          g[static_cast<size_t>(v) * n + u] = std::exp(-10 * p1 * a * a - 2 * p3 * pi * tr * tr);
        }
      }
      bank.push_back(std::move(g));
    }
  }
  return bank;
}

}  // namespace

std::vector<float> gist_descriptor(const float* image, int side) {
  // LMgist scales the image to [0, 255] first.
  std::vector<double> img(image, image + static_cast<size_t>(side) * side);
  const auto [lo, hi] = std::minmax_element(img.begin(), img.end());
  const double min = *lo, range = *hi - *lo;
  for (double& v : img) v = range > 0 ? 255 * (v - min) / range : 0;
  const std::vector<double> pre = prefilter(img, side);
  const int border = 32;  // LMgist's boundaryExtension
  const int n = side + 2 * border;
  std::vector<cplx> f;
  fft2(n, pad_symmetric(pre, side, border, n), &f, false);
  const auto& bank = gabor_bank(n);
  std::vector<float> out;
  out.reserve(kGistPerChannel);
  std::vector<cplx> filtered(f.size()), response;
  int edges[kGistBlocks + 1];
  for (int k = 0; k <= kGistBlocks; ++k) edges[k] = k * side / kGistBlocks;
  for (const std::vector<double>& g : bank) {
    for (size_t i = 0; i < f.size(); ++i) filtered[i] = f[i] * g[i];
    fft2(n, filtered, &response, true);
    for (int bc = 0; bc < kGistBlocks; ++bc) {
      for (int br = 0; br < kGistBlocks; ++br) {
        double sum = 0;
        for (int y = edges[br]; y < edges[br + 1]; ++y) {
          for (int x = edges[bc]; x < edges[bc + 1]; ++x) {
            sum += std::abs(response[static_cast<size_t>(y + border) * n + (x + border)]);
          }
        }
        const int cells = (edges[br + 1] - edges[br]) * (edges[bc + 1] - edges[bc]);
        out.push_back(static_cast<float>(sum / std::max(cells, 1)));
      }
    }
  }
  return out;
}

#else  // IMSAT_IMAGE_CODECS

std::vector<float> gist_descriptor(const float*, int) { throw std::logic_error(kNoCodecs); }

#endif  // IMSAT_IMAGE_CODECS

}  // namespace imsat::io
