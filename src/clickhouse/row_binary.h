// ClickHouse's RowBinary format, the columns the room loads: each value
// little-endian, strings as a LEB128 length and the bytes, Nullable(T) as one
// byte (1 = NULL) before T, UUID as its two 64-bit halves, high half first,
// each little-endian (the layout 18.16 and current releases share).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cr::clickhouse {

class RowBinary {
 public:
  explicit RowBinary(std::string* out) : out_(out) {}
  void Null(bool is_null) { out_->push_back(is_null ? '\1' : '\0'); }
  void UInt8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void Int64(int64_t v) { Fixed(static_cast<uint64_t>(v), 8); }
  void UInt16(uint16_t v) { Fixed(v, 2); }
  void UInt32(uint32_t v) { Fixed(v, 4); }
  void Float64(double v);
  void String(std::string_view s);
  // The 16 bytes of a UUID in its text order (00112233-4455-...).
  void Uuid(const std::array<uint8_t, 16>& bytes);

 private:
  void Fixed(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string* out_;
};

}  // namespace cr::clickhouse
