#include "room/history.h"

#include <fmt/format.h>

#include "common/files.h"
#include "crypto/crypto.h"

namespace cr::room {
namespace {

using nlohmann::json;

std::unexpected<Error> Damaged(std::string_view field) {
  return Fail(ErrorCode::TAMPERED, "the room's history.json is damaged (field \"{}\")", field);
}

bool StringList(const json& j, const char* key, std::vector<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return false;
  for (const auto& e : *it) {
    if (!e.is_string()) return false;
    out->push_back(e.get<std::string>());
  }
  return true;
}

}  // namespace

json HistoryToJson(const std::vector<VersionRecord>& versions) {
  json list = json::array();
  for (const auto& v : versions) {
    json keys = json::object();
    for (const auto& [name, bytes] : v.key_files) keys[name] = crypto::Base64Encode(bytes);
    list.push_back({{"version", v.version},
                    {"spec_hash", v.spec_hash},
                    {"spec_sha256", v.spec_sha256},
                    {"activated_at", v.activated_at},
                    {"parties", v.parties},
                    {"signed_by", v.signed_by},
                    {"spec", crypto::Base64Encode(v.spec_bytes)},
                    {"spec_keys", keys},
                    {"signatures", v.signatures}});
  }
  return {{"format", 1}, {"versions", list}};
}

Result<std::vector<VersionRecord>> HistoryFromJson(const json& j) {
  auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer() || format->get<int64_t>() != 1) {
    return Damaged("format");
  }
  auto versions = j.find("versions");
  if (versions == j.end() || !versions->is_array() || versions->empty()) return Damaged("versions");
  std::vector<VersionRecord> out;
  for (const auto& e : *versions) {
    if (!e.is_object()) return Damaged("versions");
    VersionRecord v;
    auto n = e.find("version");
    if (n == e.end() || !n->is_number_unsigned() || n->get<uint64_t>() != out.size() + 1) {
      return Damaged("version");
    }
    v.version = n->get<uint64_t>();
    for (auto [key, field] :
         {std::pair{"spec_hash", &v.spec_hash}, std::pair{"spec_sha256", &v.spec_sha256},
          std::pair{"activated_at", &v.activated_at}}) {
      auto it = e.find(key);
      if (it == e.end() || !it->is_string()) return Damaged(key);
      *field = it->get<std::string>();
    }
    if (!StringList(e, "parties", &v.parties)) return Damaged("parties");
    if (!StringList(e, "signed_by", &v.signed_by)) return Damaged("signed_by");
    auto spec = e.find("spec");
    auto bytes = spec != e.end() && spec->is_string()
                     ? crypto::Base64Decode(spec->get<std::string>())
                     : Result<std::string>(Damaged("spec"));
    if (!bytes || ToHex(crypto::Sha256(*bytes)) != v.spec_sha256) return Damaged("spec");
    v.spec_bytes = std::move(*bytes);
    auto keys = e.find("spec_keys");
    if (keys == e.end() || !keys->is_object()) return Damaged("spec_keys");
    for (auto it = keys->begin(); it != keys->end(); ++it) {
      auto key = it->is_string() ? crypto::Base64Decode(it->get<std::string>())
                                 : Result<std::string>(Damaged("spec_keys"));
      if (!key) return Damaged("spec_keys");
      v.key_files[it.key()] = std::move(*key);
    }
    auto sigs = e.find("signatures");
    if (sigs == e.end() || !sigs->is_array()) return Damaged("signatures");
    v.signatures = *sigs;
    out.push_back(std::move(v));
  }
  return out;
}

nlohmann::ordered_json VersionSummary(const VersionRecord& v) {
  return {{"version", v.version},
          {"spec_hash", v.spec_hash},
          {"activated_at", v.activated_at},
          {"parties", v.parties},
          {"signed_by", v.signed_by}};
}

bool SameDefinition(const spec::Dataset& a, const spec::Dataset& b) {
  if (a.owner != b.owner || a.privacy_unit_column != b.privacy_unit_column ||
      a.columns.size() != b.columns.size()) {
    return false;
  }
  for (size_t i = 0; i < a.columns.size(); ++i) {
    const auto& x = a.columns[i];
    const auto& y = b.columns[i];
    if (x.name != y.name || x.type != y.type || x.role != y.role || x.normalize != y.normalize ||
        x.bounds != y.bounds) {
      return false;
    }
  }
  return true;
}

VersionChange Compare(const spec::Spec& from, const spec::Spec& to,
                      const std::set<std::string>& stored_datasets) {
  VersionChange c;
  for (const auto& p : to.parties) {
    const spec::Party* old = from.FindParty(p.name);
    if (!old) {
      c.parties_added.push_back(p.name);
    } else if (old->key != p.key) {
      c.keys_replaced.push_back(p.name);
    }
  }
  for (const auto& p : from.parties) {
    if (!to.FindParty(p.name)) c.parties_removed.push_back(p.name);
  }
  for (const auto& name : stored_datasets) {
    const spec::Dataset* old = from.FindDataset(name);
    const spec::Dataset* next = to.FindDataset(name);
    if (old && next && SameDefinition(*old, *next)) {
      c.datasets_kept.push_back(name);
    } else {
      c.datasets_disposed.push_back(name);
    }
  }
  return c;
}

}  // namespace cr::room
