// A test fixture with a fresh temporary folder per test, removed afterwards (STYLE.md: tests use
// a fresh temp directory, never a fixed path).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace imsat::testing {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "imsat-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << "cannot create " << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

}  // namespace imsat::testing
