#include "clickhouse/row_binary.h"

#include <cstring>

namespace cr::clickhouse {

void RowBinary::Float64(double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  Fixed(bits, 8);
}

void RowBinary::String(std::string_view s) {
  uint64_t n = s.size();
  do {
    uint8_t b = n & 0x7f;
    n >>= 7;
    out_->push_back(static_cast<char>(n ? b | 0x80 : b));
  } while (n);
  out_->append(s);
}

void RowBinary::Uuid(const std::array<uint8_t, 16>& bytes) {
  for (int half = 0; half < 2; ++half) {
    for (int i = 7; i >= 0; --i) out_->push_back(static_cast<char>(bytes[8 * half + i]));
  }
}

}  // namespace cr::clickhouse
