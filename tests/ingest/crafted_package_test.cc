// Packages no honest `prepare` writes, crafted with the package library and
// fed to the real binary: a non-owner's signature, an outsider's, a header
// schema that differs from the spec, content that differs from its header.
#include <gtest/gtest.h>

#include "common/files.h"
#include "crypto/crypto.h"
#include "e2e/e2e_fixture.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "package/package.h"
#include "spec/spec.h"

namespace cr::testing {
namespace {

class CraftedPackages : public E2eTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    SetUpRoom();
    auto spec = spec::Load(P("spec.yaml"));
    ASSERT_TRUE(spec);
    spec_ = std::move(*spec);
    auto room = crypto::LoadPublic(P("room/room.pub"));
    ASSERT_TRUE(room);
    room_pub_ = *room;
    before_ = Snapshot(P("room"), "audit.log");
  }

  // Writes a package for `dataset` signed by `signer`, holding the Parquet of `content_sql`.
  std::string Craft(const std::string& name, const crypto::Identity& signer,
                    const std::string& dataset, std::vector<package::SchemaColumn> schema,
                    const std::string& content_sql) {
    auto db = engine::Database::Open();
    EXPECT_TRUE(db);
    auto mem = engine::MemFile::Create("craft");
    EXPECT_TRUE(db->Execute("COPY (" + content_sql + ") TO " + engine::QuoteLiteral(mem->path()) +
                            " (FORMAT parquet, USE_TMP_FILE false)"));
    uint64_t size = *mem->Size();
    std::string parquet;
    EXPECT_TRUE(mem->ReadAt(0, size, &parquet));
    auto rows = db->Query("SELECT count(*) FROM (" + content_sql + ")");
    crypto::SecureBuffer key(crypto::kKeyBytes);
    crypto::RandomBytes(key.data(), key.size());
    package::Header h;
    h.package_id = crypto::RandomId();
    h.collaboration = spec_.collaboration;
    h.spec_hash = spec_.hash;
    h.dataset = dataset;
    h.signer = signer.pub().ToText();
    h.room_key = room_pub_.Fingerprint();
    h.created_at = NowRfc3339();
    h.row_count = rows->ScalarInt();
    h.plaintext_bytes = size;
    h.schema = std::move(schema);
    h.sealed_data_key = crypto::Seal(room_pub_, key.view());
    std::string path = P(name);
    auto w = package::Writer::Create(path, h, key);
    EXPECT_TRUE(w);
    EXPECT_TRUE(w->Write(parquet));
    EXPECT_TRUE(w->Finish(signer));
    return path;
  }

  std::string GoodContent() const {
    return "SELECT gen_random_uuid() AS email, 'spring' AS campaign, "
           "TIMESTAMP '2026-10-01 10:00:00' AS shown_at, 1.5::DOUBLE AS cost FROM range(10)";
  }

  crypto::Identity Key(const std::string& name) { return *crypto::Identity::Load(P("keys/" + name + ".key")); }

  void ExpectUnchanged() { EXPECT_EQ(Snapshot(P("room"), "audit.log"), before_); }

  spec::Spec spec_;
  crypto::PublicIdentity room_pub_;
  std::map<std::string, std::string> before_;
};

TEST_F(CraftedPackages, HonestCraftIsAccepted) {
  auto ds = spec_.FindDataset("impressions");
  auto pkg = Craft("ok.crpkg", Key("newsco"), "impressions", ingest::ExpectedSchema(*ds), GoodContent());
  auto r = Ingest(pkg);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CraftedPackages, SignedByAnotherPartyIsRefused) {
  auto ds = spec_.FindDataset("impressions");
  // acme is a party, but impressions belong to newsco.
  auto pkg = Craft("acme.crpkg", Key("acme"), "impressions", ingest::ExpectedSchema(*ds), GoodContent());
  ExpectRefused(Ingest(pkg), 5, "WRONG_SIGNER");
  ExpectUnchanged();
}

TEST_F(CraftedPackages, SignedByAnOutsiderIsRefused) {
  auto ds = spec_.FindDataset("impressions");
  auto outsider = crypto::Identity::Generate();
  auto pkg = Craft("out.crpkg", outsider, "impressions", ingest::ExpectedSchema(*ds), GoodContent());
  ExpectRefused(Ingest(pkg), 5, "UNKNOWN_SIGNER");
  ExpectUnchanged();
}

TEST_F(CraftedPackages, HeaderSchemaDifferentFromSpecIsRefused) {
  auto ds = spec_.FindDataset("impressions");
  auto schema = ingest::ExpectedSchema(*ds);
  schema[3].type = "VARCHAR";  // cost as text
  auto pkg = Craft("s1.crpkg", Key("newsco"), "impressions", schema,
                   "SELECT gen_random_uuid() AS email, 'spring' AS campaign, TIMESTAMP "
                   "'2026-10-01' AS shown_at, '1.5' AS cost");
  ExpectRefused(Ingest(pkg), 7, "SCHEMA_MISMATCH");
  // An extra, undeclared column.
  auto extra = ingest::ExpectedSchema(*ds);
  extra.push_back({"device", "VARCHAR", "dimension"});
  pkg = Craft("s2.crpkg", Key("newsco"), "impressions", extra, "SELECT *, 'x' AS device FROM (" + GoodContent() + ")");
  ExpectRefused(Ingest(pkg), 7, "SCHEMA_MISMATCH");
  // A raw (unpseudonymised) join key: text where the spec demands a pseudonym.
  auto raw = ingest::ExpectedSchema(*ds);
  raw[0].type = "VARCHAR";
  pkg = Craft("s3.crpkg", Key("newsco"), "impressions", raw,
              "SELECT 'ann@example.com' AS email, 'spring' AS campaign, TIMESTAMP '2026-10-01' "
              "AS shown_at, 1.5::DOUBLE AS cost");
  ExpectRefused(Ingest(pkg), 7, "SCHEMA_MISMATCH");
  ExpectUnchanged();
}

TEST_F(CraftedPackages, ContentDifferentFromHeaderIsRefused) {
  auto ds = spec_.FindDataset("impressions");
  // The header claims the spec's schema; the Parquet inside holds a raw email column.
  auto pkg = Craft("c1.crpkg", Key("newsco"), "impressions", ingest::ExpectedSchema(*ds),
                   "SELECT 'ann@example.com' AS email, 'spring' AS campaign, TIMESTAMP "
                   "'2026-10-01' AS shown_at, 1.5::DOUBLE AS cost");
  ExpectRefused(Ingest(pkg), 7, "SCHEMA_MISMATCH");
  ExpectUnchanged();
}

TEST_F(CraftedPackages, UnknownDatasetIsRefused) {
  auto ds = spec_.FindDataset("impressions");
  auto pkg = Craft("u.crpkg", Key("newsco"), "clicks", ingest::ExpectedSchema(*ds), GoodContent());
  ExpectRefused(Ingest(pkg), 7, "UNKNOWN_DATASET");
  ExpectUnchanged();
}

}  // namespace
}  // namespace cr::testing
