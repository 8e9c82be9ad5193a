// Key custody through the binary (issue 12): the room key is never on the disk
// in clear, a copied folder is useless without the passphrase or the token,
// every sealed room file that changes is TAMPERED, an old catalogue put back is
// caught, backups restore only forwards, old rooms migrate with room protect,
// and a room on a PKCS#11 token (SoftHSM2) works and fails closed without it.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "crypto/crypto.h"
#include "e2e/e2e_fixture.h"
#include "ingest/pseudonym.h"
#include "room/key_store.h"
#include "room/room.h"

namespace cr::testing {
namespace {

using nlohmann::json;

constexpr char kSoftHsm[] = "/usr/lib/softhsm/libsofthsm2.so";

class CustodyE2e : public E2eTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    Spit(P("pass"), "correct horse battery staple\n");
    ::chmod(P("pass").c_str(), 0600);
    Spit(P("wrong-pass"), "not the passphrase\n");
    ::chmod(P("wrong-pass").c_str(), 0600);
  }

  // The environment of a command that holds the passphrase (or, for pkcs11,
  // the token configuration and PIN).
  std::string WithPass(const std::string& file = "pass") const {
    return "CLEANROOM_PASSPHRASE_FILE=" + Q(P(file));
  }
  std::string Hsm() const {
    return "SOFTHSM2_CONF=" + Q(P("softhsm2.conf")) + " CLEANROOM_PKCS11_PIN_FILE=" + Q(P("pin"));
  }

  RunResult RunAs(const std::string& env, const std::string& args) { return Run(args, env); }
  void OkAs(const std::string& env, const std::string& args) {
    auto r = Run(args, env);
    ASSERT_EQ(r.exit_code, 0) << args << "\nstderr: " << r.err;
  }

  // Keys, secret, spec, a room held by `store_flags` and activated, both
  // datasets ingested, every command run with `env`.
  void MakeRoom(const std::string& store_flags, const std::string& env, const std::string& room = "room") {
    if (!PathExists(P("keys/acme.key"))) {
      Ok("keygen --name acme --out " + Q(P("keys")));
      Ok("keygen --name newsco --out " + Q(P("keys")));
      Ok("secret new --out " + Q(P("shared.secret")));
      Spit(P("spec.yaml"), SpecText());
      Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/acme.key")));
      Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/newsco.key")));
      Generate(3000, 600);
    }
    OkAs(env, "room init --region eu " + store_flags + " --room " + Q(P(room)) + " --spec " + Q(P("spec.yaml")));
    OkAs(env, "room activate --room " + Q(P(room)) + " --sig " + Q(P("spec.yaml.acme.sig")) + " " +
                  Q(P("spec.yaml.newsco.sig")));
    ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", room + "-imp.crpkg",
                      "spec.yaml", room + "/room.pub").exit_code, 0);
    ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", room + "-pur.crpkg",
                      "spec.yaml", room + "/room.pub").exit_code, 0);
    OkAs(env, "--room " + Q(P(room)) + " ingest " + Q(P(room + "-imp.crpkg")));
    OkAs(env, "--room " + Q(P(room)) + " ingest " + Q(P(room + "-pur.crpkg")));
  }

  std::string Query(const std::string& room = "room") const {
    return "--room " + Q(P(room)) + " --key " + Q(P("keys/acme.key")) +
           " query --format json --sql " +
           Q("SELECT campaign, COUNT(DISTINCT email) FROM impressions GROUP BY campaign");
  }

  // Every command that reads the room's data or changes it (audit verify and
  // show read only the log, which parties may read anyway).
  std::vector<std::string> DataCommands(const std::string& room) const {
    const std::string r = "--room " + Q(P(room));
    return {Query(room),
            r + " --key " + Q(P("keys/acme.key")) + " results list",
            r + " datasets",
            r + " status",
            r + " ingest " + Q(P("room-imp.crpkg")),
            r + " dispose --dataset impressions --yes",
            r + " room unlock",
            r + " room backup --out " + Q(P("stolen.bak"))};
  }

  void MakeToken() {
    std::filesystem::create_directories(P("tokens"));
    Spit(P("softhsm2.conf"), "directories.tokendir = " + P("tokens") +
                                 "\nobjectstore.backend = file\nlog.level = ERROR\n");
    Spit(P("pin"), "87654321\n");
    ::chmod(P("pin").c_str(), 0600);
    auto r = RunShell("SOFTHSM2_CONF=" + Q(P("softhsm2.conf")) +
                      " softhsm2-util --init-token --free --label cr-test --so-pin 12345678 --pin 87654321");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
};

// Every file's bytes, to grep.
std::vector<std::pair<std::string, std::string>> AllFiles(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [rel, bytes] : Snapshot(dir)) out.push_back({rel, bytes});
  return out;
}

TEST_F(CustodyE2e, PassphraseRoomWorksAndNoSecretOrPlaintextIsInTheFolder) {
  MakeRoom("--key-store passphrase", WithPass());
  auto q = RunAs(WithPass(), Query());
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto unlock = RunAs(WithPass(), "--room " + Q(P("room")) + " room unlock --format json");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  json info = json::parse(unlock.out);
  EXPECT_EQ(info["key_store"], "passphrase");
  EXPECT_EQ(info["kdf"], "argon2id13");
  EXPECT_EQ(info["memlimit"], crypto_pwhash_MEMLIMIT_MODERATE);
  EXPECT_FALSE(PathExists(P("room/room.key")));

  // What an outsider could look for: the room key, every data key, the input's
  // identifiers and values, and the pseudonyms the room joins on.
  room::UsePassphraseFile(P("pass"));
  room::OpenOptions ro;
  ro.mode = room::OpenMode::kReadOnly;
  auto opened = room::Room::Open(P("room"), ro);
  ASSERT_TRUE(opened) << opened.error().message;
  std::vector<std::string> needles;
  auto key_text = opened->key().ToText();
  needles.push_back(std::string(key_text.view()));
  auto raw_key = crypto::Base64Decode(std::string(key_text.view()).substr(7));
  ASSERT_TRUE(raw_key);
  needles.push_back(*raw_key);
  const char wrap_context[8] = {'c', 'r', 'w', 'r', 'a', 'p', 'k', '1'};
  auto wrap = opened->key().DeriveKey(1, wrap_context);
  for (const auto& [name, e] : opened->datasets()) {
    auto wrapped = Slurp(P("room/keys/" + name + "-" + e.package_id + ".key"));
    auto data_key = crypto::AeadOpen(wrap, wrapped, name + "/" + e.package_id);
    ASSERT_TRUE(data_key) << name;
    needles.push_back(std::string(data_key->view()));
  }
  EXPECT_EQ(needles.size(), 4u);
  auto secret = crypto::LoadSharedSecret(P("shared.secret"));
  ASSERT_TRUE(secret);
  ingest::Pseudonymizer pseudo(ingest::PseudonymKey(*secret, "acme-newsco-2026q4", "email"),
                               spec::Normalize::kEmail);
  std::ifstream csv(P("impressions.csv"));
  std::string line;
  std::getline(csv, line);  // header
  std::set<std::string> values;
  for (int i = 0; i < 100 && std::getline(csv, line); ++i) {
    std::stringstream cells(line);
    std::string cell;
    for (int c = 0; std::getline(cells, cell, ','); ++c) {
      if (c == 0) {
        unsigned char p[16];
        ASSERT_TRUE(pseudo.Map(cell, p));
        values.insert(std::string(reinterpret_cast<char*>(p), 16));
        values.insert(ToHex(std::string_view(reinterpret_cast<char*>(p), 16)));
      }
      if (cell.size() >= 6) values.insert(cell);  // emails, device ids, timestamps
    }
  }
  ASSERT_GT(values.size(), 200u);
  for (const auto& v : values) needles.push_back(v);
  for (const auto& [rel, bytes] : AllFiles(P("room"))) {
    for (const auto& n : needles) {
      ASSERT_EQ(bytes.find(n), std::string::npos) << "a secret or a value in room/" << rel;
    }
  }
}

TEST_F(CustodyE2e, ACopiedFolderWithoutThePassphraseIsUselessAndUnchanged) {
  MakeRoom("--key-store passphrase", WithPass());
  std::filesystem::copy(P("room"), P("stolen"), std::filesystem::copy_options::recursive);
  const auto before = Snapshot(P("stolen"));
  const auto commands = DataCommands("stolen");
  for (size_t i = 0; i < commands.size(); ++i) {
    SCOPED_TRACE(commands[i]);
    ExpectRefused(Run(commands[i]), 5, "KEY_STORE_UNAVAILABLE");  // no passphrase at all
    // A wrong one costs Argon2id each time: a query, an ingest and a backup suffice.
    if (i == 0 || i == 4 || i == 7) {
      ExpectRefused(RunAs(WithPass("wrong-pass"), commands[i]), 5, "UNLOCK_FAILED");
    }
  }
  EXPECT_EQ(Snapshot(P("stolen")), before);  // audit.log included: nothing was written
  EXPECT_FALSE(PathExists(P("stolen.bak")));
  // The passphrase is never an argument.
  auto flag = Run("--room " + Q(P("stolen")) + " room unlock --passphrase 'correct horse'");
  ExpectRefused(flag, 2, "USAGE");
  // And the holder of the passphrase still gets in, from a file descriptor too.
  auto fd = Run("--room " + Q(P("stolen")) + " room unlock --passphrase-fd 3 3<" + Q(P("pass")));
  EXPECT_EQ(fd.exit_code, 0) << fd.err;
}

TEST_F(CustodyE2e, InitWithoutAPassphraseSourceSaysHowToGiveOne) {
  Ok("keygen --name acme --out " + Q(P("keys")));
  Ok("keygen --name newsco --out " + Q(P("keys")));
  Spit(P("spec.yaml"), SpecText());
  // The default key store is the passphrase.
  auto r = Run("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")), "CLEANROOM_KEY_STORE=");
  ExpectRefused(r, 2, "USAGE");
  EXPECT_NE(r.err.find("--passphrase-fd"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CLEANROOM_PASSPHRASE_FILE"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(P("room")));
  Spit(P("open-pass"), "correct horse battery staple\n");
  ::chmod(P("open-pass").c_str(), 0644);
  auto readable = Run("room init --region eu --key-store passphrase --room " + Q(P("room")) + " --spec " +
                      Q(P("spec.yaml")), WithPass("open-pass"));
  ExpectRefused(readable, 5, "KEY_INVALID");
  EXPECT_FALSE(PathExists(P("room")));
  auto pkcs = Run("room init --region eu --key-store pkcs11 --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
  ExpectRefused(pkcs, 2, "USAGE");
  EXPECT_FALSE(PathExists(P("room")));
}

// Every sealed file, cut, with a byte flipped, retyped (valid JSON, other
// types), or replaced by the same file of another room or another file of
// this room: exit 6, and the room is unchanged.
TEST_F(CustodyE2e, EveryRoomFileDamagedAnyWayIsTampered) {
  MakeRoom("--key-store test-plain", "");
  MakeRoom("--key-store test-plain", "", "other");
  ASSERT_EQ(Run(Query()).exit_code, 0);
  ASSERT_EQ(Run(Query("other")).exit_code, 0);
  std::string result_meta;
  for (auto& e : std::filesystem::directory_iterator(P("room/results"))) {
    result_meta = "results/" + e.path().filename().string() + "/meta.json";
  }
  ASSERT_FALSE(result_meta.empty());
  std::string other_meta;
  for (auto& e : std::filesystem::directory_iterator(P("other/results"))) {
    other_meta = "results/" + e.path().filename().string() + "/meta.json";
  }
  const auto good = Snapshot(P("room"));
  const std::string results_list = "--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) + " results list";
  for (const std::string file : {"state.json", "catalog.json", "spec-keys.json", result_meta.c_str()}) {
    const std::string bytes = good.at(file);
    std::vector<std::pair<std::string, std::string>> damages;
    for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 2, bytes.size() - 1}) {
      damages.push_back({"cut at " + std::to_string(cut), bytes.substr(0, cut)});
    }
    for (size_t at : {size_t{0}, size_t{1}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 10,
                      bytes.size() - 3, bytes.size() - 1}) {
      for (unsigned char mask : {0x01, 0x20, 0x80}) {
        std::string b = bytes;
        b[at] = static_cast<char>(b[at] ^ mask);
        damages.push_back({"byte " + std::to_string(at) + " ^ " + std::to_string(mask), b});
      }
    }
    // A space that becomes a tab leaves the same JSON: only a MAC over the bytes sees it.
    if (size_t sp = bytes.find(' '); sp != std::string::npos) {
      std::string b = bytes;
      b[sp] = '\t';
      damages.push_back({"space to tab", b});
    }
    json j = json::parse(bytes);
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "mac") continue;
      for (const json& wrong : {json(7), json("x"), json::array(), json(nullptr)}) {
        json k = j;
        k[it.key()] = wrong;
        damages.push_back({"field " + it.key() + " retyped", k.dump(2) + "\n"});
      }
    }
    damages.push_back({"the other room's", Slurp(P("other/" + (file == result_meta ? other_meta : file)))});
    damages.push_back({"another file of this room", good.at(file == "state.json" ? "catalog.json" : "state.json")});
    for (const auto& [what, damaged] : damages) {
      SCOPED_TRACE(file + ": " + what);
      Spit(P("room/" + file), damaged);
      const auto before = Snapshot(P("room"));
      auto r = Run(file == result_meta ? results_list : Query());
      ExpectRefused(r, 6, "TAMPERED");
      EXPECT_EQ(Snapshot(P("room"), "audit.log"), [&] {
        auto b = before;
        b.erase("audit.log");
        return b;
      }());
      Spit(P("room/" + file), bytes);
    }
  }
  EXPECT_EQ(Run(Query()).exit_code, 0);
}

// Difference-checked queries change the unit-set index and not the
// catalogue: a backup from before them, restored over the room, would make
// the checks forget those answers. Refused as stale, the room unchanged; a
// backup taken after them restores.
TEST_F(CustodyE2e, ABackupFromBeforeCheckedQueriesIsStale) {
  MakeRoom("--key-store test-plain", "");
  ASSERT_EQ(Run(Query()).exit_code, 0);
  Ok("--room " + Q(P("room")) + " room backup --out " + Q(P("old.bak")));
  auto other = Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                   " query --format json --sql " +
                   Q("SELECT COUNT(DISTINCT email) AS people FROM impressions"));
  ASSERT_EQ(other.exit_code, 0) << other.err;
  const auto before = Snapshot(P("room"));
  auto stale = Run("--room " + Q(P("room")) + " room restore --from " + Q(P("old.bak")));
  ExpectRefused(stale, 3, "BACKUP_STALE");
  EXPECT_NE(stale.err.find("difference-check"), std::string::npos) << stale.err;
  EXPECT_EQ(Snapshot(P("room")), before);
  Ok("--room " + Q(P("room")) + " room backup --out " + Q(P("new.bak")));
  Ok("--room " + Q(P("room")) + " room restore --from " + Q(P("new.bak")));
  EXPECT_EQ(Run(Query()).exit_code, 0);
}

TEST_F(CustodyE2e, AnOlderCatalogueOrBackupPutBackIsRefused) {
  MakeRoom("--key-store test-plain", "");
  const std::string old_catalog = Slurp(P("room/catalog.json"));
  Ok("--room " + Q(P("room")) + " room backup --out " + Q(P("old.bak")));
  ASSERT_EQ(Run("--room " + Q(P("room")) + " dispose --dataset purchases --yes").exit_code, 0);
  // Put back by hand: validly sealed, but not the catalogue the log records last.
  const std::string new_catalog = Slurp(P("room/catalog.json"));
  Spit(P("room/catalog.json"), old_catalog);
  ExpectRefused(Run(Query()), 6, "TAMPERED");
  auto st = Run("--room " + Q(P("room")) + " status");
  ExpectRefused(st, 6, "TAMPERED");
  EXPECT_NE(st.err.find("older copy"), std::string::npos) << st.err;
  Spit(P("room/catalog.json"), new_catalog);
  ASSERT_EQ(Run(Query()).exit_code, 0);

  // Through restore: the older backup is refused and the room left as it was.
  const auto before = Snapshot(P("room"));
  auto stale = Run("--room " + Q(P("room")) + " room restore --from " + Q(P("old.bak")));
  ExpectRefused(stale, 3, "BACKUP_STALE");
  EXPECT_EQ(Snapshot(P("room")), before);

  // A current backup restores, into a new folder or over the room, and is audited.
  Ok("--room " + Q(P("room")) + " room backup --out " + Q(P("new.bak")));
  Ok("--room " + Q(P("fresh")) + " room restore --from " + Q(P("new.bak")));
  EXPECT_EQ(Run(Query("fresh")).exit_code, 0);
  auto over = Run("--room " + Q(P("room")) + " room restore --format json --from " + Q(P("new.bak")));
  ASSERT_EQ(over.exit_code, 0) << over.err;
  EXPECT_TRUE(PathExists(json::parse(over.out)["replaced_room_kept_at"].get<std::string>()));
  auto show = Ok("--room " + Q(P("room")) + " audit show --format json");
  EXPECT_NE(show.out.find("room.restore"), std::string::npos);
  EXPECT_EQ(Run(Query()).exit_code, 0);
  Ok("--room " + Q(P("room")) + " audit verify");

  // A changed backup does not restore.
  std::string bak = Slurp(P("new.bak"));
  bak[bak.size() - 100] ^= 1;
  Spit(P("bad.bak"), bak);
  ExpectRefused(Run("--room " + Q(P("fresh2")) + " room restore --from " + Q(P("bad.bak"))), 6, "TAMPERED");
  EXPECT_FALSE(PathExists(P("fresh2")));
}

TEST_F(CustodyE2e, ABackupIsUselessWithoutThePassphrase) {
  MakeRoom("--key-store passphrase", WithPass());
  OkAs(WithPass(), "--room " + Q(P("room")) + " room backup --out " + Q(P("room.bak")));
  ExpectRefused(Run("--room " + Q(P("restored")) + " room restore --from " + Q(P("room.bak"))), 5,
                "KEY_STORE_UNAVAILABLE");
  ExpectRefused(RunAs(WithPass("wrong-pass"), "--room " + Q(P("restored")) + " room restore --from " +
                                                  Q(P("room.bak"))), 5, "UNLOCK_FAILED");
  EXPECT_FALSE(PathExists(P("restored")));
  OkAs(WithPass(), "--room " + Q(P("restored")) + " room restore --from " + Q(P("room.bak")));
  EXPECT_EQ(RunAs(WithPass(), Query("restored")).exit_code, 0);
}

// A room made before key stores (room.key in clear, nothing sealed) is refused
// until `room protect` moves its key into a key store; then it works.
TEST_F(CustodyE2e, ARoomWithItsKeyInClearIsRefusedUntilProtected) {
  MakeRoom("--key-store test-plain", "");
  ASSERT_EQ(Run(Query()).exit_code, 0);
  // Turn it into what an older version wrote.
  json store = json::parse(Slurp(P("room/keystore.json")));
  Spit(P("room/room.key"), store["key"].get<std::string>() + "\n");
  ::chmod(P("room/room.key").c_str(), 0600);
  std::filesystem::remove(P("room/keystore.json"));
  std::vector<std::string> metas = {"state.json", "catalog.json", "spec-keys.json"};
  for (auto& e : std::filesystem::directory_iterator(P("room/results"))) {
    metas.push_back("results/" + e.path().filename().string() + "/meta.json");
  }
  for (const auto& f : metas) {
    json j = json::parse(Slurp(P("room/" + f)));
    j.erase("mac");
    j.erase("generation");
    Spit(P("room/" + f), j.dump(2) + "\n");
  }
  const auto before = Snapshot(P("room"));
  for (const auto& cmd : DataCommands("room")) {
    SCOPED_TRACE(cmd);
    auto r = Run(cmd);
    ExpectRefused(r, 3, "KEY_UNPROTECTED");
    EXPECT_NE(r.err.find("room protect"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Snapshot(P("room")), before);

  auto protect = RunAs(WithPass(), "--room " + Q(P("room")) + " room protect --key-store passphrase");
  ASSERT_EQ(protect.exit_code, 0) << protect.err;
  EXPECT_FALSE(PathExists(P("room/room.key")));
  ExpectRefused(Run(Query()), 5, "KEY_STORE_UNAVAILABLE");
  ASSERT_EQ(RunAs(WithPass(), Query()).exit_code, 0);
  auto results = RunAs(WithPass(), "--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                                       " results list --format json");
  ASSERT_EQ(results.exit_code, 0) << results.err;
  auto show = RunAs(WithPass(), "--room " + Q(P("room")) + " audit show --format json");
  EXPECT_NE(show.out.find("room.protect"), std::string::npos);
  OkAs(WithPass(), "--room " + Q(P("room")) + " audit verify");

  // Another passphrase: the old one stops working.
  Spit(P("pass2"), "another long passphrase\n");
  ::chmod(P("pass2").c_str(), 0600);
  OkAs(WithPass(), "--room " + Q(P("room")) + " room protect --key-store passphrase --new-passphrase-fd 3 3<" +
                       Q(P("pass2")));
  ExpectRefused(RunAs(WithPass(), Query()), 5, "UNLOCK_FAILED");
  EXPECT_EQ(RunAs(WithPass("pass2"), Query()).exit_code, 0);
}

TEST_F(CustodyE2e, Pkcs11RoomWorksAndFailsClosedWithoutItsToken) {
  ASSERT_TRUE(PathExists(kSoftHsm)) << "SoftHSM2 is missing: run scripts/setup";
  MakeToken();
  const std::string store = std::string("--key-store pkcs11 --pkcs11-module ") + kSoftHsm +
                            " --pkcs11-token cr-test";
  MakeRoom(store, Hsm());
  ASSERT_EQ(RunAs(Hsm(), Query()).exit_code, 0);
  auto unlock = RunAs(Hsm(), "--room " + Q(P("room")) + " room unlock --format json");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  EXPECT_EQ(json::parse(unlock.out)["key_store"], "pkcs11");
  // The wrapping key is on the token, not in the folder: the file holds a
  // wrapped blob, and the key is neither extractable nor readable.
  json ks = json::parse(Slurp(P("room/keystore.json")));
  EXPECT_EQ(ks["mechanism"], "CKM_AES_GCM");
  EXPECT_FALSE(ks.contains("key"));

  const auto before = Snapshot(P("room"));
  Spit(P("wrong-pin"), "11111111\n");
  ::chmod(P("wrong-pin").c_str(), 0600);
  const std::string wrong = "SOFTHSM2_CONF=" + Q(P("softhsm2.conf")) + " CLEANROOM_PKCS11_PIN_FILE=" + Q(P("wrong-pin"));
  ExpectRefused(RunAs(wrong, Query()), 5, "UNLOCK_FAILED");
  ExpectRefused(Run(Query(), "SOFTHSM2_CONF=" + Q(P("softhsm2.conf"))), 5, "KEY_STORE_UNAVAILABLE");  // no PIN
  // The token removed.
  std::filesystem::rename(P("tokens"), P("tokens-away"));
  std::filesystem::create_directories(P("tokens"));
  for (const auto& cmd : DataCommands("room")) {
    SCOPED_TRACE(cmd);
    ExpectRefused(RunAs(Hsm(), cmd), 5, "KEY_STORE_UNAVAILABLE");
  }
  EXPECT_EQ(Snapshot(P("room")), before);
  // Put back, it works again.
  std::filesystem::remove_all(P("tokens"));
  std::filesystem::rename(P("tokens-away"), P("tokens"));
  EXPECT_EQ(RunAs(Hsm(), Query()).exit_code, 0);
}

// room rotate-key on a room whose key a PKCS#11 token holds (SoftHSM2): a
// new token key wraps the new room key, the room answers as before under it,
// the whole audit log verifies across the rotation against the new room.pub,
// a package for the old room.pub is refused, and without the token (or the
// PIN) the rotated room is refused as the old one was, unchanged.
TEST_F(CustodyE2e, Pkcs11RoomKeyRotationKeepsTheRoomOnTheToken) {
  ASSERT_TRUE(PathExists(kSoftHsm)) << "SoftHSM2 is missing: run scripts/setup";
  MakeToken();
  const std::string store = std::string("--key-store pkcs11 --pkcs11-module ") + kSoftHsm +
                            " --pkcs11-token cr-test";
  MakeRoom(store, Hsm());
  auto first = RunAs(Hsm(), Query());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string old_pub = Slurp(P("room/room.pub"));
  const json old_store = json::parse(Slurp(P("room/keystore.json")));
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp-old.crpkg",
                    "spec.yaml", "room/room.pub").exit_code, 0);

  auto rotated = RunAs(Hsm(), "--format json room rotate-key --room " + Q(P("room")));
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const json r = json::parse(rotated.out);
  EXPECT_NE(r["fingerprint"], r["previous_fingerprint"]);
  EXPECT_NE(Slurp(P("room/room.pub")), old_pub);
  const json new_store = json::parse(Slurp(P("room/keystore.json")));
  EXPECT_EQ(new_store["mechanism"], "CKM_AES_GCM");
  EXPECT_FALSE(new_store.contains("key"));
  EXPECT_NE(new_store.dump(), old_store.dump());
  auto unlock = RunAs(Hsm(), "--room " + Q(P("room")) + " room unlock --format json");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  EXPECT_EQ(json::parse(unlock.out)["key_store"], "pkcs11");

  // The same answer under the new key (the data keys were re-wrapped).
  auto again = RunAs(Hsm(), Query());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["rows"], json::parse(first.out)["rows"]);
  auto verified = RunAs(Hsm(), "--format json audit verify --room " + Q(P("room")));
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  ExpectRefused(RunAs(Hsm(), "--room " + Q(P("room")) + " ingest " + Q(P("imp-old.crpkg"))), 5,
                "KEY_INVALID");

  const auto before = Snapshot(P("room"));
  ExpectRefused(Run(Query(), "SOFTHSM2_CONF=" + Q(P("softhsm2.conf"))), 5, "KEY_STORE_UNAVAILABLE");
  std::filesystem::rename(P("tokens"), P("tokens-away"));
  std::filesystem::create_directories(P("tokens"));
  ExpectRefused(RunAs(Hsm(), Query()), 5, "KEY_STORE_UNAVAILABLE");
  EXPECT_EQ(Snapshot(P("room")), before);
  std::filesystem::remove_all(P("tokens"));
  std::filesystem::rename(P("tokens-away"), P("tokens"));
  EXPECT_EQ(RunAs(Hsm(), Query()).exit_code, 0);
}

}  // namespace
}  // namespace cr::testing
