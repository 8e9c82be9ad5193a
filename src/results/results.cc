#include "results/results.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/files.h"

namespace cr::results {
namespace {

std::string Dir(const std::string& room_dir, const std::string& id) {
  return room_dir + "/results/" + id;
}

std::string NumberText(const nlohmann::json& v, bool for_table) {
  if (v.is_number_float() && for_table) {
    double d = v.get<double>();
    return std::abs(d) >= 1e15 ? fmt::format("{:g}", d) : fmt::format("{:.2f}", d);
  }
  return v.dump();
}

// The name a result's metadata is sealed under: moved to another result's
// folder, it no longer verifies.
std::string MetaName(const std::string& id) { return "results/" + id + "/meta.json"; }

std::string CellText(const nlohmann::json& v, bool for_table) {
  if (v.is_null()) return for_table ? "NULL" : "";
  if (IsNoisyCell(v)) {
    const nlohmann::json& value = v["value"];
    if (!for_table) return value.dump();
    double half = (v["ci_high"].get<double>() - v["ci_low"].get<double>()) / 2;
    nlohmann::json h = value.is_number_integer() && half == std::floor(half)
                           ? nlohmann::json(static_cast<int64_t>(half))
                           : nlohmann::json(half);
    return NumberText(value, true) + " ± " + NumberText(h, true);
  }
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float() && for_table) {
    double d = v.get<double>();
    return std::abs(d) >= 1e15 ? fmt::format("{:g}", d) : fmt::format("{:.2f}", d);
  }
  return v.dump();
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool IsNoisyCell(const nlohmann::json& cell) {
  return cell.is_object() && cell.size() == 3 && cell.contains("value") &&
         cell["value"].is_number() && cell.contains("ci_low") && cell["ci_low"].is_number() &&
         cell.contains("ci_high") && cell["ci_high"].is_number();
}

nlohmann::json ToJson(const ResultSet& r) {
  nlohmann::json j;
  j["result_id"] = r.result_id;
  j["columns"] = r.columns;
  j["rows"] = r.rows;
  j["withheld_rows"] = r.withheld_rows ? nlohmann::json(*r.withheld_rows) : nlohmann::json();
  if (r.epsilon_spent) j["epsilon_spent"] = *r.epsilon_spent;
  if (!r.withheld_by.empty()) {
    j["withheld_by"] = nlohmann::json::object();
    for (const auto& [rule, n] : r.withheld_by) j["withheld_by"][rule] = n;
  }
  return j;
}

Result<ResultSet> FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("result_id") || !j["result_id"].is_string() ||
      !j.contains("columns") || !j["columns"].is_array() || !j.contains("rows") ||
      !j["rows"].is_array() || !j.contains("withheld_rows")) {
    return Fail(ErrorCode::BAD_INPUT, "not a result object");
  }
  ResultSet r;
  r.result_id = j["result_id"].get<std::string>();
  for (const auto& c : j["columns"]) {
    if (!c.is_string()) return Fail(ErrorCode::BAD_INPUT, "not a result object");
    r.columns.push_back(c.get<std::string>());
  }
  for (const auto& row : j["rows"]) {
    if (!row.is_array() || row.size() != r.columns.size()) {
      return Fail(ErrorCode::BAD_INPUT, "not a result object");
    }
    for (const auto& cell : row) {
      if (cell.is_array() || (cell.is_object() && !IsNoisyCell(cell))) {
        return Fail(ErrorCode::BAD_INPUT, "not a result object");
      }
    }
  }
  if (j.contains("epsilon_spent")) {
    if (!j["epsilon_spent"].is_number() || !(j["epsilon_spent"].get<double>() >= 0)) {
      return Fail(ErrorCode::BAD_INPUT, "not a result object");
    }
    r.epsilon_spent = j["epsilon_spent"].get<double>();
  }
  r.rows = j["rows"];
  if (auto it = j.find("withheld_by"); it != j.end()) {
    if (!it->is_object()) return Fail(ErrorCode::BAD_INPUT, "not a result object");
    for (const auto& [rule, n] : it->items()) {
      if (!n.is_number_integer()) return Fail(ErrorCode::BAD_INPUT, "not a result object");
      r.withheld_by.emplace_back(rule, n.get<int64_t>());
    }
  }
  if (j["withheld_rows"].is_number_integer()) {
    r.withheld_rows = j["withheld_rows"].get<int64_t>();
  } else if (!j["withheld_rows"].is_null()) {
    return Fail(ErrorCode::BAD_INPUT, "not a result object");
  }
  return r;
}

std::string Render(const ResultSet& r, std::string_view format) {
  if (format == "json") {
    nlohmann::ordered_json j;
    j["result_id"] = r.result_id;
    j["columns"] = r.columns;
    j["rows"] = r.rows;
    j["withheld_rows"] = r.withheld_rows ? nlohmann::json(*r.withheld_rows) : nlohmann::json();
    if (r.epsilon_spent) j["epsilon_spent"] = *r.epsilon_spent;
    if (!r.withheld_by.empty()) {
      j["withheld_by"] = nlohmann::ordered_json::object();
      for (const auto& [rule, n] : r.withheld_by) j["withheld_by"][rule] = n;
    }
    return j.dump() + "\n";
  }
  if (format == "csv") {
    // A column is noisy when any of its cells is: its interval gets two columns.
    std::vector<bool> noisy(r.columns.size(), false);
    for (const auto& row : r.rows) {
      for (size_t i = 0; i < row.size() && i < noisy.size(); ++i) {
        noisy[i] = noisy[i] || IsNoisyCell(row[i]);
      }
    }
    std::vector<std::string> head;
    for (size_t i = 0; i < r.columns.size(); ++i) {
      head.push_back(CsvField(r.columns[i]));
      if (noisy[i]) {
        head.push_back(CsvField(r.columns[i] + "_ci_low"));
        head.push_back(CsvField(r.columns[i] + "_ci_high"));
      }
    }
    std::string out = fmt::format("{}\n", fmt::join(head, ","));
    for (const auto& row : r.rows) {
      std::vector<std::string> cells;
      for (size_t i = 0; i < row.size(); ++i) {
        cells.push_back(CsvField(CellText(row[i], false)));
        if (i < noisy.size() && noisy[i]) {
          bool n = IsNoisyCell(row[i]);
          cells.push_back(n ? row[i]["ci_low"].dump() : "");
          cells.push_back(n ? row[i]["ci_high"].dump() : "");
        }
      }
      out += fmt::format("{}\n", fmt::join(cells, ","));
    }
    return out;
  }
  std::vector<size_t> width;
  for (const auto& c : r.columns) width.push_back(c.size());
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : r.rows) {
    cells.emplace_back();
    for (size_t i = 0; i < row.size(); ++i) {
      cells.back().push_back(CellText(row[i], true));
      width[i] = std::max(width[i], cells.back().back().size());
    }
  }
  auto line = [&](const std::vector<std::string>& v, const nlohmann::json* row) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      bool right = row && ((*row)[i].is_number() || IsNoisyCell((*row)[i]));
      if (i) out += "  ";
      out += right ? fmt::format("{:>{}}", v[i], width[i]) : fmt::format("{:<{}}", v[i], width[i]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(r.columns, nullptr);
  std::vector<std::string> rule;
  for (size_t w : width) rule.push_back(std::string(w, '-'));
  out += line(rule, nullptr);
  for (size_t i = 0; i < cells.size(); ++i) out += line(cells[i], &r.rows[i]);
  out += fmt::format("({} row{} released", r.rows.size(), r.rows.size() == 1 ? "" : "s");
  if (r.epsilon_spent) {
    out += fmt::format(
        "; differential privacy: epsilon {} spent{}, values ± the half-width of a 95% "
        "confidence interval; groups that fail private partition selection are withheld and "
        "not counted)\n",
        *r.epsilon_spent, *r.epsilon_spent == 0 ? " (the stored answer of an identical query)" : "");
  } else if (!r.withheld_rows) {
    out += "; some rows were withheld below the threshold, their count is itself withheld)\n";
  } else if (*r.withheld_rows > 0 && !r.withheld_by.empty()) {
    // Pooled datasets: which rule withheld how many (names, never values).
    std::vector<std::string> by;
    for (const auto& [rule, n] : r.withheld_by) {
      if (n > 0) by.push_back(fmt::format("{} {}", rule, n));
    }
    out += fmt::format("; {} row{} withheld by the cell rules: {})\n", *r.withheld_rows,
                       *r.withheld_rows == 1 ? "" : "s", fmt::join(by, ", "));
  } else if (*r.withheld_rows > 0) {
    out += fmt::format("; {} row{} withheld below the threshold)\n", *r.withheld_rows,
                       *r.withheld_rows == 1 ? "" : "s");
  } else {
    out += ")\n";
  }
  out += fmt::format("result {}\n", r.result_id);
  return out;
}

bool ValidId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

namespace {

// Writes `data` to a new file `path` (FILE_EXISTS if it is there; O_EXCL, so
// no concurrent writer is clobbered) and returns it open, not yet synced.
Result<int> WriteNewFile(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return Fail(ErrorCode::FILE_EXISTS, "{} already exists; refusing to overwrite it", path);
    return Fail(ErrorCode::INTERNAL, "cannot create {}", path);
  }
  for (size_t off = 0; off < data.size();) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Fail(ErrorCode::INTERNAL, "cannot write {}", path);
    }
    off += static_cast<size_t>(n);
  }
  return fd;
}

// Syncs and closes every descriptor, all at once (one thread each): the file
// system commits concurrent syncs together, so a result waits about one sync
// rather than one per file (bench/server: syncs were most of a warm query's
// cost beyond its SQL).
Status SyncAndCloseAll(const std::vector<int>& fds) {
  std::vector<char> ok(fds.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < fds.size(); ++i) {
    threads.emplace_back([&, i] { ok[i] = ::fsync(fds[i]) == 0; });
  }
  for (auto& t : threads) t.join();
  bool all = true;
  for (size_t i = 0; i < fds.size(); ++i) all = (::close(fds[i]) == 0) && ok[i] && all;
  if (!all) return Fail(ErrorCode::INTERNAL, "cannot sync a result to disk");
  return Ok();
}

}  // namespace

Status Store(const std::string& room_dir, const room::MetaSealer& sealer, const ResultSet& r,
             const std::vector<Receiver>& receivers, nlohmann::json meta) {
  if (!ValidId(r.result_id)) return Fail(ErrorCode::INTERNAL, "invalid result id");
  std::string dir = Dir(room_dir, r.result_id);
  if (PathExists(dir)) return Fail(ErrorCode::FILE_EXISTS, "result {} already exists", r.result_id);
  CR_TRY(MakeDirs(dir, 0700));
  // A result that could not be stored whole is not left half made.
  struct Undo {
    const std::string& dir;
    bool committed = false;
    ~Undo() {
      std::error_code ec;
      if (!committed) std::filesystem::remove_all(dir, ec);
    }
  } undo{dir};
  std::string plain = ToJson(r).dump();
  // meta.json is the commit point: a folder without it is no result (never
  // read, swept by serve), so a crash before it leaves a result that does not
  // exist rather than one missing a receiver. The folder is new, so each box
  // is written in place. Two rounds of syncs, each all at once: first the
  // boxes, meta.json's temporary, the folder (every name created so far) and
  // the new entry in results/; only when all are durable is meta.json linked
  // into place and the folder synced again. The temporary's name is removed
  // afterwards without a sync: one left by a crash is swept with the folder's
  // other leftovers and never read.
  std::vector<int> fds;
  auto close_fds = [&] {
    for (int fd : fds) ::close(fd);
    fds.clear();
  };
  for (const auto& rc : receivers) {
    auto fd = WriteNewFile(dir + "/" + rc.party + ".sealed",
                           crypto::Seal(rc.key, rc.own ? ToJson(*rc.own).dump() : plain), 0600);
    if (!fd) {
      close_fds();
      return std::unexpected(fd.error());
    }
    fds.push_back(*fd);
  }
  const std::string meta_tmp = dir + "/meta.json.tmp-commit";
  auto meta_fd = WriteNewFile(meta_tmp, sealer.Seal(MetaName(r.result_id), meta), 0644);
  if (!meta_fd) {
    close_fds();
    return std::unexpected(meta_fd.error());
  }
  fds.push_back(*meta_fd);
  for (const std::string& d : {dir, room_dir + "/results"}) {
    int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      close_fds();
      return Fail(ErrorCode::INTERNAL, "cannot open the room's results folder");
    }
    fds.push_back(dfd);
  }
  auto synced = SyncAndCloseAll(fds);
  fds.clear();
  CR_TRY(synced);
  if (::link(meta_tmp.c_str(), (dir + "/meta.json").c_str()) != 0) {
    return Fail(ErrorCode::INTERNAL, "cannot commit result {}", r.result_id);
  }
  CR_TRY(SyncDir(dir));
  ::unlink(meta_tmp.c_str());
  undo.committed = true;
  return Ok();
}

void Remove(const std::string& room_dir, const std::string& id) {
  if (!ValidId(id)) return;
  std::error_code ec;
  std::filesystem::remove_all(Dir(room_dir, id), ec);
}

Result<nlohmann::json> ReadMeta(const std::string& room_dir, const room::MetaSealer& sealer,
                                const std::string& id) {
  if (!ValidId(id)) return Fail(ErrorCode::RESULT_NOT_FOUND, "no result with that id");
  std::string path = Dir(room_dir, id) + "/meta.json";
  if (!PathExists(path)) return Fail(ErrorCode::RESULT_NOT_FOUND, "no result {} in this room", id);
  CR_ASSIGN(auto text, ReadFile(path));
  return sealer.Open(MetaName(id), text);
}

Status SealUnsealed(const std::string& room_dir, const room::MetaSealer& sealer) {
  std::error_code ec;
  std::filesystem::directory_iterator it(room_dir + "/results", ec), end;
  if (ec) return Ok();  // no result yet
  for (; it != end; it.increment(ec)) {
    if (ec) return Fail(ErrorCode::INTERNAL, "cannot list the room's results");
    const std::string id = it->path().filename().string();
    const std::string path = Dir(room_dir, id) + "/meta.json";
    if (!ValidId(id) || !PathExists(path)) continue;
    CR_ASSIGN(auto text, ReadFile(path));
    if (room::MetaSealer::LooksSealed(text)) continue;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::TAMPERED, "result {} metadata is unreadable", id);
    CR_TRY(WriteFileAtomic(path, sealer.Seal(MetaName(id), j), 0644));
  }
  return Ok();
}

Result<std::vector<nlohmann::json>> ListFor(const std::string& room_dir, const room::MetaSealer& sealer,
                                            const std::string& party) {
  std::vector<nlohmann::json> out;
  if (party.empty() || party.find('/') != std::string::npos) return out;
  std::error_code ec;
  std::filesystem::directory_iterator it(room_dir + "/results", ec), end;
  if (ec) return out;  // no result yet
  for (; it != end; it.increment(ec)) {
    if (ec) return Fail(ErrorCode::INTERNAL, "cannot list the room's results");
    const std::string id = it->path().filename().string();
    if (!ValidId(id) || !PathExists(Dir(room_dir, id) + "/meta.json")) continue;
    if (!PathExists(Dir(room_dir, id) + "/" + party + ".sealed")) continue;
    CR_ASSIGN(auto meta, ReadMeta(room_dir, sealer, id));
    meta["result_id"] = id;
    out.push_back(std::move(meta));
  }
  std::sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    auto key = [](const nlohmann::json& j) {
      return std::make_pair(j.value("created_at", std::string()), j.value("result_id", std::string()));
    };
    return key(a) < key(b);
  });
  return out;
}

Result<std::string> ReadSealed(const std::string& room_dir, const room::MetaSealer& sealer,
                               const std::string& id, const std::string& party) {
  CR_ASSIGN(auto meta, ReadMeta(room_dir, sealer, id));
  std::string path = Dir(room_dir, id) + "/" + party + ".sealed";
  if (party.empty() || party.find('/') != std::string::npos || !PathExists(path)) {
    return Fail(ErrorCode::NOT_AUTHORIZED, "result {} is not sealed to {}", id, party);
  }
  return ReadFile(path);
}

Result<ResultSet> OpenSealed(std::string_view sealed, const std::string& id,
                             const crypto::Identity& key) {
  auto plain = key.Unseal(sealed);
  if (!plain) return Fail(ErrorCode::TAMPERED, "result {} does not open with this key", id);
  auto j = nlohmann::json::parse(plain->view(), nullptr, false);
  if (j.is_discarded()) return Fail(ErrorCode::TAMPERED, "result {} is unreadable", id);
  auto r = FromJson(j);
  if (!r || r->result_id != id) return Fail(ErrorCode::TAMPERED, "result {} holds another result", id);
  return r;
}

Result<ResultSet> Open(const std::string& room_dir, const room::MetaSealer& sealer,
                       const std::string& id, const std::string& party, const crypto::Identity& key) {
  CR_ASSIGN(auto sealed, ReadSealed(room_dir, sealer, id, party));
  return OpenSealed(sealed, id, key);
}

nlohmann::json Summary(const nlohmann::json& m) {
  auto field = [&m](const char* k) { return m.contains(k) ? m[k] : nlohmann::json(nullptr); };
  return {{"result_id", field("result_id")}, {"created_at", field("created_at")},
          {"requested_by", field("requested_by")}, {"template", field("template")},
          {"datasets", field("datasets")}, {"columns", field("columns")},
          {"released_rows", field("released_rows")}, {"withheld_rows", field("withheld_rows")}};
}

}  // namespace cr::results
