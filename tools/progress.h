// The one progress bar of the command line, on stderr: for items ("index: [####    ] 40%
// 28000/70000 items  ETA 0m03s") and for training (the plan, then the bar with every loss term
// and one line per epoch). Redrawn at most 4 times a second on a terminal; without a terminal
// only the final line (items) or a line every 5 seconds with the ETA (training) is printed.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "learn/learn.h"

namespace imsat::cli {

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

class ProgressBar {
 public:
  ProgressBar(std::string what, bool quiet)
      : what_(std::move(what)),
        quiet_(quiet),
        tty_(isatty(2) != 0),
        t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

  void items(size_t done, size_t total) {
    if (quiet_ || !tty_) return;
    const double now = seconds();
    if (done < total && now - last_ < 0.25) return;
    last_ = now;
    const double frac = total > 0 ? double(done) / double(total) : 1.0;
    char detail[96];
    std::snprintf(detail, sizeof(detail), "%zu/%zu items  %.0f/s", done, total,
                  now > 0 ? double(done) / now : 0.0);
    draw(frac, detail, now);
  }
  void finish_items(size_t done) {
    if (quiet_) return;
    const double s = seconds();
    std::fprintf(stderr, "%s%s: %zu items in %.2f s (%.0f items/s)\n", tty_ ? "\r\033[K" : "",
                 what_.c_str(), done, s, s > 0 ? double(done) / s : 0.0);
  }

  // A training run's step and epoch reports (learn::TrainConfig::on_progress). Once the first
  // steps are timed (20 steps and 1 s, or 5 s), one line gives the plan: steps, epochs, batch and
  // the estimated time. On a terminal the bar is redrawn; through a pipe a line (epoch, every loss
  // term, elapsed time and ETA) is printed at most every 5 seconds, and at the end.
  void training(const learn::Progress& p, bool epoch_end, bool clustering, int batch) {
    if (quiet_) return;
    const bool last = p.step >= p.total_steps && epoch_end;
    // The first steps are slower (allocation, caches): the estimate waits for 20 of them, or 5 s.
    if (!planned_ && ((p.step >= 20 && p.seconds >= 1) || p.seconds >= 5 || last)) {
      planned_ = true;
      const double eta = p.step > 0 ? p.seconds * double(p.total_steps - p.step) / p.step : 0;
      const int64_t per_epoch = p.epochs > 0 ? (p.total_steps + p.epochs - 1) / p.epochs : 0;
      std::fprintf(stderr,
                   "%s%s plan: %lld steps = %d epochs of %lld batches of %d; about %s more "
                   "(%.3f s a step over the first %lld)\n",
                   tty_ ? "\r\033[K" : "", what_.c_str(), static_cast<long long>(p.total_steps),
                   p.epochs, static_cast<long long>(per_epoch), batch, format_duration(eta).c_str(),
                   p.step > 0 ? p.seconds / double(p.step) : 0.0, static_cast<long long>(p.step));
      std::fflush(stderr);
    }
    char terms[160];
    if (clustering) {
      std::snprintf(terms, sizeof(terms), "loss %.4f sat %.4f H(Y|X) %.3f H(Y) %.3f", p.loss, p.sat,
                    p.cond_entropy, p.marg_entropy);
    } else {
      std::snprintf(terms, sizeof(terms), "loss %.4f sat %.4f H(Y|X) %.3f H(Y) %.3f MI %.3f",
                    p.loss, p.sat, p.cond_entropy, p.marg_entropy, p.pair_mi);
    }
    const double frac = p.total_steps > 0 ? double(p.step) / double(p.total_steps) : 1.0;
    if (!tty_) {
      if (!last && p.seconds - last_ < 5) return;
      last_ = p.seconds;
      const double eta = frac > 0 ? p.seconds * (1 - frac) / frac : 0;
      std::fprintf(stderr, "%s epoch %d/%d step %lld/%lld  %s  %s elapsed, ETA %s\n", what_.c_str(),
                   p.epoch, p.epochs, static_cast<long long>(p.step),
                   static_cast<long long>(p.total_steps), terms, format_duration(p.seconds).c_str(),
                   format_duration(eta).c_str());
      std::fflush(stderr);
      return;
    }
    if (epoch_end) {
      std::fprintf(stderr, "\r\033[K%s epoch %d/%d  %s  %s elapsed\n", what_.c_str(), p.epoch,
                   p.epochs, terms, format_duration(p.seconds).c_str());
      std::fflush(stderr);
      return;
    }
    if (p.seconds - last_ < 0.25) return;
    last_ = p.seconds;
    const std::string detail =
        "epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs) + "  " + terms;
    draw(frac, detail, p.seconds);
  }
  // A callback for learn::TrainConfig::on_progress that draws into this bar.
  auto training_callback(bool clustering, int batch) {
    return [this, clustering, batch](const learn::Progress& p, bool epoch_end) {
      training(p, epoch_end, clustering, batch);
    };
  }

 private:
  void draw(double frac, const std::string& detail, double elapsed) {
    const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    const int width = 24;
    std::string bar(static_cast<size_t>(frac * width), '#');
    bar.resize(width, ' ');
    std::fprintf(stderr, "\r\033[K%s: [%s] %3.0f%% %s  ETA %s", what_.c_str(), bar.c_str(),
                 frac * 100, detail.c_str(), format_duration(eta).c_str());
    std::fflush(stderr);
  }

  std::string what_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point t0_;
  double last_ = -1;
  bool planned_ = false;
};

}  // namespace imsat::cli
