// `cleanroom demo`: a whole collaboration in a temporary folder, step by step,
// in words a newcomer follows. It calls the same code as the commands.
#include <fmt/core.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>

#include "anonymize/anonymizer.h"
#include "cli/cli.h"
#include "cli/demo_dp.h"
#include "cli/demo_pool.h"
#include "cli/demo_queries.h"
#include "client/client.h"
#include "common/files.h"
#include "common/progress.h"
#include "crypto/crypto.h"
#include "demo/campaign_spec.h"
#include "demo/generator.h"
#include "demo/serve_process.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "room/room.h"
#include "spec/spec.h"

namespace cr::cli {
namespace {


void Step(int n, const std::string& title) { fmt::print("\n[{}] {}\n", n, title); }
void Say(const std::string& text) { fmt::print("    {}\n", text); }

// True when `needle` occurs anywhere in the file's bytes.
bool FileContains(const std::string& path, const std::string& needle) {
  auto bytes = ReadFile(path);
  return bytes && bytes->find(needle) != std::string::npos;
}

}  // namespace

void RegisterDemo(CLI::App& root, Globals&, Registry& r) {
  auto* cmd = root.add_subcommand(
      "demo", "walk through a whole collaboration (advertiser + publisher) in a temporary folder");
  static int64_t people = 20000, impressions = 100000, purchases = 20000;
  static std::string dir;
  cmd->add_option("--people", people, "audience size");
  cmd->add_option("--impressions", impressions, "impression rows");
  cmd->add_option("--purchases", purchases, "purchase rows");
  cmd->add_option("--dir", dir, "folder to use (default: a new temporary folder)");
  r.Add(cmd, Uses{.formats = {"table"}}, []() -> Status {
    auto started = std::chrono::steady_clock::now();
    if (dir.empty()) {
      std::string tmpl = "/tmp/cleanroom-demo-XXXXXX";
      if (!::mkdtemp(tmpl.data())) return Fail(ErrorCode::INTERNAL, "cannot create a temporary folder");
      dir = tmpl;
    } else {
      CR_TRY(MakeDirs(dir));
    }
    std::string acme_dir = dir + "/acme", newsco_dir = dir + "/newsco", room_dir = dir + "/room";
    fmt::print("cleanroom demo in {}\n", dir);
    fmt::print("Two organisations want to measure a Q4 campaign together without showing each "
               "other their customers:\n  acme   (advertiser) has purchases,\n  newsco "
               "(publisher) has ad impressions.\nA clean room will hold both, encrypted; only "
               "agreed, aggregated answers may leave it.\n");

    Step(1, "Each party creates an identity (Ed25519 to sign, X25519 to receive sealed data)");
    CR_TRY(MakeDirs(dir + "/shared/keys"));
    for (const char* name : {"acme", "newsco"}) {
      std::string home = dir + "/" + name;
      CR_TRY(MakeDirs(home));
      auto id = crypto::Identity::Generate();
      CR_TRY(crypto::WriteIdentityFiles(id, home, name));
      auto pub = ReadFile(home + "/" + name + ".pub");
      CR_TRY(pub);
      CR_TRY(WriteFileAtomic(dir + "/shared/keys/" + name + ".pub", *pub));
      Say(fmt::format("{}: secret key {}/{}.key (mode 0600, never leaves), public key shared "
                      "(fingerprint {})", name, name, name, id.pub().Fingerprint()));
    }

    Step(2, "The parties agree a shared secret for pseudonyms; the room never sees it");
    CR_TRY(crypto::WriteNewSharedSecret(acme_dir + "/shared.secret"));
    CR_ASSIGN(auto secret_text, ReadFile(acme_dir + "/shared.secret"));
    CR_TRY(WriteFileAtomic(newsco_dir + "/shared.secret", secret_text, 0600));
    Say("256-bit secret in acme/shared.secret and newsco/shared.secret (exchanged out of band)");

    Step(3, "They write the collaboration spec: datasets, column roles, rules, thresholds");
    std::string spec_path = dir + "/shared/spec.yaml";
    demo::CampaignSpecOptions spec_options;
    spec_options.dp = true;  // steps 15 and 16: differential privacy
    CR_TRY(WriteFileAtomic(spec_path, demo::CampaignSpec(spec_options)));
    CR_ASSIGN(auto spec, spec::Load(spec_path));
    Say(fmt::format("collaboration '{}', {} parties, {} datasets, spec hash {}",
                    spec.collaboration, spec.parties.size(), spec.datasets.size(),
                    spec.hash.substr(0, 16)));
    Say("impressions: email is a join key (pseudonymised), campaign a dimension, cost a metric "
        "clamped to [0, 5]; answers need >= 100 distinct people per row");
    Say("privacy.dp: an epsilon budget of 1.5 a month for answers with differential privacy");

    Step(4, "The operator creates the room for this spec");
    // A real key store: the room key is sealed under a passphrase (Argon2id);
    // the demo keeps its passphrase in a file of its own, as an operator would
    // in a secrets manager.
    const std::string passphrase_file = dir + "/operator.passphrase";
    CR_TRY(WriteFileAtomic(passphrase_file, crypto::Base64Encode(crypto::RandomBytes(24)) + "\n", 0600));
    room::UsePassphraseFile(passphrase_file);
    // The room service the demo starts (step 8) unlocks the room the same way.
    ::setenv("CLEANROOM_PASSPHRASE_FILE", passphrase_file.c_str(), /*overwrite=*/1);
    room::InitOptions init;
    init.key_store.kind = room::KeyStoreKind::kPassphrase;
    init.region = "eu";  // where the demo's operator runs the room: the spec's region
    CR_ASSIGN(auto room_pub, room::Room::Init(room_dir, spec_path, init));
    Say(fmt::format("room folder {} with its own key (fingerprint {}), sealed under the "
                    "operator's passphrase (Argon2id); {} is published",
                    room_dir, room_pub.Fingerprint(), room::RoomPubPath(room_dir)));

    Step(5, "Every party signs the exact spec bytes; the room activates only with all signatures");
    std::vector<std::string> sigs;
    for (const char* name : {"acme", "newsco"}) {
      CR_ASSIGN(auto id, crypto::Identity::Load(dir + "/" + name + "/" + name + ".key"));
      CR_ASSIGN(auto sig, spec::Sign(spec, id));
      std::string path = spec_path + "." + name + ".sig";
      CR_TRY(WriteFileAtomic(path, spec::SignatureToJson(sig) + "\n"));
      sigs.push_back(path);
      Say(fmt::format("{} signed spec {}", name, spec.hash.substr(0, 16)));
    }
    {
      CR_ASSIGN(auto room, room::Room::Open(room_dir));
      // First, what happens with only one signature.
      auto partial = room.Activate({sigs[0]});
      Say(fmt::format("activating with acme's signature alone is refused: {}",
                      partial ? "(unexpectedly accepted)" : std::string(CodeName(partial.error().code))));
      if (partial) return Fail(ErrorCode::INTERNAL, "demo: activation without every signature");
      CR_TRY(room.Activate(sigs));
      Say("with both signatures the room is active");
    }

    Step(6, "Each party has its own raw data (generated here, deterministic)");
    demo::GeneratorOptions g;
    g.people = people;
    g.impressions = impressions;
    g.purchases = purchases;
    std::string imp_csv = newsco_dir + "/impressions.csv", pur_csv = acme_dir + "/purchases.csv";
    CR_TRY(demo::WriteImpressionsCsv(g, imp_csv));
    CR_TRY(demo::WritePurchasesCsv(g, pur_csv));
    Say(fmt::format("newsco/impressions.csv: {} impressions over {} people (email, campaign, "
                    "shown_at, cost, device)", impressions, people));
    Say(fmt::format("acme/purchases.csv: {} purchases, ~{:.0f}% of buyers also in newsco's "
                    "audience (email, amount, day, store_id)", purchases, g.buyer_overlap * 100));

    Step(7, "Each party prepares its contribution on its own machine");
    Say("keeps declared columns only, normalises emails, replaces them with HMAC pseudonyms,");
    Say("writes Parquet in memory, encrypts it with a fresh key sealed to the room, signs it");
    struct Job { const char* party; const char* dataset; std::string input; };
    std::vector<Job> jobs = {{"newsco", "impressions", imp_csv}, {"acme", "purchases", pur_csv}};
    std::vector<std::string> packages;
    for (const auto& j : jobs) {
      ingest::PrepareOptions o;
      o.spec_path = spec_path;
      o.dataset = j.dataset;
      o.input = j.input;
      o.key_path = dir + "/" + j.party + "/" + j.party + ".key";
      o.secret_path = dir + "/" + j.party + "/shared.secret";
      o.room_pub = room::RoomPubPath(room_dir);
      o.out = dir + "/" + j.party + "/" + j.dataset + ".crpkg";
      CR_ASSIGN(auto rep, ingest::Prepare(o));
      packages.push_back(o.out);
      Say(fmt::format("{}: {} rows -> {}.crpkg ({}); left behind on {}'s machine: {}", j.party,
                      rep.rows, j.dataset, HumanBytes(rep.package_bytes), j.party,
                      rep.dropped_columns.empty() ? "nothing" : fmt::format("{}", fmt::join(rep.dropped_columns, ", "))));
    }
    std::string sample_email = demo::PersonEmail(0);
    bool leaked = FileContains(packages[0], sample_email) || FileContains(packages[0], "@example.com");
    Say(fmt::format("an email from the input (e.g. {}) appears in the package: {}", sample_email,
                    leaked ? "YES (bug!)" : "no"));
    if (leaked) return Fail(ErrorCode::INTERNAL, "demo: a raw identifier reached the package");

    Step(8, "The operator runs the room as a service on loopback, over TLS");
    CR_TRY(MakeDirs(dir + "/tls"));
    CR_ASSIGN(auto tls, demo::MakeTlsFiles(dir + "/tls"));
    demo::ServeOptions so;
    so.binary = demo::SelfExecutable();
    so.room = room_dir;
    so.tls = tls;
    so.log_path = dir + "/serve.log";
    CR_ASSIGN(auto server, demo::ServeProcess::Start(so));
    Say(fmt::format("cleanroom serve --room room --listen 127.0.0.1:0 --tls-cert tls/server.pem "
                    "--tls-key tls/server.key: listening on {}", server.url()));
    Say("the certificate is signed by a CA the demo made (tls/ca.pem); parties pass it as --tls-ca");
    Say("every request is signed by the party's own key (RFC 9421); the server needs no secret of theirs");
    auto as = [&](const char* party) {
      return client::Client::Connect({.url = server.url(),
                                      .tls_ca = tls.ca_cert,
                                      .key_path = dir + "/" + party + "/" + party + ".key"});
    };
    CR_ASSIGN(auto acme, as("acme"));
    CR_ASSIGN(auto newsco, as("newsco"));
    {
      auto untrusting = client::Client::Connect(
          {.url = server.url(), .key_path = acme_dir + "/acme.key"});
      if (!untrusting) return std::unexpected(untrusting.error());
      auto refused = untrusting->Get("/v1/status");
      Say(fmt::format("a client that does not trust the demo CA is refused before it sends "
                      "anything: {}",
                      refused ? "(unexpectedly connected)" : std::string(CodeName(refused.error().code))));
      if (refused) return Fail(ErrorCode::INTERNAL, "demo: an untrusted certificate was accepted");
    }

    Step(9, "Each party uploads its package; the room verifies signature, owner, spec, schema");
    std::vector<client::Client*> uploaders = {&newsco, &acme};
    for (size_t i = 0; i < packages.size(); ++i) {
      Say(fmt::format("cleanroom --server {} --tls-ca tls/ca.pem --key {}/{}.key ingest {}",
                      server.url(), jobs[i].party, jobs[i].party,
                      packages[i].substr(dir.size() + 1)));
      // Streamed from the file, as `ingest --server` does.
      CR_ASSIGN(auto body, uploaders[i]->Upload("/v1/packages", packages[i], "application/octet-stream"));
      auto rep = nlohmann::json::parse(body, nullptr, false);
      if (!rep.is_object()) return Fail(ErrorCode::INTERNAL, "demo: the upload answer is not JSON");
      Say(fmt::format("'{}' from {}: {} rows re-encrypted per column chunk (AES-256-GCM) under a "
                      "fresh key wrapped by the room key",
                      rep.value("dataset", ""), rep.value("owner", ""), rep.value("rows", 0)));
    }
    {
      // A replayed package is refused and changes nothing.
      auto replay = newsco.Upload("/v1/packages", packages[0], "application/octet-stream");
      Say(fmt::format("uploading the impressions package a second time: {}",
                      replay ? "(unexpectedly accepted)"
                             : fmt::format("refused, {}", CodeName(replay.error().code))));
      if (replay) return Fail(ErrorCode::INTERNAL, "demo: a replayed package was accepted");
      // Another party's package is refused too: the package's signature decides.
      auto foreign = acme.Upload("/v1/packages", packages[0], "application/octet-stream");
      Say(fmt::format("acme uploading newsco's package: {}",
                      foreign ? "(unexpectedly accepted)"
                              : fmt::format("refused, {}", CodeName(foreign.error().code))));
      if (foreign) return Fail(ErrorCode::INTERNAL, "demo: a party uploaded another's package");
    }

    Step(10, "Anyone can check the audit log: a hash chain signed by the room, verified here");
    {
      CR_ASSIGN(auto log, acme.Get("/v1/audit"));
      CR_ASSIGN(auto pub_text, acme.Get("/v1/room.pub"));
      CR_ASSIGN(auto rpub, crypto::PublicIdentity::FromText(pub_text));
      CR_ASSIGN(auto mem, engine::MemFile::Create("audit.log"));
      CR_TRY(mem.Append(log));
      CR_ASSIGN(auto vr, audit::Verify(mem.path(), rpub));
      CR_ASSIGN(auto entries, audit::ReadEntries(mem.path()));
      for (const auto& e : entries) {
        Say(fmt::format("#{} {} by {}", e.value("seq", 0), e.value("event", ""),
                        e.value("actor", "")));
      }
      Say(fmt::format("audit verify --server: {} entries fetched, chain and signatures checked "
                      "on acme's side (head {})",
                      vr.entries, vr.head_hash.substr(0, 16)));
    }

    CR_TRY(RunDemoQueries(acme, newsco, spec));
    CR_TRY(RunDemoDp(acme, imp_csv, 15));

    Step(17, "The operator stops the service (SIGTERM): in-flight requests finish, the room is closed");
    CR_TRY(server.Stop());
    Say("cleanroom serve exited cleanly; its access log is serve.log (parties, routes, codes; no values)");

    Step(18, "A research extract of microdata: anonymise UCI Adult (k = 5, occupation 3-diverse)");
    std::string config = std::string(CLEANROOM_SOURCE_DIR) + "/examples/adult-research-extract/anon.yaml";
    std::string adult = std::string(CLEANROOM_SOURCE_DIR) + "/data/adult/adult.csv";
    {
      anonymize::RunPaths paths{config, adult, dir + "/adult-extract.csv", dir + "/adult-report.json"};
      CR_ASSIGN(auto rel, anonymize::RunAnonymize(paths));
      Say("the optimal generalisation (searched over the hierarchy lattice) and its effect:");
      std::string summary = rel.summary;
      size_t start = 0;
      while (start < summary.size()) {
        size_t end = summary.find('\n', start);
        if (end == std::string::npos) end = summary.size();
        if (end > start) Say("  " + summary.substr(start, end - start));
        start = end + 1;
      }
      Say(fmt::format("released {} records to adult-extract.csv; report in adult-report.json",
                      rel.table.num_rows()));
    }

    CR_TRY(RunDemoPool(dir, std::string(CLEANROOM_SOURCE_DIR) + "/examples/peer-benchmark", 19));

    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    fmt::print("\nDone in {:.1f}s. Everything is in {} — try:\n"
               "  build/bin/cleanroom audit show --room {}\n"
               "  build/bin/cleanroom audit verify --room {}\n"
               "  CLEANROOM_PASSPHRASE_FILE={}/operator.passphrase build/bin/cleanroom serve --room {} "
               "--listen 127.0.0.1:8443 --tls-cert {}/tls/server.pem --tls-key {}/tls/server.key\n"
               "  build/bin/cleanroom status --server https://127.0.0.1:8443 --tls-ca {}/tls/ca.pem "
               "--key {}/acme/acme.key\n"
               "  the web console: CLEANROOM_PASSPHRASE_FILE={}/operator.passphrase build/bin/cleanroom "
               "serve --room {} --listen 127.0.0.1:8080, then open http://127.0.0.1:8080/ and sign in "
               "with {}/acme/acme.key\n",
               secs, dir, room_dir, room_dir, dir, room_dir, dir, dir, dir, dir, dir, room_dir, dir);
    return Ok();
  });
}

}  // namespace cr::cli
