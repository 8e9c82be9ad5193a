#include "ingest/forget.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/env.h"
#include "common/files.h"
#include "engine/engine.h"
#include "ingest/pseudonym.h"
#include "room/data_file.h"

namespace cr::ingest {
namespace {

bool IsHex32(const nlohmann::json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

int HexDigit(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

// Maps the request's 32 hex digits to the 16 bytes the pseudonymiser wrote, so
// the room compares UUIDs built by the very conversion `prepare` used.
class HexUnit : public engine::StringMapper {
 public:
  bool Map(std::string_view in, unsigned char out[16]) const override {
    if (in.size() != 32) return false;
    for (size_t i = 0; i < 16; ++i) {
      out[i] = static_cast<unsigned char>(HexDigit(in[2 * i]) * 16 + HexDigit(in[2 * i + 1]));
    }
    return true;
  }
};

// The bytes signed: the request without its signature, compact with sorted keys.
std::string SignedBytes(nlohmann::json request) {
  request.erase("signature");
  return request.dump();
}

// A tag of the unit under a key only the room holds: two requests for one unit
// can be linked in the log, but a party holding the shared secret cannot test
// a guessed identifier against it (a plain hash of the pseudonym would let it).
std::string UnitTag(const room::Room& room, const std::string& unit) {
  crypto::SecureBuffer key = room.key().DeriveKey(1, "crforget");
  crypto::KeyedHmac mac(key.view());
  unsigned char out[32];
  mac.Mac(unit.data(), unit.size(), out);
  return ToHex(std::string_view(reinterpret_cast<const char*>(out), 16));
}

}  // namespace

Result<std::string> UnitPseudonym(const spec::Spec& spec, const spec::Dataset& ds,
                                  const crypto::SecureBuffer& secret, std::string_view id) {
  const spec::Column* col = ds.FindColumn(ds.privacy_unit_column);
  if (!col) {
    return Fail(ErrorCode::SPEC_INVALID, "dataset '{}' has no privacy unit column", ds.name);
  }
  Pseudonymizer p(PseudonymKey(secret, spec.collaboration, col->name), col->normalize);
  unsigned char out[16];
  if (!p.Map(id, out)) {
    return Fail(ErrorCode::BAD_INPUT, "the id is empty once normalised ({}): it names no unit",
                spec::Name(col->normalize));
  }
  std::string hex = ToHex(std::string_view(reinterpret_cast<const char*>(out), 16));
  sodium_memzero(out, sizeof out);
  return hex;
}

Result<nlohmann::json> MakeForgetRequest(const ForgetOptions& o) {
  CR_ASSIGN(auto spec, spec::Load(o.spec_path));
  const spec::Dataset* ds = spec.FindDataset(o.dataset);
  if (!ds) return Fail(ErrorCode::UNKNOWN_DATASET, "the spec has no dataset '{}'", o.dataset);
  CR_ASSIGN(auto key, crypto::Identity::Load(o.key_path));
  const spec::Party* party = spec.FindPartyByKey(key.pub());
  if (!party) {
    return Fail(ErrorCode::UNKNOWN_SIGNER, "the key {} belongs to no party of the spec",
                o.key_path);
  }
  if (party->name != ds->owner) {
    return Fail(ErrorCode::NOT_AUTHORIZED,
                "dataset '{}' is owned by '{}', not '{}': only its owner may ask to forget a unit",
                ds->name, ds->owner, party->name);
  }
  CR_ASSIGN(auto secret, crypto::LoadSharedSecret(o.secret_path));
  CR_ASSIGN(std::string unit, UnitPseudonym(spec, *ds, secret, o.id));
  nlohmann::json req = {{"kind", kForgetKind},
                        {"request_id", crypto::RandomId()},
                        {"collaboration", spec.collaboration},
                        {"spec_hash", spec.hash},
                        {"dataset", ds->name},
                        {"column", ds->privacy_unit_column},
                        {"unit", unit},
                        {"signer", key.pub().ToText()},
                        {"created_at", DefaultClock().NowRfc3339()}};
  req["signature"] = crypto::Base64Encode(key.Sign(SignedBytes(req)));
  return req;
}

Result<ForgetReport> Forget(room::Room& room, const nlohmann::json& req,
                            const crypto::PublicIdentity* caller) {
  const spec::Spec& spec = room.spec();
  nlohmann::json base = nlohmann::json::object();
  // Until the request names its signer, the refusal is the sender's (over
  // the server) or nobody's.
  const spec::Party* sender = caller ? spec.FindPartyByKey(*caller) : nullptr;
  std::string actor = sender ? sender->name : "unknown";
  bool storing = false;
  auto run = [&]() -> Result<ForgetReport> {
    if (!req.is_object() || req.value("kind", "") != kForgetKind ||
        !IsHex32(req.value("request_id", nlohmann::json())) ||
        !IsHex32(req.value("unit", nlohmann::json()))) {
      return Fail(ErrorCode::BAD_INPUT, "not an erasure request ({})", kForgetKind);
    }
    for (const char* f :
         {"collaboration", "spec_hash", "dataset", "column", "signer", "created_at", "signature"}) {
      if (!req.contains(f) || !req[f].is_string()) {
        return Fail(ErrorCode::BAD_INPUT, "the erasure request lacks '{}'", f);
      }
    }
    const std::string dataset = req["dataset"].get<std::string>();
    const std::string request_id = req["request_id"].get<std::string>();
    base = {{"dataset", dataset}, {"request_id", request_id}};
    CR_ASSIGN(auto signer, crypto::PublicIdentity::FromText(req["signer"].get<std::string>()));
    actor = "key:" + signer.Fingerprint();
    auto sig = crypto::Base64Decode(req["signature"].get<std::string>());
    if (!sig || !crypto::Verify(signer, SignedBytes(req), *sig)) {
      return Fail(ErrorCode::SIGNATURE_INVALID, "the erasure request's signature does not verify");
    }
    const spec::Party* party = spec.FindPartyByKey(signer);
    if (!party) {
      return Fail(ErrorCode::UNKNOWN_SIGNER,
                  "the erasure request is signed by a key of no party ({})", signer.Fingerprint());
    }
    actor = party->name;
    if (caller && !(*caller == signer)) {
      if (sender) actor = sender->name;  // the one who sent another party's request
      return Fail(ErrorCode::WRONG_SIGNER,
                  "the erasure request is not signed by the party sending it");
    }
    const spec::Dataset* ds = spec.FindDataset(dataset);
    if (!ds) return Fail(ErrorCode::UNKNOWN_DATASET, "the spec has no dataset '{}'", dataset);
    if (party->name != ds->owner) {
      return Fail(ErrorCode::WRONG_SIGNER,
                  "dataset '{}' belongs to '{}': only its owner may ask to forget a unit, not '{}'",
                  ds->name, ds->owner, party->name);
    }
    if (!room.active()) return Fail(ErrorCode::ROOM_NOT_ACTIVE, "the room is not active");
    if (req["collaboration"] != spec.collaboration || req["spec_hash"] != spec.hash ||
        req["column"] != ds->privacy_unit_column) {
      return Fail(ErrorCode::SPEC_MISMATCH,
                  "the erasure request was made under another collaboration or spec version");
    }
    if (room.PackageSeen(request_id)) {
      return Fail(ErrorCode::AUTH_REPLAYED, "erasure request {} was already received", request_id);
    }
    auto stored = room.datasets().find(ds->name);
    if (stored == room.datasets().end()) {
      return Fail(ErrorCode::UNKNOWN_DATASET, "the room holds no data for '{}'", ds->name);
    }
    const room::DatasetEntry previous = stored->second;
    const std::string unit = req["unit"].get<std::string>();

    // Everything decrypted in memory; the rows of every other unit (and rows
    // without one) are written to a new in-memory Parquet file.
    CR_ASSIGN(auto plain, room.Decrypt(ds->name));
    CR_ASSIGN(auto kept, engine::MemFile::Create("cleanroom-forget"));
    CR_ASSIGN(auto db, engine::Database::Open(engine::Options{}));
    CR_TRY(db.RegisterUuidFunction("__cr_unit", std::make_shared<HexUnit>()));
    auto copied = db.Query(
        fmt::format("COPY (SELECT * FROM read_parquet({}) WHERE {} IS DISTINCT FROM __cr_unit({})) "
                    "TO {} (FORMAT parquet, USE_TMP_FILE false)",
                    engine::QuoteLiteral(plain.path()), engine::QuoteIdent(ds->privacy_unit_column),
                    engine::QuoteLiteral(unit), engine::QuoteLiteral(kept.path())),
        ErrorCode::INTERNAL, false);
    if (!copied) return Fail(ErrorCode::INTERNAL, "cannot write the dataset without the unit");
    plain.Wipe();
    CR_ASSIGN(auto counted, db.Query("SELECT count(*) FROM read_parquet(" +
                                         engine::QuoteLiteral(kept.path()) + ")",
                                     ErrorCode::INTERNAL, false));
    CR_ASSIGN(auto segments, room::ParquetSegments(db, kept));

    package::Header h;
    h.package_id = request_id;
    h.collaboration = spec.collaboration;
    h.spec_hash = spec.hash;
    h.dataset = ds->name;
    h.row_count = counted.ScalarInt();
    h.schema = previous.schema;
    room::Room::StoreRecord record;
    record.event = "dataset.forget";
    record.refused_event = "forget.refused";
    record.keep_ingest_time = true;
    // Removing rows keeps every remaining unit in one row, in one part.
    record.unique_units = previous.unique_units;
    // No count of removed rows, no pseudonym: the room's own tag only.
    record.details = {{"request_id", request_id},
                      {"previous_package_id", previous.package_id},
                      {"unit_tag", UnitTag(room, unit)},
                      {"requested_at", req["created_at"]}};
    storing = true;
    // The version's fingerprint is the signed request's hash: what it came from.
    CR_TRY(room.StoreDataset(kept, segments, h, ToHex(crypto::Sha256(req.dump())), party->name,
                             record));
    kept.Wipe();
    return ForgetReport{ds->name, request_id, party->name};
  };
  auto report = run();
  if (!report && !storing) {
    nlohmann::json d = base;
    d["reason"] = report.error().message;
    return room.audit().Refuse("forget.refused", actor, std::move(d), report.error());
  }
  return report;
}

nlohmann::json ForgetAnswer(const ForgetReport& rep) {
  return {{"dataset", rep.dataset},
          {"request_id", rep.request_id},
          {"version", rep.request_id},
          {"forgotten", true}};
}

}  // namespace cr::ingest
