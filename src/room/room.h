// The room folder: its key, the signed spec, activation, the dataset catalogue
// (encrypted packages with wrapped keys), retention and disposal, and
// decryption of datasets into memory for the engine.
//
// Layout of DIR (room.pub and audit.log are part of the contract):
//   room.pub          the room's public key (parties seal data keys to it)
//   keystore.json     the room's secret key, sealed by its key store (key_store.h):
//                     never on the disk in clear
//   spec.yaml         the exact spec bytes; spec-keys.json: bytes of the key files it names
//   state.json        initialized | active, with the parties' signatures
//   catalog.json      datasets in the room, every package id ever ingested (replay
//                     ledger) and the datasets disposed since (so a second dispose
//                     says so); "generation" counts its commits
//   data/NAME-ID.crdata the dataset, re-encrypted at ingest under a fresh key (data_file.h)
//   keys/NAME-ID.key    that key, wrapped (XChaCha20-Poly1305) by a key derived from the room key
//   results/ID/       released results (results.h)
//   audit.log         the hash-chained, signed audit log
//
// state.json, catalog.json, spec-keys.json and every results/ID/meta.json are
// sealed (sealed_meta.h): a MAC under a subkey of the room key, bound to the
// file's name. Every audit entry that changes the catalogue carries its
// generation and SHA-256 ("catalog"), and Open compares the newest such entry
// with the file: an older, validly sealed catalogue put back is TAMPERED.
//
// Every file is parsed inside the error path: a missing, truncated, bit-flipped,
// swapped or mistyped room file makes Open fail with TAMPERED (or
// AUDIT_CHAIN_BROKEN for audit.log), never with an exception, and changes nothing.
//
// Each operation here owns its audit records, success and refusal alike, so no
// caller (CLI, demo, server) can forget or duplicate one: Activate writes
// room.activate / room.activate.refused, StoreDataset dataset.ingest /
// ingest.refused, Dispose dataset.dispose / dataset.dispose.refused.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/audit_log.h"
#include "common/env.h"
#include "common/error.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "package/package.h"
#include "room/data_file.h"
#include "room/history.h"
#include "room/key_store.h"
#include "room/sealed_meta.h"
#include "spec/spec.h"

namespace cr::room {

struct DatasetEntry {
  // The dataset's name, or for a part of a pooled dataset PartName(dataset,
  // contributor): each contributor's latest part is its own entry.
  std::string name;
  std::string package_id;
  std::string owner;
  std::string ingested_at;
  long long ingested_unix = 0;
  int64_t rows = 0;
  uint64_t bytes = 0;  // size of the stored (encrypted) data file
  std::string digest;  // fingerprint of the package it came from (package::Fingerprinter)
  std::vector<package::SchemaColumn> schema;
  // Every privacy unit of this entry is in exactly one of its rows, and (for
  // a part of a pooled dataset) in no other contributor's part that was in
  // the room when it was stored: checked at ingest (ingest.h). When every
  // part says so, a single-dataset query counts units without DISTINCT and
  // fetches unit sets for the difference checks only when they are needed.
  bool unique_units = false;
};

// What state.json and the package ledger record about the room, for `status`
// and `datasets`.
struct RoomInfo {
  int format = 0;                      // version of the room folder's layout
  std::string created_at;
  std::string activated_at;            // "" until activation
  std::vector<std::string> signed_by;  // parties whose signature activation stored
  std::map<std::string, int64_t> packages;  // dataset -> packages ever ingested for it
  std::string region;                  // where the room runs (room init --region); "" when not said
  uint64_t version = 0;                // spec version in force (0 before activation)
};

// A dataset the room held and crypto-shredded.
struct DisposedEntry {
  std::string package_id;
  std::string disposed_at;
  std::string reason;  // request | retention | recovery
};

enum class OpenMode {
  kReadWrite,  // takes the room lock and applies retention
  kReadOnly,   // for inspection (audit verify/show): no lock, no retention
};

struct OpenOptions {
  OpenMode mode = OpenMode::kReadWrite;
  // Stamps audit entries and catalogue times and decides retention; must
  // outlive the Room. DefaultClock() when null.
  const Clock* clock = nullptr;
  // How long to wait for another command holding the room before ROOM_BUSY.
  std::chrono::milliseconds lock_wait{60000};
};

struct InitOptions {
  const Clock* clock = nullptr;  // DefaultClock() when null
  KeyStoreChoice key_store;      // how the new room key is held (key_store.h)
  // Where the room runs ([a-z0-9-]+). A spec that names a region activates
  // only in a room of that region (REGION_MISMATCH); "" matches no region.
  std::string region;
};

class Room {
 public:
  // Creates DIR (absent or empty) for the spec at `spec_path`: room key pair,
  // room.pub, a copy of the spec and its key files, state "initialized", and
  // the first audit entry. ROOM_EXISTS when DIR already holds a room.
  // The room key is sealed by the default key store (CLEANROOM_KEY_STORE, else
  // a passphrase); the overload with InitOptions chooses.
  static Result<crypto::PublicIdentity> Init(const std::string& dir, const std::string& spec_path,
                                              const Clock& clock = DefaultClock());
  static Result<crypto::PublicIdentity> Init(const std::string& dir, const std::string& spec_path,
                                              const InitOptions& options);

  // Moves a room's key into `key_store`: a room made before key stores (its
  // key in clear in room.key, which Open refuses with KEY_UNPROTECTED) has its
  // metadata sealed and room.key overwritten and deleted; a protected room
  // gets a new key store (another passphrase, or a token). Audited as
  // room.protect. Returns the new store's kind.
  static Result<std::string> Protect(const std::string& dir, const KeyStoreChoice& key_store,
                                     const Clock& clock = DefaultClock());

  // Replaces DIR (absent, empty, or this room) by the room in `archive`
  // (written by Backup): the archive's seal and every file's hash are checked
  // with the key its key store unlocks, the restored room must open cleanly,
  // and a catalogue older than the one DIR's audit log records is refused
  // (BACKUP_STALE). The folder it replaces is kept as DIR.before-restore-TIME
  // (returned). Audited as room.restore in the restored log.
  static Result<std::string> Restore(const std::string& dir, const std::string& archive,
                                     const Clock& clock = DefaultClock());

  // Replaces the room key by a new one (docs/operations.md, "Rotating the
  // room key"). The room is rebuilt beside DIR: the new key sealed by a key
  // store of `key_store`'s kind (kDefault: the kind holding the key now, with
  // the same passphrase source or token), every data key re-wrapped, every
  // sealed metadata file (sealed_meta.h) sealed again, the budget ledger
  // signed again and its answers re-encrypted, the new room.pub, and the
  // audit log with a "room.rotate-key" entry signed by the old key that names
  // the new one (audit_log.h: verification follows it). Ciphertext of data
  // and sealed results is linked, not copied: their own keys do not change.
  // The rebuilt folder is checked to open, then swapped with DIR in one
  // atomic rename (RENAME_EXCHANGE), so a crash leaves the old room or the
  // new one at DIR, never neither; the old folder's key store and wrapped
  // keys are then overwritten and it is removed. Packages prepared for the
  // old room.pub are refused from then on (KEY_INVALID). A refusal is
  // audited as room.rotate-key.refused and changes nothing. Returns the new
  // public key.
  static Result<crypto::PublicIdentity> RotateKey(const std::string& dir,
                                                  const KeyStoreChoice& key_store,
                                                  const Clock& clock = DefaultClock());

  // Checks every room file (TAMPERED / AUDIT_CHAIN_BROKEN when one is missing
  // or damaged; FILE_UNREADABLE when DIR is not a room), takes the lock
  // (ROOM_BUSY after `lock_wait`), then finishes interrupted disposals, shreds
  // replaced packages left behind (a key that could not be deleted), and
  // crypto-shreds datasets past retention_days, each audited.
  static Result<Room> Open(const std::string& dir, const OpenOptions& options);
  static Result<Room> Open(const std::string& dir, OpenMode mode = OpenMode::kReadWrite);
  ~Room();
  Room(Room&&) noexcept;
  Room& operator=(Room&&) noexcept;

  const std::string& dir() const;
  const spec::Spec& spec() const;
  const crypto::Identity& key() const;
  // Seals and opens the room's metadata files (also for results and budget stores).
  const MetaSealer& sealer() const;
  // What holds the key (DescribeKeyStore), for `room unlock`.
  nlohmann::json KeyStoreInfo() const;
  const Clock& clock() const;
  bool active() const;
  audit::AuditLog& audit();
  const std::map<std::string, DatasetEntry>& datasets() const;
  // The stored entries of spec dataset `dataset`: its one entry, or for a
  // pooled dataset each contributor's part in the spec's contributor order.
  std::vector<const DatasetEntry*> Parts(const std::string& dataset) const;
  bool PackageSeen(const std::string& package_id) const;
  RoomInfo Info() const;
  // The last disposal of `dataset` when it is not back in the room; nullptr otherwise.
  const DisposedEntry* Disposed(const std::string& dataset) const;

  // Verifies the signature files (spec::Verify each) and activates once every
  // party has a valid one. Anything else (missing party: SIGNATURE_MISSING;
  // unknown signer; invalid signature; another spec; already active:
  // ROOM_EXISTS) fails, is audited as room.activate.refused, and the room
  // stays as it was. An activation that cannot be audited is undone.
  Status Activate(const std::vector<std::string>& signature_files);

  // Activates the spec at `spec_path` as version N+1 of an active room
  // (history.h): the same collaboration, new bytes (a spec of an earlier
  // version is SPEC_MISMATCH: its old signatures would bring back what it
  // had), the room's region, and a valid signature from every party of the
  // new version. Datasets whose definition changed or that it drops are
  // crypto-shredded first (dataset.dispose, reason spec-change); the others
  // stay. From then on the spec in force is the new one: a removed party or a
  // replaced key is no party, packages prepared for the old spec hash are
  // SPEC_MISMATCH. Results and the privacy budget carry over. Audited as
  // room.update (what changed) or room.update.refused; nothing changes on a
  // refusal.
  Result<VersionChange> ActivateVersion(const std::string& spec_path,
                                        const std::vector<std::string>& signature_files);

  // Where the room runs ("" when room init had no --region), the version in
  // force (0 before activation) and every activated version, oldest first.
  std::string region() const;
  uint64_t version() const;
  const std::vector<VersionRecord>& history() const;

  // Stores the plaintext of an already verified package: re-encrypted under a
  // fresh key (data_file.h), the key wrapped by the room, the catalogue
  // committed and audited (dataset.ingest; undone when it cannot be), then the
  // dataset's previous data crypto-shredded. A failure is audited as
  // ingest.refused, or, when only the shredding of the previous package
  // failed, as dataset.dispose.refused, and returned.
  Status StoreDataset(const engine::MemFile& plain, const std::vector<Segment>& segments,
                      const package::Header& header, const std::string& package_digest,
                      const std::string& owner);
  // The same for a version the room derives from the stored one (an erasure
  // request, ingest/forget.h): `record` names its events and adds details.
  struct StoreRecord {
    std::string event = "dataset.ingest";
    std::string refused_event = "ingest.refused";
    nlohmann::json details = nlohmann::json::object();
    // Retention counts from the contribution, not from a derived version.
    bool keep_ingest_time = false;
    // DatasetEntry::unique_units, as the caller checked it.
    bool unique_units = false;
  };
  Status StoreDataset(const engine::MemFile& plain, const std::vector<Segment>& segments,
                      const package::Header& header, const std::string& package_digest,
                      const std::string& owner, const StoreRecord& record);

  // Crypto-shreds a dataset: deletes the wrapped key, then the ciphertext,
  // then updates the catalogue (remembering the disposal), and audits it as
  // dataset.dispose. UNKNOWN_DATASET when the room holds nothing for it (the
  // message says when it was already disposed); any failure, including a key
  // that cannot be deleted, is audited as dataset.dispose.refused.
  Status Dispose(const std::string& dataset, const std::string& reason, const std::string& actor);

  // Crypto-shreds (Dispose, reason "retention") every dataset older than the
  // spec's retention_days by the room's clock; returns how many. Open does it;
  // a long-running holder of the room (`serve`) calls it again as time passes.
  Result<size_t> ApplyRetention();

  // Decrypts a dataset into an in-memory file: only the shared bytes and the
  // chunks of `columns` when given (the other columns' bytes read as zeros:
  // mount a view selecting only `columns`), every byte otherwise. TAMPERED
  // when anything read fails authentication.
  Result<engine::MemFile> Decrypt(const std::string& dataset,
                                  const std::set<std::string>* columns = nullptr,
                                  unsigned threads = 0) const;

  // Writes every file of the room (ciphertext, sealed metadata, key store,
  // audit log) to `out`, sealed under the room's metadata key, and audits
  // room.backup. The archive holds no key in clear: without the passphrase or
  // the token it is as useless as the folder. FILE_EXISTS when `out` exists.
  Status Backup(const std::string& out);

  // Mounts every stored dataset as a read-only view named after it; the
  // MemFiles must outlive the views' use.
  Result<std::vector<engine::MemFile>> MountAll(engine::Database& db) const;

 private:
  Room();
  // Open; a room whose key is in clear (room.key) only when `clear_key_ok`.
  static Result<Room> OpenImpl(const std::string& dir, const OpenOptions& options, bool clear_key_ok);
  struct State;
  std::unique_ptr<State> s_;
};

// The catalogue name of a contributor's part of a pooled dataset,
// "DATASET@CONTRIBUTOR" ('@' is in neither name). The name is bound into the
// part's file names and the associated data of its keys, so a part cannot be
// passed off as another contributor's.
std::string PartName(const std::string& dataset, const std::string& contributor);
// The spec dataset of a catalogue name (the name itself when it is no part).
std::string DatasetOf(const std::string& entry_name);

// Where `Room::Init` leaves the public key: DIR/room.pub.
std::string RoomPubPath(const std::string& dir);
std::string AuditLogPath(const std::string& dir);

}  // namespace cr::room
