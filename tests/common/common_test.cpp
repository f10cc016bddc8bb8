// src/common: IMSAT_ASSIGN_OR_RETURN, the FNV-1a checksum, code-length checks and the atomic file
// write (including a crash between the write and the rename).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/code_bits.h"
#include "common/status.h"
#include "support/temp_dir_test.h"

namespace {

using imsat::Result;
using imsat::Status;

Result<int> parse_positive(int v) {
  if (v <= 0) return Status::invalid_argument("not positive: " + std::to_string(v));
  return v;
}
Result<int> doubled(int v) {
  IMSAT_ASSIGN_OR_RETURN(const int x, parse_positive(v));
  return 2 * x;
}

TEST(AssignOrReturn, PassesValuesAndReturnsErrors) {
  ASSERT_TRUE(doubled(4).is_ok());
  EXPECT_EQ(*doubled(4), 8);
  const Result<int> bad = doubled(-1);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "not positive: -1");
}

TEST(Checksum, MatchesValuesComputedIndependently) {
  // FNV-1a with the project's offset basis (checksum.h), computed with Python's integers.
  EXPECT_EQ(imsat::fnv1a64(""), 0x14650fb0739d0383ULL);
  EXPECT_EQ(imsat::fnv1a64("a"), 0x44bd8ad473cd9906ULL);
  EXPECT_EQ(imsat::fnv1a64("foobar"), 0x88fad7c0a8ff07f2ULL);
  // A running checksum over two parts equals the checksum of the whole.
  EXPECT_EQ(imsat::fnv1a64("bar", imsat::fnv1a64("foo")), imsat::fnv1a64("foobar"));
}

TEST(CodeBits, AcceptsMultiplesOfEightUpTo1024) {
  EXPECT_TRUE(imsat::check_code_bits(8).is_ok());
  EXPECT_TRUE(imsat::check_code_bits(1024).is_ok());
  for (int bad : {0, 4, 12, 1032, -8}) {
    const Status s = imsat::check_code_bits(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::to_string(bad)), std::string::npos) << s.message();
  }
}

class AtomicFileTest : public imsat::testing::TempDirTest {
 protected:
  std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
};

TEST_F(AtomicFileTest, ReplacesTheWholeFile) {
  const std::string path = (dir_ / "f.bin").string();
  ASSERT_TRUE(imsat::write_file_atomically(path, "first").is_ok());
  ASSERT_TRUE(imsat::write_file_atomically(path, "second, longer").is_ok());
  EXPECT_EQ(read(path), "second, longer");
  // No temporary file is left beside it.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(AtomicFileTest, ACrashBeforeTheRenameLeavesTheOldContents) {
  const std::string path = (dir_ / "f.bin").string();
  ASSERT_TRUE(imsat::write_file_atomically(path, "old contents").is_ok());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The process dies after the new bytes are written and synced, before the rename.
    (void)imsat::write_file_atomically(path, "new contents", [] { _exit(42); });
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42);  // it really died between write and rename
  EXPECT_EQ(read(path), "old contents");
  // The next write succeeds despite the temporary file the crash left.
  ASSERT_TRUE(imsat::write_file_atomically(path, "after").is_ok());
  EXPECT_EQ(read(path), "after");
}

TEST_F(AtomicFileTest, AMissingFolderIsAnIoErrorNamingTheFile) {
  const std::string path = (dir_ / "no" / "such" / "f.bin").string();
  const Status s = imsat::write_file_atomically(path, "x");
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find("f.bin"), std::string::npos) << s.message();
}

}  // namespace
