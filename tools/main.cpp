// The `imsat` command line: each subcommand (one file each) parses its flags, calls one library
// entry point and formats the result. main turns every error into one line on stderr and an
// exit code: 1 for runtime errors, 2 for usage errors.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli.h"

#ifndef IMSAT_VERSION
#error "IMSAT_VERSION comes from the CMake project version"
#endif

int main(int argc, char** argv) {
  namespace cli = imsat::cli;
  CLI::App app{"imsat: learned binary hashing (IMSAT) and Hamming search"};
  app.footer(
      "Exit status: 0 on success, 1 on a runtime error (bad data, I/O, a failed operation), 2 on "
      "a usage error.");
  app.set_version_flag("--version", std::string("imsat ") + IMSAT_VERSION);
  app.require_subcommand(1);
  cli::add_info(app);
#ifdef IMSAT_HAVE_LEARN
  cli::add_train(app);
#endif
#ifdef IMSAT_HAVE_QUERY
  cli::add_encode(app);
  cli::add_index(app);
  cli::add_search(app);
  cli::add_eval(app);
  cli::add_cluster(app);
  cli::add_inspect(app);
  cli::add_serve(app);
  cli::add_repair(app);
  cli::add_collections(app);
  cli::add_snapshot(app);
  cli::add_ingest(app);
#endif
  try {
    // Settings from --config files and IMSAT_* variables join the command line first.
    std::vector<std::string> args = cli::with_settings(app, argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(args);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "imsat: error: %s (see --help)\n", e.what());
    return cli::kExitUsageError;
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "imsat: error: %s (see --help)\n", e.what());
    return cli::kExitUsageError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imsat: error: %s\n", e.what());
    return cli::kExitRuntimeError;
  }
  return 0;
}
