// Room side: verify a contribution package (signature, owner, spec version,
// replay, schema, every byte) and store it, or refuse it changing nothing.
#pragma once

#include <string>

#include "common/error.h"
#include "room/room.h"

namespace cr::ingest {

struct IngestReport {
  std::string dataset;
  std::string package_id;
  std::string owner;
  int64_t rows = 0;
  uint64_t bytes = 0;
  bool replaced = false;  // an earlier package of the dataset was disposed
};

// Checks, in order: the room is active (ROOM_NOT_ACTIVE); the file is a
// package whose signature verifies (TAMPERED, exit 6); the signer is a party
// (UNKNOWN_SIGNER) and the dataset's owner (WRONG_SIGNER, exit 5); it was made
// for this collaboration and spec version (SPEC_MISMATCH, exit 3); the dataset
// exists (UNKNOWN_DATASET); the id was never ingested (PACKAGE_REPLAYED, exit
// 3); the data key is sealed to this room (KEY_INVALID); the declared and
// actual schema and row count equal the spec's (SCHEMA_MISMATCH, exit 7). Only
// then is anything written. Every outcome is audited here exactly once:
// dataset.ingest (Room::StoreDataset) or ingest.refused with the code; callers
// add nothing.
Result<IngestReport> Ingest(room::Room& room, const std::string& package_path);

// The schema a dataset's package must carry (join keys become UUID pseudonyms).
std::vector<package::SchemaColumn> ExpectedSchema(const spec::Dataset& dataset);

}  // namespace cr::ingest
