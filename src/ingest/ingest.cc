#include "ingest/ingest.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "engine/engine.h"
#include "package/package.h"

namespace cr::ingest {
namespace {

// The id names files in the room: only the form packages are made with.
bool IsPackageId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The lower 64 bits of a unit's pseudonym: the hash the difference checks use.
uint64_t UnitHash(uint64_t lower) { return lower; }

// Whether every privacy unit of a pooled dataset's new part is in exactly one
// of its rows and in no other contributor's current part (their unit
// columns decrypted and probed, on the 64-bit unit hash the difference
// checks use, so equal hashes of different pseudonyms count as the same
// unit). A part that cannot be read makes the answer no: the flag only ever
// lets queries skip work, so not knowing is "not unique".
Result<bool> UnitsAreUnique(const room::Room& room, engine::Database& db, const std::string& src,
                            const spec::Dataset& ds, const std::string& contributor) {
  // Only a pseudonymised unit (a UUID) has the hash the checks use.
  const auto col = std::find_if(ds.columns.begin(), ds.columns.end(), [&](const spec::Column& c) {
    return c.name == ds.privacy_unit_column;
  });
  if (col == ds.columns.end() || col->role != spec::Role::kJoinKey) return false;
  CR_TRY(db.RegisterUnitHashFunction("__cr_unit_hash", &UnitHash));
  const std::string unit = engine::QuoteIdent(ds.privacy_unit_column);
  CR_ASSIGN(auto own, db.Query(fmt::format("SELECT count(*) = count({0}) AND count({0}) = "
                                           "count(DISTINCT __cr_unit_hash({0})) FROM {1}",
                                           unit, src),
                               ErrorCode::SCHEMA_MISMATCH, false));
  if (own.Scalar() != std::optional<std::string>("true")) return false;
  const std::set<std::string> wanted = {ds.privacy_unit_column};
  std::vector<engine::MemFile> others;
  std::vector<std::string> paths;
  for (const auto* part : room.Parts(ds.name)) {
    if (part->owner == contributor) continue;  // the part this one replaces
    auto mem = room.Decrypt(part->name, &wanted);
    if (!mem) return false;
    paths.push_back(engine::QuoteLiteral(mem->path()));
    others.push_back(std::move(*mem));
  }
  if (paths.empty()) return true;
  auto shared = db.Query(
      fmt::format("SELECT count(*) FROM read_parquet([{0}]) WHERE __cr_unit_hash({1}) IN (SELECT "
                  "__cr_unit_hash({1}) FROM {2})",
                  fmt::join(paths, ", "), unit, src),
      ErrorCode::INTERNAL, false);
  return shared && shared->ScalarInt() == 0;
}

}  // namespace

std::vector<package::SchemaColumn> ExpectedSchema(const spec::Dataset& ds) {
  std::vector<package::SchemaColumn> out;
  for (const auto& c : ds.columns) {
    out.push_back({c.name,
                   c.role == spec::Role::kJoinKey ? "UUID" : std::string(spec::DuckDbType(c.type)),
                   std::string(spec::Name(c.role))});
  }
  return out;
}

Result<IngestReport> Ingest(room::Room& room, const std::string& package_path) {
  // StoreDataset audits its own outcome; everything refused before it is audited here.
  bool storing = false;
  auto run = [&]() -> Result<IngestReport> {
    const auto& spec = room.spec();
    if (!room.active()) {
      return Fail(ErrorCode::ROOM_NOT_ACTIVE,
                  "the room is not active: every party must sign the spec first (room activate)");
    }
    CR_ASSIGN(auto reader, package::Reader::Open(package_path));
    CR_TRY(reader.VerifySignature());
    const package::Header& h = reader.header();
    if (!IsPackageId(h.package_id)) return Fail(ErrorCode::TAMPERED, "the package id is malformed");

    CR_ASSIGN(auto signer, crypto::PublicIdentity::FromText(h.signer));
    const spec::Party* party = spec.FindPartyByKey(signer);
    if (!party) {
      return Fail(ErrorCode::UNKNOWN_SIGNER, "the package is signed by a key of no party ({})",
                  signer.Fingerprint());
    }
    if (h.collaboration != spec.collaboration) {
      return Fail(ErrorCode::SPEC_MISMATCH, "the package is for collaboration '{}', not '{}'",
                  h.collaboration, spec.collaboration);
    }
    if (h.spec_hash != spec.hash) {
      return Fail(ErrorCode::SPEC_MISMATCH,
                  "the package was prepared under another version of the spec ({}, room has {})",
                  h.spec_hash.substr(0, 12), spec.hash.substr(0, 12));
    }
    const spec::Dataset* ds = spec.FindDataset(h.dataset);
    if (!ds) return Fail(ErrorCode::UNKNOWN_DATASET, "the spec has no dataset '{}'", h.dataset);
    if (ds->pooled() && !ds->Contributes(party->name)) {
      return Fail(ErrorCode::WRONG_SIGNER,
                  "dataset '{}' is pooled and '{}' is not one of its contributors", ds->name,
                  party->name);
    }
    if (!ds->pooled() && party->name != ds->owner) {
      return Fail(ErrorCode::WRONG_SIGNER, "dataset '{}' belongs to '{}' but the package is signed by '{}'",
                  ds->name, ds->owner, party->name);
    }
    if (room.PackageSeen(h.package_id)) {
      return Fail(ErrorCode::PACKAGE_REPLAYED, "package {} was already ingested", h.package_id);
    }
    if (h.schema != ExpectedSchema(*ds)) {
      return Fail(ErrorCode::SCHEMA_MISMATCH,
                  "the package's schema differs from the spec's for dataset '{}'", ds->name);
    }
    if (h.room_key != room.key().pub().Fingerprint()) {
      return Fail(ErrorCode::KEY_INVALID, "the package is sealed to another room ({})", h.room_key);
    }
    auto data_key = room.key().Unseal(h.sealed_data_key);
    if (!data_key) return Fail(ErrorCode::TAMPERED, "the package's data key does not open");

    // Decrypt into memory and check what is really inside against the header.
    // Verifying again in the same pass makes sure the bytes decrypted are the
    // bytes verified, even if the file changed after the first check.
    CR_ASSIGN(auto mem, engine::MemFile::Create("cleanroom-ingest"));
    CR_TRY(reader.VerifyAndDecrypt(*data_key, [&](std::string_view plain) { return mem.Append(plain); }));
    engine::Options eo;
    CR_ASSIGN(auto db, engine::Database::Open(eo));
    std::string src = fmt::format("read_parquet({})", engine::QuoteLiteral(mem.path()));
    auto described = db.Query("DESCRIBE SELECT * FROM " + src, ErrorCode::SCHEMA_MISMATCH, false);
    if (!described) {
      return Fail(ErrorCode::SCHEMA_MISMATCH, "the package's content is not readable Parquet");
    }
    bool same = described->row_count() == h.schema.size();
    for (size_t i = 0; same && i < h.schema.size(); ++i) {
      same = described->at(i, 0).value_or("") == h.schema[i].name &&
             described->at(i, 1).value_or("") == h.schema[i].type;
    }
    if (!same) {
      return Fail(ErrorCode::SCHEMA_MISMATCH,
                  "the package's data does not have the schema its header declares");
    }
    CR_ASSIGN(auto counted, db.Query("SELECT count(*) FROM " + src, ErrorCode::SCHEMA_MISMATCH, false));
    if (counted.ScalarInt() != h.row_count) {
      return Fail(ErrorCode::SCHEMA_MISMATCH, "the package holds {} rows, its header says {}",
                  counted.ScalarInt(), h.row_count);
    }

    IngestReport report;
    report.dataset = ds->name;
    report.package_id = h.package_id;
    report.owner = party->name;
    report.rows = h.row_count;
    const std::string entry = ds->pooled() ? room::PartName(ds->name, party->name) : ds->name;
    report.replaced = room.datasets().count(entry) > 0;
    CR_ASSIGN(auto segments, room::ParquetSegments(db, mem));
    room::Room::StoreRecord record;
    if (ds->pooled() && !ds->privacy_unit_column.empty()) {
      CR_ASSIGN(record.unique_units, UnitsAreUnique(room, db, src, *ds, party->name));
    }
    storing = true;
    CR_TRY(room.StoreDataset(mem, segments, h, reader.file_digest(), party->name, record));
    report.bytes = room.datasets().at(entry).bytes;
    return report;
  };
  auto report = run();
  if (!report && !storing) {
    // Code and reason only: messages never hold data values.
    return room.audit().Refuse("ingest.refused", "operator", {{"reason", report.error().message}},
                               report.error());
  }
  return report;
}

}  // namespace cr::ingest
