// Helpers shared by the `imsat` subcommands (tools/ only).
#pragma once

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/status.h"

namespace imsat::cli {

// Subcommands may throw: main turns this into one line on stderr and a non-zero exit.
inline void check(const Status& s) {
  if (!s.is_ok()) throw std::runtime_error(s.message());
}
template <typename T>
T take(Result<T> r) {
  check(r.status());
  return std::move(r).value();
}

inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

inline std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  }
  return buf;
}

// "what: [#####   ] 40% 28000/70000 items  ETA 0m03s" on stderr, redrawn at most 4 times a
// second on a terminal; without a terminal only the final line is printed.
class ItemProgress {
 public:
  ItemProgress(std::string what, size_t total, bool quiet)
      : what_(std::move(what)), total_(total), quiet_(quiet), tty_(isatty(2)),
        t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  void update(size_t done) {
    if (quiet_ || !tty_) return;
    const double now = seconds();
    if (done < total_ && now - last_ < 0.25) return;
    last_ = now;
    const double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
    const double eta = frac > 0 ? now * (1 - frac) / frac : 0;
    const int width = 24;
    std::string bar(static_cast<size_t>(frac * width), '#');
    bar.resize(width, ' ');
    std::fprintf(stderr, "\r\033[K%s: [%s] %3.0f%% %zu/%zu items  ETA %s", what_.c_str(),
                 bar.c_str(), frac * 100, done, total_, format_duration(eta).c_str());
    std::fflush(stderr);
  }
  void finish(size_t done) {
    if (quiet_) return;
    const double s = seconds();
    std::fprintf(stderr, "%s%s: %zu items in %.2f s (%.0f items/s)\n", tty_ ? "\r\033[K" : "",
                 what_.c_str(), done, s, s > 0 ? double(done) / s : 0.0);
  }

 private:
  std::string what_;
  size_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point t0_;
  double last_ = -1;
};

// Subcommands defined outside imsat.cpp.
void add_encode(CLI::App& app);
void add_index(CLI::App& app);
void add_search(CLI::App& app);
void add_serve(CLI::App& app);

// A precision-recall plot (SVG) of several curves: one (label, recall[], precision[]) each.
struct PlotCurve {
  std::string label;
  std::vector<double> recall, precision;
};
void write_pr_svg(const std::string& path, const std::string& title,
                  const std::vector<PlotCurve>& curves);

}  // namespace imsat::cli
