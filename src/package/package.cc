#include "package/package.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>
#include <thread>

#include "common/files.h"

namespace cr::package {
namespace {

constexpr char kChunkRecord = 'C';
constexpr std::string_view kSignatureDomain{"cleanroom-package-v1\0", 21};
constexpr char kSignatureRecord = 'S';

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

nlohmann::json Header::ToJson() const {
  nlohmann::json schema_json = nlohmann::json::array();
  for (const auto& c : schema) {
    schema_json.push_back({{"name", c.name}, {"type", c.type}, {"role", c.role}});
  }
  return {{"format", "cleanroom-package-v1"},
          {"package_id", package_id},
          {"collaboration", collaboration},
          {"spec_hash", spec_hash},
          {"dataset", dataset},
          {"signer", signer},
          {"room_key", room_key},
          {"created_at", created_at},
          {"row_count", row_count},
          {"plaintext_bytes", plaintext_bytes},
          {"chunk_size", kChunkSize},
          {"cipher", "xchacha20poly1305-secretstream"},
          {"pseudonyms", "hmac-sha256/128 under hkdf-sha256(secret, salt=collaboration, "
                         "info=cleanroom/pseudonym/v1/<column>)"},
          {"schema", schema_json},
          {"sealed_data_key", crypto::Base64Encode(sealed_data_key)},
          {"stream_header", crypto::Base64Encode(stream_header)}};
}

Result<Header> Header::FromJson(const nlohmann::json& j) {
  try {
    if (!j.is_object() || j.at("format") != "cleanroom-package-v1") {
      return Fail(ErrorCode::TAMPERED, "not a cleanroom package (unknown format)");
    }
    Header h;
    h.package_id = j.at("package_id").get<std::string>();
    h.collaboration = j.at("collaboration").get<std::string>();
    h.spec_hash = j.at("spec_hash").get<std::string>();
    h.dataset = j.at("dataset").get<std::string>();
    h.signer = j.at("signer").get<std::string>();
    h.room_key = j.at("room_key").get<std::string>();
    h.created_at = j.at("created_at").get<std::string>();
    h.row_count = j.at("row_count").get<int64_t>();
    h.plaintext_bytes = j.at("plaintext_bytes").get<uint64_t>();
    if (j.at("chunk_size").get<uint64_t>() != kChunkSize) {
      return Fail(ErrorCode::TAMPERED, "package chunk size is not {}", kChunkSize);
    }
    for (const auto& c : j.at("schema")) {
      h.schema.push_back({c.at("name").get<std::string>(), c.at("type").get<std::string>(),
                          c.at("role").get<std::string>()});
    }
    auto key = crypto::Base64Decode(j.at("sealed_data_key").get<std::string>());
    auto sh = crypto::Base64Decode(j.at("stream_header").get<std::string>());
    if (!key || !sh) return Fail(ErrorCode::TAMPERED, "package header has malformed keys");
    h.sealed_data_key = *key;
    h.stream_header = *sh;
    if (h.package_id.size() != 32) return Fail(ErrorCode::TAMPERED, "malformed package id");
    return h;
  } catch (const nlohmann::json::exception&) {
    return Fail(ErrorCode::TAMPERED, "package header is malformed");
  }
}

// ----- Writer ------------------------------------------------------------------------

// Encryption runs on the caller's thread; hashing (for the signature) and
// writing run on a second thread, so the two overlap.
struct Writer::State {
  std::string path;
  std::string tmp_path;
  int fd = -1;
  std::string ad;  // SHA-256 of the header bytes: binds every chunk to this header
  std::unique_ptr<crypto::StreamEncryptor> enc;
  crypto::Blake2bStream digest;
  std::string pending;  // plaintext not yet in a chunk
  std::string out;      // signed bytes not yet handed to the writer thread
  uint64_t written = 0;
  bool finished = false;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  std::vector<std::string> spare;  // written buffers, reused so big chunks are not re-faulted
  bool closing = false;
  std::optional<Error> write_error;
  std::thread writer;

  ~State() {
    StopWriter();
    if (fd >= 0) ::close(fd);
    if (!finished && !tmp_path.empty()) ::unlink(tmp_path.c_str());
    if (!pending.empty()) sodium_memzero(pending.data(), pending.size());
  }

  void StartWriter() {
    writer = std::thread([this] {
      for (;;) {
        std::string buf;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return closing || !queue.empty(); });
          if (queue.empty()) return;
          buf = std::move(queue.front());
          queue.pop_front();
        }
        cv.notify_all();
        digest.Update(buf);
        auto st = WriteAll(buf);
        std::lock_guard lock(mu);
        if (!st && !write_error) write_error = st.error();
        buf.clear();
        spare.push_back(std::move(buf));
      }
    });
  }

  void StopWriter() {
    if (!writer.joinable()) return;
    {
      std::lock_guard lock(mu);
      closing = true;
    }
    cv.notify_all();
    writer.join();
  }

  Status WriteAll(std::string_view buf) {
    const char* p = buf.data();
    size_t left = buf.size();
    while (left) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(ErrorCode::INTERNAL, "cannot write {}: {}", path, strerror(errno));
      }
      p += n;
      left -= static_cast<size_t>(n);
      written += static_cast<uint64_t>(n);
    }
    return Ok();
  }

  // Hands the buffered signed bytes to the writer thread (at most 4 in flight).
  Status Handoff() {
    if (out.empty()) return Ok();
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return queue.size() < 4 || write_error; });
    if (write_error) return std::unexpected(*write_error);
    queue.push_back(std::move(out));
    out.clear();
    if (!spare.empty()) {
      out = std::move(spare.back());
      spare.pop_back();
    } else {
      out.reserve(kBufferBytes + kChunkSize + 64);
    }
    lock.unlock();
    cv.notify_all();
    return Ok();
  }

  static constexpr size_t kBufferBytes = 8u << 20;

  Status Emit(std::string_view bytes) {
    out.append(bytes);
    if (out.size() >= kBufferBytes) return Handoff();
    return Ok();
  }

  // Encrypts straight into the output buffer: record head, then ciphertext.
  Status EmitChunk(std::string_view plain, bool final) {
    if (out.capacity() < kBufferBytes + kChunkSize + 64) out.reserve(kBufferBytes + kChunkSize + 64);
    size_t head = out.size();
    out.push_back(kChunkRecord);
    PutU32(&out, 0);
    enc->PushAppend(plain, ad, final, &out);
    uint32_t len = static_cast<uint32_t>(out.size() - head - 5);
    for (int i = 0; i < 4; ++i) out[head + 1 + i] = static_cast<char>((len >> (8 * i)) & 0xff);
    if (out.size() >= kBufferBytes) return Handoff();
    return Ok();
  }
};

Result<Writer> Writer::Create(const std::string& path, const Header& header,
                              const crypto::SecureBuffer& data_key) {
  Writer w;
  w.s_ = std::make_unique<State>();
  auto& s = *w.s_;
  s.path = path;
  s.tmp_path = path + ".tmp-XXXXXX";
  s.fd = ::mkostemp(s.tmp_path.data(), O_CLOEXEC);
  if (s.fd < 0) {
    s.tmp_path.clear();
    return Fail(ErrorCode::FILE_UNREADABLE, "cannot create {}: {}", path, strerror(errno));
  }
  ::fchmod(s.fd, 0644);
  s.enc = std::make_unique<crypto::StreamEncryptor>(data_key);
  Header h = header;
  h.stream_header = s.enc->header();
  std::string hb = h.ToJson().dump();
  s.ad = crypto::Sha256(hb);
  std::string pre(kMagic);
  PutU32(&pre, static_cast<uint32_t>(hb.size()));
  pre += hb;
  s.StartWriter();
  CR_TRY(s.Emit(pre));
  return w;
}

Writer::~Writer() = default;
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;

uint64_t Writer::bytes_written() const { return s_->written; }

Status Writer::Write(std::string_view plaintext) {
  auto& s = *s_;
  // Whole chunks straight from the caller's buffer; only remainders are copied.
  while (s.pending.empty() && plaintext.size() > kChunkSize) {
    CR_TRY(s.EmitChunk(plaintext.substr(0, kChunkSize), false));
    plaintext.remove_prefix(kChunkSize);
  }
  while (!plaintext.empty()) {
    size_t take = std::min(plaintext.size(), kChunkSize - s.pending.size());
    s.pending.append(plaintext.substr(0, take));
    plaintext.remove_prefix(take);
    if (s.pending.size() == kChunkSize) {
      CR_TRY(s.EmitChunk(s.pending, false));
      sodium_memzero(s.pending.data(), s.pending.size());
      s.pending.clear();
    }
  }
  return Ok();
}

Status Writer::Finish(const crypto::Identity& owner) {
  auto& s = *s_;
  CR_TRY(s.EmitChunk(s.pending, true));
  sodium_memzero(s.pending.data(), s.pending.size());
  s.pending.clear();
  CR_TRY(s.Handoff());
  s.StopWriter();
  if (s.write_error) return std::unexpected(*s.write_error);
  std::string sig = owner.Sign(std::string(kSignatureDomain) + s.digest.Final());
  std::string rec(1, kSignatureRecord);
  rec += kTrailerMagic;
  rec += sig;
  CR_TRY(s.WriteAll(rec));
  if (::fsync(s.fd) != 0) return Fail(ErrorCode::INTERNAL, "cannot sync {}", s.path);
  ::close(s.fd);
  s.fd = -1;
  if (::rename(s.tmp_path.c_str(), s.path.c_str()) != 0) {
    return Fail(ErrorCode::INTERNAL, "cannot write {}: {}", s.path, strerror(errno));
  }
  s.finished = true;
  return SyncDir(DirName(s.path));
}

// ----- Reader ------------------------------------------------------------------------

struct Reader::State {
  std::string path;
  int fd = -1;
  Header header;
  std::string header_bytes;
  uint64_t body_offset = 0;  // first record after the header
  uint64_t file_size = 0;
  bool verified = false;
  std::string file_digest;

  ~State() {
    if (fd >= 0) ::close(fd);
  }

  Status ReadExact(uint64_t offset, size_t len, std::string* out) const {
    out->resize(len);
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pread(fd, out->data() + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
      }
      if (n == 0) return Fail(ErrorCode::TAMPERED, "package is truncated");
      done += static_cast<size_t>(n);
    }
    return Ok();
  }

  // One pass: hashes every record for the signature and, with a data key,
  // decrypts each chunk into `sink`; checks the signature at the end.
  Status Verify(const crypto::SecureBuffer* data_key,
                const std::function<Status(std::string_view)>& sink) {
    auto signer = crypto::PublicIdentity::FromText(header.signer);
    if (!signer) return Fail(ErrorCode::TAMPERED, "package signer key is malformed");
    std::optional<crypto::StreamDecryptor> dec;
    if (data_key) {
      CR_ASSIGN(auto d, crypto::StreamDecryptor::Create(*data_key, header.stream_header));
      dec.emplace(std::move(d));
    }
    std::string ad = crypto::Sha256(header_bytes);
    crypto::Blake2bStream signed_part;
    std::string pre;
    CR_TRY(ReadExact(0, body_offset, &pre));
    signed_part.Update(pre);
    // While decrypting, hash on a second thread: the two cost about the same.
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> to_hash;
    bool done = false;
    std::thread hasher;
    if (dec) {
      hasher = std::thread([&] {
        for (;;) {
          std::string rec;
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return done || !to_hash.empty(); });
            if (to_hash.empty()) return;
            rec = std::move(to_hash.front());
            to_hash.pop_front();
          }
          cv.notify_all();
          signed_part.Update(rec);
        }
      });
    }
    auto stop_hasher = [&] {
      if (!hasher.joinable()) return;
      {
        std::lock_guard lock(mu);
        done = true;
      }
      cv.notify_all();
      hasher.join();
    };
    std::string signature, plain;
    bool final = false;
    uint64_t total = 0;
    auto walked = Walk(
        [&](std::string_view head, std::string_view chunk) -> Status {
          if (!dec) {
            signed_part.Update(head);
            signed_part.Update(chunk);
            return Ok();
          }
          {
            std::string rec;
            rec.reserve(head.size() + chunk.size());
            rec.append(head);
            rec.append(chunk);
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return to_hash.size() < 8; });
            to_hash.push_back(std::move(rec));
          }
          cv.notify_all();
          if (final) return Fail(ErrorCode::TAMPERED, "package has chunks after the final one");
          CR_TRY(dec->Pull(chunk, ad, &plain, &final));
          total += plain.size();
          auto st = sink(plain);
          sodium_memzero(plain.data(), plain.size());
          return st;
        },
        &signature);
    stop_hasher();
    CR_TRY(walked);
    std::string digest = signed_part.Final();
    if (!crypto::Verify(*signer, std::string(kSignatureDomain) + digest, signature)) {
      return Fail(ErrorCode::TAMPERED, "package signature does not verify: the file was changed");
    }
    if (dec && !final) return Fail(ErrorCode::TAMPERED, "package is truncated (no final chunk)");
    if (dec && total != header.plaintext_bytes) {
      return Fail(ErrorCode::TAMPERED, "package holds {} bytes, header says {}", total,
                  header.plaintext_bytes);
    }
    std::string trailer;
    CR_TRY(ReadExact(file_size - kSignatureRecordBytes, kSignatureRecordBytes, &trailer));
    file_digest = Fingerprinter::FromSignedDigest(digest, trailer);
    verified = true;
    return Ok();
  }

  // Walks the records; calls on_chunk for each chunk (with its bytes) and
  // returns the signature. Structural problems are TAMPERED.
  Status Walk(const std::function<Status(std::string_view record_head, std::string_view chunk)>&
                  on_chunk,
              std::string* signature) const {
    uint64_t off = body_offset;
    std::string head, chunk;
    for (;;) {
      CR_TRY(ReadExact(off, 1, &head));
      if (head[0] == kSignatureRecord) {
        std::string trailer;
        CR_TRY(ReadExact(off + 1, kTrailerMagic.size() + crypto::kSignatureBytes, &trailer));
        if (std::string_view(trailer).substr(0, kTrailerMagic.size()) != kTrailerMagic) {
          return Fail(ErrorCode::TAMPERED, "package trailer is malformed");
        }
        *signature = trailer.substr(kTrailerMagic.size());
        if (off + 1 + trailer.size() != file_size) {
          return Fail(ErrorCode::TAMPERED, "package has bytes after its signature");
        }
        return Ok();
      }
      if (head[0] != kChunkRecord) return Fail(ErrorCode::TAMPERED, "package record is malformed");
      CR_TRY(ReadExact(off, 5, &head));
      uint32_t len = GetU32(head.data() + 1);
      if (len > kChunkSize + crypto::StreamDecryptor::kOverhead) {
        return Fail(ErrorCode::TAMPERED, "package chunk is too large");
      }
      CR_TRY(ReadExact(off + 5, len, &chunk));
      CR_TRY(on_chunk(head, chunk));
      off += 5 + len;
    }
  }
};

Result<Reader> Reader::Open(const std::string& path) {
  Reader r;
  r.s_ = std::make_unique<State>();
  auto& s = *r.s_;
  s.path = path;
  s.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}: {}", path, strerror(errno));
  off_t end = ::lseek(s.fd, 0, SEEK_END);
  if (end < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
  s.file_size = static_cast<uint64_t>(end);
  // A file that does not start like a package is the wrong file (a CSV given
  // to ingest), not an attack; from the magic on, damage is tampering.
  std::string pre;
  size_t magic_seen = static_cast<size_t>(std::min<uint64_t>(s.file_size, kMagic.size()));
  if (magic_seen > 0) CR_TRY(s.ReadExact(0, magic_seen, &pre));
  if (magic_seen == 0 || pre != kMagic.substr(0, magic_seen)) {
    return Fail(ErrorCode::BAD_INPUT,
                "{} is not a contribution package (a .crpkg that prepare writes)", path);
  }
  if (s.file_size < kMagic.size() + 4) {
    return Fail(ErrorCode::TAMPERED, "the package is cut short before its header");
  }
  CR_TRY(s.ReadExact(0, kMagic.size() + 4, &pre));
  uint32_t hlen = GetU32(pre.data() + kMagic.size());
  if (hlen == 0 || hlen > kMaxHeaderBytes || kMagic.size() + 4 + hlen > s.file_size) {
    return Fail(ErrorCode::TAMPERED, "package header length is invalid");
  }
  CR_TRY(s.ReadExact(kMagic.size() + 4, hlen, &s.header_bytes));
  auto j = nlohmann::json::parse(s.header_bytes, nullptr, false);
  if (j.is_discarded()) return Fail(ErrorCode::TAMPERED, "package header is not valid JSON");
  CR_ASSIGN(s.header, Header::FromJson(j));
  s.body_offset = kMagic.size() + 4 + hlen;
  return r;
}

Reader::~Reader() = default;
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;

const Header& Reader::header() const { return s_->header; }
const std::string& Reader::header_bytes() const { return s_->header_bytes; }
const std::string& Reader::file_digest() const { return s_->file_digest; }

Status Reader::VerifySignature() {
  auto& s = *s_;
  return s.Verify(nullptr, {});
}

Status Reader::VerifyAndDecrypt(const crypto::SecureBuffer& data_key,
                                const std::function<Status(std::string_view)>& sink) {
  return s_->Verify(&data_key, sink);
}

Status Reader::Decrypt(const crypto::SecureBuffer& data_key,
                       const std::function<Status(std::string_view)>& sink) {
  auto& s = *s_;
  if (!s.verified) return Fail(ErrorCode::INTERNAL, "package decrypted before verification");
  CR_ASSIGN(auto dec, crypto::StreamDecryptor::Create(data_key, s.header.stream_header));
  std::string ad = crypto::Sha256(s.header_bytes);
  bool final = false;
  uint64_t total = 0;
  std::string plain;
  std::string signature;
  CR_TRY(s.Walk(
      [&](std::string_view, std::string_view chunk) -> Status {
        if (final) return Fail(ErrorCode::TAMPERED, "package has chunks after the final one");
        CR_TRY(dec.Pull(chunk, ad, &plain, &final));
        total += plain.size();
        auto st = sink(plain);
        sodium_memzero(plain.data(), plain.size());
        return st;
      },
      &signature));
  if (!final) return Fail(ErrorCode::TAMPERED, "package is truncated (no final chunk)");
  if (total != s.header.plaintext_bytes) {
    return Fail(ErrorCode::TAMPERED, "package holds {} bytes, header says {}", total,
                s.header.plaintext_bytes);
  }
  return Ok();
}

// ----- Fingerprinter --------------------------------------------------------------------

void Fingerprinter::Update(std::string_view data) {
  // Everything but the last kSignatureRecordBytes goes into the signed digest.
  if (tail_.size() + data.size() <= kSignatureRecordBytes) {
    tail_.append(data);
    return;
  }
  size_t flush = tail_.size() + data.size() - kSignatureRecordBytes;
  size_t from_tail = std::min(flush, tail_.size());
  signed_.Update(std::string_view(tail_).substr(0, from_tail));
  size_t from_data = flush - from_tail;
  signed_.Update(data.substr(0, from_data));
  tail_ = tail_.substr(from_tail);
  tail_.append(data.substr(from_data));
}

std::string Fingerprinter::FinalHex() { return FromSignedDigest(signed_.Final(), tail_); }

std::string Fingerprinter::FromSignedDigest(std::string_view signed_digest,
                                            std::string_view trailer) {
  crypto::Blake2bStream h(32);
  h.Update(signed_digest);
  h.Update(trailer);
  return ToHex(h.Final());
}

}  // namespace cr::package
