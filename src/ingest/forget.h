// Erasure requests: the owner's side computes one unit's pseudonym and signs a
// request; the room stores the dataset without that unit's rows as a new
// version and crypto-shreds the old one (docs/erasure.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "crypto/crypto.h"
#include "room/room.h"

namespace cr::ingest {

// What the owner signs (JSON, keys sorted):
//   {"kind": "cleanroom.forget/v1", "request_id": 32 hex (random: the replay
//    key and the new version's id), "collaboration", "spec_hash", "dataset",
//    "column": the privacy unit column, "unit": 32 hex (the pseudonym, exactly
//    as prepare computes it), "signer": crpub1 text, "created_at": RFC 3339,
//    "signature": base64url Ed25519 over the compact dump without "signature"}
// The request holds the pseudonym, never the identifier it came from.
inline constexpr std::string_view kForgetKind = "cleanroom.forget/v1";

struct ForgetOptions {
  std::string spec_path;
  std::string dataset;
  std::string id;  // the identifier as the party's data holds it (normalised here)
  std::string key_path;
  std::string secret_path;
};

// Party side. UNKNOWN_DATASET; UNKNOWN_SIGNER (the key is no party's);
// NOT_AUTHORIZED (not the dataset's owner); BAD_INPUT (nothing is left of the
// id after normalisation); FILE_UNREADABLE / KEY_INVALID for the files.
Result<nlohmann::json> MakeForgetRequest(const ForgetOptions& options);

// The unit's pseudonym for `id` under the spec's dataset, as 32 hex digits:
// the bytes `prepare` stores for it (same key, same normalisation).
Result<std::string> UnitPseudonym(const spec::Spec& spec, const spec::Dataset& dataset,
                                  const crypto::SecureBuffer& secret, std::string_view id);

struct ForgetReport {
  std::string dataset;
  std::string request_id;  // also the id of the new stored version
  std::string owner;
};

// Room side. Checks, in order, before anything is written: the request parses
// (BAD_INPUT) and its signature verifies (SIGNATURE_INVALID); the signer is a
// party (UNKNOWN_SIGNER), the dataset's owner (WRONG_SIGNER, exit 5) and, over
// the server, the authenticated caller (`caller`, WRONG_SIGNER); the room is
// active (ROOM_NOT_ACTIVE); the request is for this collaboration and spec
// version (SPEC_MISMATCH); the room holds the dataset (UNKNOWN_DATASET); the
// request id was never used (AUTH_REPLAYED, exit 5). Then the dataset is
// decrypted, every row whose privacy unit equals the request's is dropped, and
// the rest is stored as a new version (Room::StoreDataset: the old one is
// crypto-shredded), audited as dataset.forget; refusals as forget.refused.
//
// Whether the unit had rows is in neither the answer nor the audit record: a
// new version is written either way (see docs/erasure.md for what remains).
Result<ForgetReport> Forget(room::Room& room, const nlohmann::json& request,
                            const crypto::PublicIdentity* caller = nullptr);

// What `forget --format json` prints and POST /v1/forget answers: the same
// whether or not the unit had rows.
nlohmann::json ForgetAnswer(const ForgetReport& report);

}  // namespace cr::ingest
