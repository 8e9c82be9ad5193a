#include "common/files.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "common/env.h"
#include "testing/temp_dir.h"

namespace cr {
namespace {

using testing::TempDir;

TEST(FilesTest, AtomicWriteReplacesAndLeavesNoTemporaries) {
  TempDir dir;
  std::string p = dir / "f";
  ASSERT_TRUE(WriteFileAtomic(p, "one"));
  ASSERT_TRUE(WriteFileAtomic(p, "two", 0600));
  EXPECT_EQ(*ReadFile(p), "two");
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(testing::Snapshot(dir.path()).size(), 1u);
}

TEST(FilesTest, RefuseOverwriteKeepsOldBytes) {
  TempDir dir;
  std::string p = dir / "f";
  ASSERT_TRUE(WriteFileAtomic(p, "old", 0644, Overwrite::kRefuse));
  auto st = WriteFileAtomic(p, "new", 0644, Overwrite::kRefuse);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::FILE_EXISTS);
  EXPECT_EQ(*ReadFile(p), "old");
  EXPECT_EQ(testing::Snapshot(dir.path()).size(), 1u);
}

TEST(FilesTest, PiecewiseWriterCommitsOrLeavesNothing) {
  TempDir dir;
  const std::string path = dir / "big";
  {
    auto w = AtomicFileWriter::Create(path, 0600);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("first "));
    ASSERT_TRUE(w->Write("second"));
    EXPECT_EQ(w->bytes_written(), 12u);
    EXPECT_FALSE(PathExists(path));  // nothing at `path` before Commit
  }  // dropped without Commit: the temporary file goes too
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  auto w = AtomicFileWriter::Create(path, 0600);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Write("whole"));
  ASSERT_TRUE(w->Commit());
  EXPECT_EQ(*ReadFile(path), "whole");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(w->Write("more"));  // closed once committed
  auto again = AtomicFileWriter::Create(path, 0600);
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->Write("other"));
  auto refused = again->Commit(Overwrite::kRefuse);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::FILE_EXISTS);
  EXPECT_EQ(*ReadFile(path), "whole");
}

TEST(FilesTest, ReadMissingIsUnreadable) {
  auto r = ReadFile("/nonexistent/file");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::FILE_UNREADABLE);
}

TEST(FilesTest, AppendAddsLines) {
  TempDir dir;
  std::string p = dir / "log";
  ASSERT_TRUE(AppendLineDurable(p, "a"));
  ASSERT_TRUE(AppendLineDurable(p, "b"));
  EXPECT_EQ(*ReadFile(p), "a\nb\n");
}

TEST(FilesTest, HexRoundTrip) {
  std::string out;
  EXPECT_EQ(ToHex(std::string("\x00\xff\x10", 3)), "00ff10");
  ASSERT_TRUE(FromHex("00ff10", &out));
  EXPECT_EQ(out, std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(FromHex("0g", &out));
  EXPECT_FALSE(FromHex("abc", &out));
}

TEST(FilesTest, NowIsTheDefaultClock) {
  // Without an installed override the free functions read the system clock.
  long long before = SystemClock().NowUnix();
  long long now = NowUnix();
  EXPECT_GE(now, before);
  EXPECT_GT(now, 1700000000LL);  // not the epoch
  EXPECT_EQ(NowRfc3339().size(), 20u);
}

}  // namespace
}  // namespace cr
