// `imsat info`: the build's version, LibTorch, BLAS, CUDA and the chosen Hamming kernel.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#ifdef IMSAT_HAVE_LEARN
#include "learn/learn.h"
#endif
#ifdef IMSAT_HAVE_INDEX
// The one index header a front-end includes: `info` reports the kernel in builds without LibTorch
// too, where there is no query library to ask.
#include "index/hamming.h"
#endif

namespace imsat::cli {

void add_info(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("info", "Print the build's libraries and chosen kernels");
  cmd->add_flag("--json", *json, "JSON on stdout");
  cmd->callback([json] {
    nlohmann::json j = {{"version", IMSAT_VERSION}};
#ifdef IMSAT_HAVE_LEARN
    const learn::BlasInfo blas = learn::linked_blas();
    j["libtorch"] = learn::torch_version();
    j["blas"] = {{"name", blas.name}, {"library", blas.library_path}};
    j["cuda"] = learn::cuda_available();
#endif
#ifdef IMSAT_HAVE_INDEX
    j["hamming_kernel"] = std::string(index::active_kernel_name());
#endif
    if (*json) {
      print_json_line(j.dump());
      return;
    }
    std::cout << "imsat " << IMSAT_VERSION << "\n";
#ifdef IMSAT_HAVE_LEARN
    std::cout << "libtorch: " << learn::torch_version() << "\n"
              << "blas: " << blas.name << " (" << blas.library_path << ")\n"
              << "cuda: " << (learn::cuda_available() ? "available" : "not available") << "\n";
#endif
#ifdef IMSAT_HAVE_INDEX
    std::cout << "hamming kernel: " << index::active_kernel_name() << "\n";
#endif
  });
}

}  // namespace imsat::cli
