#include "common/files.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/env.h"

namespace cr {
namespace {

std::string Errno() { return std::string(strerror(errno)); }

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::INTERNAL, "cannot write {}: {}", path, Errno());
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}: {}", path, Errno());
  // Read straight into a buffer of the file's size: no bounce buffer, no
  // regrowth (each fresh page costs a fault, dear on a virtual machine).
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    out.resize(static_cast<size_t>(st.st_size) + 1);  // +1: sees the end in one read
  } else {
    out.resize(size_t{1} << 16);
  }
  size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}: {}", path, strerror(e));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(used);
  return out;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open directory {}: {}", dir, Errno());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Fail(ErrorCode::INTERNAL, "cannot sync directory {}: {}", dir, Errno());
  return Ok();
}

Result<AtomicFileWriter> AtomicFileWriter::Create(const std::string& path, mode_t mode) {
  AtomicFileWriter w;
  w.path_ = path;
  w.tmp_ = path + ".tmp-XXXXXX";
  w.fd_ = ::mkostemp(w.tmp_.data(), O_CLOEXEC);
  if (w.fd_ < 0) {
    w.tmp_.clear();
    return Fail(ErrorCode::INTERNAL, "cannot create a file beside {}: {}", path, Errno());
  }
  if (::fchmod(w.fd_, mode) != 0) {
    return Fail(ErrorCode::INTERNAL, "cannot set mode of {}: {}", path, Errno());
  }
  return w;
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& o) noexcept
    : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), fd_(o.fd_), written_(o.written_),
      committed_(o.committed_) {
  o.fd_ = -1;
  o.tmp_.clear();
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

Status AtomicFileWriter::Write(std::string_view data) {
  if (fd_ < 0) return Fail(ErrorCode::INTERNAL, "{} is already closed", path_);
  CR_TRY(WriteAll(fd_, data, path_));
  written_ += data.size();
  return Ok();
}

Status AtomicFileWriter::Commit(Overwrite overwrite) {
  if (fd_ < 0) return Fail(ErrorCode::INTERNAL, "{} is already closed", path_);
  int fd = fd_;
  fd_ = -1;
  bool synced = ::fsync(fd) == 0;
  if (::close(fd) != 0 || !synced) {
    return Fail(ErrorCode::INTERNAL, "cannot sync {}: {}", path_, Errno());
  }
  if (overwrite == Overwrite::kRefuse) {
    // link() fails if the target exists, so a concurrent writer cannot be clobbered.
    if (::link(tmp_.c_str(), path_.c_str()) != 0) {
      int e = errno;
      if (e == EEXIST) {
        return Fail(ErrorCode::FILE_EXISTS, "{} already exists; refusing to overwrite it", path_);
      }
      return Fail(ErrorCode::INTERNAL, "cannot create {}: {}", path_, strerror(e));
    }
    ::unlink(tmp_.c_str());
  } else if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    return Fail(ErrorCode::INTERNAL, "cannot replace {}: {}", path_, Errno());
  }
  committed_ = true;
  return SyncDir(DirName(path_));
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                       Overwrite overwrite) {
  if (overwrite == Overwrite::kRefuse && PathExists(path)) {
    return Fail(ErrorCode::FILE_EXISTS, "{} already exists; refusing to overwrite it", path);
  }
  CR_ASSIGN(auto w, AtomicFileWriter::Create(path, mode));
  CR_TRY(w.Write(data));
  return w.Commit(overwrite);
}

Status AppendLineDurable(const std::string& path, std::string_view line, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);
  if (fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open {}: {}", path, Errno());
  std::string buf(line);
  buf.push_back('\n');
  auto st = WriteAll(fd, buf, path);
  if (st && ::fsync(fd) != 0) st = Fail(ErrorCode::INTERNAL, "cannot sync {}: {}", path, Errno());
  ::close(fd);
  return st;
}

Status RemoveFileDurable(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Fail(ErrorCode::INTERNAL, "cannot remove {}: {}", path, Errno());
  }
  return SyncDir(DirName(path));
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Fail(ErrorCode::INTERNAL, "cannot create directory {}: {}", path, ec.message());
  ::chmod(path.c_str(), mode);
  return Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string JoinPath(const std::string& base_dir, const std::string& rel) {
  if (!rel.empty() && rel[0] == '/') return rel;
  if (base_dir.empty() || base_dir == ".") return rel;
  return base_dir + "/" + rel;
}

long long NowUnix() { return DefaultClock().NowUnix(); }

std::string NowRfc3339() { return DefaultClock().NowRfc3339(); }

std::string ToHex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2) return false;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = val(hex[i]), lo = val(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

}  // namespace cr
