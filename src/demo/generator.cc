#include "demo/generator.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string_view>
#include <utility>

#include "common/files.h"

namespace cr::demo {
namespace {

// The PRNGs below are splitmix64 and xoshiro256**: fast and reproducible from a
// seed, which is what synthetic test data needs. They are NOT cryptographic and
// must never feed a privacy decision (noise, sampling, keys): those use the
// project's CSPRNG. Here the whole point is that the same seed gives the same
// bytes on every machine, so neither std::mt19937's distributions (whose output
// differs between standard libraries) nor randombytes would do.

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A stateless mix: splitmix64's output for a given input.
uint64_t Mix(uint64_t x) { return SplitMix64(x); }

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) w = SplitMix64(seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) by multiply-shift; the bias (< n / 2^64) is irrelevant here.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_;
};

// A seeded bijection of [0, n): i -> (a*i + b) mod n with gcd(a, n) = 1. It
// picks distinct people without materialising a shuffled array of n ids.
class Permutation {
 public:
  Permutation(uint64_t n, uint64_t seed) : n_(n == 0 ? 1 : n) {
    a_ = Mix(seed) % n_;
    if (a_ == 0) a_ = 1;
    while (std::gcd(a_, n_) != 1) a_ = a_ + 1 < n_ ? a_ + 1 : 1;
    b_ = Mix(seed ^ 0x5bd1e995ULL) % n_;
  }
  uint64_t operator()(uint64_t i) const {
    i %= n_;
    // 64-bit arithmetic cannot overflow below 2^32 and avoids a slow 128-bit modulo.
    if (n_ <= (uint64_t{1} << 32)) return (a_ * i + b_) % n_;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(a_) * i + b_) % n_);
  }

 private:
  uint64_t n_, a_ = 1, b_ = 0;
};

constexpr std::string_view kFirstNames[] = {
    "jane",  "john",  "maria", "ahmed", "li",    "olga",  "pierre", "sofia",
    "kenji", "amara", "lucas", "emma",  "noah",  "mia",   "omar",   "chloe",
    "ivan",  "zara",  "tom",   "nina",  "raj",   "elena", "marco",  "hana",
    "leo",   "ines",  "sam",   "yara",  "felix", "ava",   "diego",  "lena"};
constexpr std::string_view kLastNames[] = {
    "doe",    "smith",  "garcia", "khan",   "wang",  "ivanova", "martin",  "rossi",
    "tanaka", "okafor", "silva",  "muller", "brown", "lopez",   "haddad",  "dubois",
    "petrov", "ali",    "jones",  "novak",  "patel", "costa",   "bianchi", "kim",
    "moreau", "santos", "lee",    "nasser", "weber", "clark",   "reyes",   "berg"};
constexpr std::string_view kCampaigns[] = {"spring", "summer", "autumn",   "winter",
                                           "launch", "brand",  "retarget", "holiday"};
constexpr std::string_view kDevices[] = {"mobile", "desktop", "tablet", "ctv"};

// 2026-10-01 .. 2026-12-31.
constexpr int kDays = 92;
constexpr int kMaxCampaigns = static_cast<int>(std::size(kCampaigns));

// "2026-MM-DD" for each day of the range, formatted once.
const std::array<std::array<char, 10>, kDays>& DayStrings() {
  static const auto days = [] {
    std::array<std::array<char, 10>, kDays> out;
    constexpr std::pair<int, int> kMonths[] = {{10, 31}, {11, 30}, {12, 31}};
    int i = 0;
    for (auto [month, len] : kMonths) {
      for (int d = 1; d <= len; ++d) {
        fmt::format_to_n(out[i++].data(), 10, "2026-{:02}-{:02}", month, d);
      }
    }
    return out;
  }();
  return days;
}

using Buffer = fmt::memory_buffer;

// Hand-rolled formatting into a reserved span of the buffer: at 10 million rows,
// fmt's runtime format-string parsing was half the generator's time.
inline char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}
inline char* PutUint(char* p, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}
// Exactly `width` digits, zero-padded (v < 10^width).
inline char* PutFixed(char* p, uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + width;
}

// Longest row: quotes and spaces, the longest names, a 20-digit id, the widest values.
constexpr size_t kMaxRowBytes = 256;

// Calls `write(char*) -> char*` on a span reserved at the end of `out`.
template <typename F>
void AppendRow(Buffer& out, F&& write) {
  const size_t old = out.size();
  out.resize(old + kMaxRowBytes);
  char* end = write(out.data() + old);
  out.resize(static_cast<size_t>(end - out.data()));
}

char* PutCanonicalEmail(char* p, uint64_t person) {
  const uint64_t h = Mix(person);
  p = Put(p, kFirstNames[h % std::size(kFirstNames)]);
  *p++ = '.';
  p = Put(p, kLastNames[(h >> 32) % std::size(kLastNames)]);
  p = PutUint(p, person);
  return Put(p, "@example.com");
}

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// Writes the person's email as the party's raw data would hold it: usually
// canonical, sometimes with the case and spaces a CRM export leaves behind.
char* PutRawEmail(char* p, uint64_t person, Rng& rng) {
  if (rng.Below(10) != 0) return PutCanonicalEmail(p, person);
  const uint64_t style = rng.Below(3);
  // Surrounding spaces are data to a CSV parser, so those fields are quoted.
  if (style == 0) p = Put(p, "\"  ");
  if (style == 2) p = Put(p, "\" ");
  char* start = p;
  p = PutCanonicalEmail(p, person);
  const size_t len = static_cast<size_t>(p - start);
  if (style == 1) {
    for (size_t i = 0; i < len; ++i) start[i] = Upper(start[i]);  // JANE.DOE12@EXAMPLE.COM
  } else {
    // Jane.Doe12@Example.COM
    for (size_t i = 0; i < len; ++i) {
      if (i == 0 || start[i - 1] == '.' || start[i - 1] == '@') start[i] = Upper(start[i]);
    }
    for (size_t i = len - 3; i < len; ++i) start[i] = Upper(start[i]);
  }
  if (style == 0) p = Put(p, " \"");
  if (style == 2) p = Put(p, "  \"");
  return p;
}

// Streams a file to a temporary beside `path` and renames it into place on
// Commit(); dropped without Commit(), it removes the temporary. Holds at most
// one buffer of data in memory however large the file.
class StreamingAtomicFile {
 public:
  static constexpr size_t kFlushAt = 4 << 20;

  explicit StreamingAtomicFile(std::string path) : path_(std::move(path)) {
    buf_.reserve(kFlushAt + (64 << 10));
  }
  ~StreamingAtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }
  StreamingAtomicFile(const StreamingAtomicFile&) = delete;
  StreamingAtomicFile& operator=(const StreamingAtomicFile&) = delete;

  Status Open() {
    std::string tmpl = path_ + ".tmp-XXXXXX";
    fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd_ < 0) {
      return Fail(ErrorCode::FILE_UNREADABLE, "cannot create a file beside {}: {}", path_,
                  strerror(errno));
    }
    tmp_ = std::move(tmpl);
    if (::fchmod(fd_, 0644) != 0) {
      return Fail(ErrorCode::INTERNAL, "cannot set mode of {}: {}", path_, strerror(errno));
    }
    return Ok();
  }

  Buffer& buf() { return buf_; }

  Status MaybeFlush() { return buf_.size() >= kFlushAt ? Flush() : Ok(); }

  Status Commit() {
    CR_TRY(Flush());
    if (::fsync(fd_) != 0) {
      return Fail(ErrorCode::INTERNAL, "cannot sync {}: {}", path_, strerror(errno));
    }
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return Fail(ErrorCode::INTERNAL, "cannot replace {}: {}", path_, strerror(errno));
    }
    tmp_.clear();
    return SyncDir(DirName(path_));
  }

 private:
  Status Flush() {
    const char* p = buf_.data();
    size_t left = buf_.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(ErrorCode::INTERNAL, "cannot write {}: {}", path_, strerror(errno));
      p += n;
      left -= static_cast<size_t>(n);
    }
    buf_.clear();
    return Ok();
  }

  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  Buffer buf_;
};

Status Validate(const GeneratorOptions& o) {
  if (o.people < 1) return Fail(ErrorCode::USAGE, "people must be at least 1");
  if (o.impressions < 0) return Fail(ErrorCode::USAGE, "impressions must not be negative");
  if (o.purchases < 0) return Fail(ErrorCode::USAGE, "purchases must not be negative");
  if (!(o.buyer_overlap >= 0 && o.buyer_overlap <= 1)) {
    return Fail(ErrorCode::USAGE, "buyer overlap must be in [0, 1]");
  }
  if (o.campaigns < 1 || o.campaigns > kMaxCampaigns) {
    return Fail(ErrorCode::USAGE, "campaigns must be in 1..{}", kMaxCampaigns);
  }
  return Ok();
}

// Independent streams per file and purpose, so changing one file's row count
// does not reshuffle the other file.
constexpr uint64_t kImpressionStream = 0x696d7072ULL;  // "impr"
constexpr uint64_t kPurchaseStream = 0x70757263ULL;    // "purc"
constexpr uint64_t kAudienceOrder = 0x61756469ULL;     // "audi"
constexpr uint64_t kBuyerPick = 0x62757965ULL;         // "buye"
constexpr uint64_t kCustomerOrder = 0x63757374ULL;     // "cust"

}  // namespace

std::string PersonEmail(int64_t person) {
  char buf[kMaxRowBytes];
  char* end = PutCanonicalEmail(buf, static_cast<uint64_t>(person));
  return std::string(buf, end);
}

Status WriteImpressionsCsv(const GeneratorOptions& o, const std::string& path) {
  CR_TRY(Validate(o));
  StreamingAtomicFile file(path);
  CR_TRY(file.Open());
  Buffer& out = file.buf();
  fmt::format_to(fmt::appender(out), "email,campaign,shown_at,cost,device\n");

  const auto& days = DayStrings();
  const uint64_t people = static_cast<uint64_t>(o.people);
  const uint64_t rows = static_cast<uint64_t>(o.impressions);
  const Permutation audience(people, Mix(o.seed ^ kAudienceOrder));
  Rng rng(Mix(o.seed ^ kImpressionStream));
  for (uint64_t i = 0; i < rows; ++i) {
    uint64_t person;
    if (i < people) {
      person = audience(i);  // everyone in the audience shows up once
    } else {
      // u^3 puts most extra impressions on the first few people of the order:
      // P(rank < x * people) = x^(1/3), so 10% of the audience sees ~46% of them.
      const double u = rng.Unit();
      person = audience(static_cast<uint64_t>(static_cast<double>(people) * u * u * u));
    }
    AppendRow(out, [&](char* p) {
      p = PutRawEmail(p, person, rng);
      *p++ = ',';
      p = Put(p, kCampaigns[rng.Below(static_cast<uint64_t>(o.campaigns))]);
      *p++ = ',';
      const auto& day = days[rng.Below(kDays)];
      p = Put(p, {day.data(), day.size()});
      const uint64_t second = rng.Below(86400);
      *p++ = ' ';
      p = PutFixed(p, second / 3600, 2);
      *p++ = ':';
      p = PutFixed(p, second / 60 % 60, 2);
      *p++ = ':';
      p = PutFixed(p, second % 60, 2);
      const uint64_t cost = rng.Below(50000);  // ten-thousandths: [0, 5) with 4 decimals
      *p++ = ',';
      p = PutUint(p, cost / 10000);
      *p++ = '.';
      p = PutFixed(p, cost % 10000, 4);
      *p++ = ',';
      p = Put(p, kDevices[rng.Below(std::size(kDevices))]);
      *p++ = '\n';
      return p;
    });
    CR_TRY(file.MaybeFlush());
  }
  return file.Commit();
}

Status WritePurchasesCsv(const GeneratorOptions& o, const std::string& path) {
  CR_TRY(Validate(o));
  StreamingAtomicFile file(path);
  CR_TRY(file.Open());
  Buffer& out = file.buf();
  fmt::format_to(fmt::appender(out), "email,amount,day,store_id\n");

  const auto& days = DayStrings();
  const uint64_t people = static_cast<uint64_t>(o.people);
  const uint64_t rows = static_cast<uint64_t>(o.purchases);
  const uint64_t pool = std::max<uint64_t>(1, rows / 2);
  const uint64_t shared = std::min<uint64_t>(
      people, static_cast<uint64_t>(std::llround(static_cast<double>(pool) * o.buyer_overlap)));
  // Customers 0..shared-1 are distinct audience members; the rest get ids past
  // the audience, so their emails appear in no impression row.
  const Permutation buyers_in_audience(people, Mix(o.seed ^ kBuyerPick));
  const Permutation customer_order(pool, Mix(o.seed ^ kCustomerOrder));
  auto person_of = [&](uint64_t customer) {
    return customer < shared ? buyers_in_audience(customer) : people + (customer - shared);
  };
  Rng rng(Mix(o.seed ^ kPurchaseStream));
  for (uint64_t i = 0; i < rows; ++i) {
    uint64_t customer;
    if (i < pool) {
      customer = customer_order(i);  // every customer buys at least once
    } else {
      const double u = rng.Unit();  // repeat buyers: a few buy often
      customer = customer_order(static_cast<uint64_t>(static_cast<double>(pool) * u * u));
    }
    AppendRow(out, [&](char* p) {
      p = PutRawEmail(p, person_of(customer), rng);
      const uint64_t cents = 100 + rng.Below(49900);  // [1.00, 499.99]
      *p++ = ',';
      p = PutUint(p, cents / 100);
      *p++ = '.';
      p = PutFixed(p, cents % 100, 2);
      *p++ = ',';
      const auto& day = days[rng.Below(kDays)];
      p = Put(p, {day.data(), day.size()});
      *p++ = ',';
      p = PutUint(p, 1 + rng.Below(250));
      *p++ = '\n';
      return p;
    });
    CR_TRY(file.MaybeFlush());
  }
  return file.Commit();
}

}  // namespace cr::demo
