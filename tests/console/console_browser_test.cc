// The web console in a real headless Chromium (Debian's), driven by
// playwright-core (scripts/setup installs it), against a real `cleanroom
// serve` on loopback with a test CA: console_test.mjs plays every scenario of
// docs/console.md and saves a screenshot of each page. Skipped, saying why,
// only when node, playwright-core or chromium is absent.
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/server_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

constexpr const char* kCampaignSql =
    "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign ORDER BY campaign";

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

class ConsoleBrowserTest : public ServerTest {
 protected:
  void SetUp() override {
    node_ = Env("CLEANROOM_NODE", "/usr/bin/node");
    chromium_ = Env("CLEANROOM_CHROMIUM", "/usr/bin/chromium");
    playwright_ = Env("CLEANROOM_PLAYWRIGHT_CORE",
                      std::string(CLEANROOM_SOURCE_DIR) + "/third_party/node/node_modules/playwright-core");
    for (const auto& [what, path] : {std::pair{"node", node_}, {"chromium", chromium_},
                                     {"playwright-core (scripts/setup installs it)", playwright_}}) {
      if (!std::filesystem::exists(path)) GTEST_SKIP() << what << " is not installed at " << path;
    }
    // The base fixture builds its own two-party room; this test wants a
    // third party that may query but not receive results, and a budget.
    ASSERT_TRUE(crypto::Init());
    ::signal(SIGPIPE, SIG_IGN);
    for (const char* party : {"acme", "newsco", "analyst"}) Ok("keygen --name " + std::string(party) + " --out " + Q(P("keys")));
    Ok("secret new --out " + Q(P("shared.secret")));
    std::string spec = SpecText();
    const std::string newsco = "  newsco: {public_key: keys/newsco.pub, abilities: [contribute, receive_results]}\n";
    ASSERT_NE(spec.find(newsco), std::string::npos) << spec;
    spec.replace(spec.find(newsco), newsco.size(),
                 newsco + "  analyst: {public_key: keys/analyst.pub, abilities: [query]}\n");
    // A privacy budget, so a query may ask for noise (and the page draws its intervals).
    const std::string threshold = "  min_distinct_units: 50\n";
    ASSERT_NE(spec.find(threshold), std::string::npos);
    spec.insert(spec.find(threshold) + threshold.size(),
                "  dp: {epsilon: 30, delta: 1.0e-6, max_groups_per_unit: 4, refresh: monthly}\n");
    Spit(P("spec.yaml"), spec);
    Ok("room init --region eu --key-store test-plain --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
    std::string sigs;
    for (const char* party : {"acme", "newsco", "analyst"}) {
      Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P(std::string("keys/") + party + ".key")));
      sigs += " " + Q(P(std::string("spec.yaml.") + party + ".sig"));
    }
    Ok("room activate --room " + Q(P("room")) + " --sig" + sigs);
    MakeTls();
  }

  std::string node_, chromium_, playwright_;
};

TEST_F(ConsoleBrowserTest, APartyTakesPartFromTheBrowser) {
  // Enough people that the template's joined groups pass the threshold (the
  // default 600 leave every campaign under 100 buyers: nothing to compare).
  Generate(20000, 5000);
  PreparePackages("v1");
  ASSERT_EQ(Ingest(P("imp-v1.crpkg")).exit_code, 0);
  ASSERT_EQ(Ingest(P("pur-v1.crpkg")).exit_code, 0);

  // What the page must show, computed without it: the same questions asked
  // through the command line, before the server holds the room.
  auto as_acme = "--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) + " --format json ";
  json expected;
  expected["query_sql"] = kCampaignSql;
  expected["query"] = json::parse(Ok(as_acme + "query --sql " + Q(kCampaignSql)).out);
  expected["template"] = json::parse(
      Ok(as_acme + "run --template conversions_by_campaign --param since=2020-01-01").out);
  auto datasets = json::parse(Ok("--room " + Q(P("room")) + " --format json datasets").out);
  for (const auto& d : datasets["datasets"]) expected["rows"][d["name"].get<std::string>()] = d["rows"];
  // Rows to compare, not two empty tables.
  ASSERT_GT(expected["query"]["rows"].size(), 1u) << expected.dump();
  ASSERT_GT(expected["template"]["rows"].size(), 1u) << expected.dump();
  Spit(P("expected.json"), expected.dump());

  // The SPKI hash of the test certificate: Chromium trusts that one key, not
  // every certificate.
  auto spki = RunShell("openssl x509 -in " + Q(P("tls/server.pem")) +
                       " -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64");
  ASSERT_EQ(spki.exit_code, 0) << spki.err;

  now_ = static_cast<long long>(std::time(nullptr));  // the page signs with the real clock
  StartServer();
  const std::string artifacts = CONSOLE_ARTIFACTS_DIR;
  std::filesystem::remove_all(artifacts);  // this run's screenshots only
  std::filesystem::create_directories(artifacts);
  auto r = RunShell("cd " + Q(P("")) + " && env CONSOLE_URL=" + Q("https://127.0.0.1:" + std::to_string(port_)) +
                    " CONSOLE_KEYS=" + Q(P("keys")) + " CONSOLE_SPKI=" + Q(spki.out.substr(0, spki.out.find_last_not_of("\n") + 1)) +
                    " CONSOLE_EXPECTED=" + Q(P("expected.json")) + " CONSOLE_ARTIFACTS=" + Q(artifacts) +
                    " CONSOLE_CHROMIUM=" + Q(chromium_) + " CONSOLE_PLAYWRIGHT=" + Q(playwright_) + " " +
                    Q(node_) + " " + Q(std::string(CLEANROOM_SOURCE_DIR) + "/tests/console/console_test.mjs") +
                    " 2>&1");
  std::cout << r.out;
  EXPECT_EQ(r.exit_code, 0) << r.out << "\nserver log:\n" << Slurp(P("server.log"));
  EXPECT_NE(r.out.find("console: all scenarios passed"), std::string::npos);
  // The page's requests were signed by the parties themselves: the server
  // audited them under their names.
  std::string log = Slurp(P("room/audit.log"));
  EXPECT_NE(log.find("\"actor\":\"analyst\""), std::string::npos);
  EXPECT_NE(log.find("\"event\":\"query.check.refused\""), std::string::npos);
  EXPECT_NE(log.find("\"event\":\"template.run\""), std::string::npos);
  EXPECT_EQ(StopServer(), 0);
  Ok("--room " + Q(P("room")) + " audit verify");
}

}  // namespace
}  // namespace cr::testing
