// File access: whole-file reads, atomic writes (write, fsync, rename) and
// durable appends. Every write in the room goes through here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cr {

// Reads the whole file. FILE_UNREADABLE when it is missing or unreadable.
Result<std::string> ReadFile(const std::string& path);

enum class Overwrite { kAllow, kRefuse };

// Writes `data` to a temporary file beside `path`, fsyncs it, then renames it
// over `path` and fsyncs the directory: readers see the old bytes or the new,
// never half. With Overwrite::kRefuse an existing `path` is an error
// (FILE_EXISTS) and is left untouched (the final step is link(), not rename()).
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                       Overwrite overwrite = Overwrite::kAllow);

// The same guarantee for data written piece by piece (files too large to hold
// whole): a temporary file beside `path` (mode set before the first byte),
// removed unless Commit() fsyncs it, moves it into place and fsyncs the
// directory. Move-only.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> Create(const std::string& path, mode_t mode = 0644);
  ~AtomicFileWriter();
  AtomicFileWriter(AtomicFileWriter&& o) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status Write(std::string_view data);
  uint64_t bytes_written() const { return written_; }
  // FILE_EXISTS with Overwrite::kRefuse when `path` exists (link(), not rename()).
  Status Commit(Overwrite overwrite = Overwrite::kAllow);

 private:
  AtomicFileWriter() = default;
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// Appends one line (a '\n' is added) with O_APPEND and fsyncs.
Status AppendLineDurable(const std::string& path, std::string_view line, mode_t mode = 0644);

// Removes a file and fsyncs its directory; a missing file is not an error.
Status RemoveFileDurable(const std::string& path);

// Creates a directory (and parents) with `mode`.
Status MakeDirs(const std::string& path, mode_t mode = 0755);

// fsyncs a directory so a rename or unlink inside it is durable.
Status SyncDir(const std::string& dir);

bool PathExists(const std::string& path);

// Directory part of a path ("." when there is none).
std::string DirName(const std::string& path);

// `rel` resolved against the directory `base_dir` unless it is absolute.
std::string JoinPath(const std::string& base_dir, const std::string& rel);

// DefaultClock() (common/env.h) for code that is not handed a Clock.
long long NowUnix();
std::string NowRfc3339();

std::string ToHex(std::string_view bytes);
// Empty optional-like failure: returns false when `hex` is not valid hex.
bool FromHex(std::string_view hex, std::string* out);

}  // namespace cr
