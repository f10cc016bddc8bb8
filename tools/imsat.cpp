// The `imsat` command line. Each subcommand parses its flags and calls one library entry point;
// main catches every error, prints one line to stderr and returns non-zero.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>

#ifdef IMSAT_HAVE_LEARN
#include "learn/learn.h"
#endif
#ifdef IMSAT_HAVE_INDEX
#include "index/hamming.h"
#endif

namespace {

void run_info() {
  std::cout << "imsat 0.1.0\n";
#ifdef IMSAT_HAVE_LEARN
  imsat::learn::BlasInfo blas = imsat::learn::linked_blas();
  std::cout << "libtorch: " << imsat::learn::torch_version() << "\n"
            << "blas: " << blas.name << " (" << blas.library_path << ")\n";
#endif
#ifdef IMSAT_HAVE_INDEX
  std::cout << "hamming kernel: " << imsat::index::active_kernel_name() << "\n";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"imsat: learned binary hashing (IMSAT) and Hamming search"};
  app.require_subcommand(1);
  CLI::App* info = app.add_subcommand("info", "Print the build's libraries and chosen kernels");
  info->callback(run_info);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imsat: %s\n", e.what());
    return 1;
  }
  return 0;
}
