// The differential-privacy steps of `cleanroom demo` against a real room
// service: the exact differencing attack works, the noisy answers do not give
// the value away, the repeat is free, and the budget runs out with exit 4.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/demo_dp.h"
#include "client/client.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "demo/campaign_spec.h"
#include "demo/serve_process.h"
#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

class DemoDpE2e : public E2eTest {};

TEST_F(DemoDpE2e, TheAttackThenNoiseAStoredAnswerTheBudgetAndItsRefusal) {
  ASSERT_TRUE(crypto::Init());
  demo::CampaignSpecOptions o;
  o.dp = true;
  SetUpRoom(true, demo::CampaignSpec(o));
  Generate(3000, 600);
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
  ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);

  ASSERT_TRUE(MakeDirs(P("tls")));
  auto tls = demo::MakeTlsFiles(P("tls"));
  ASSERT_TRUE(tls) << tls.error().message;
  auto server = demo::ServeProcess::Start(
      {.binary = CLEANROOM_BINARY, .room = P("room"), .tls = *tls, .log_path = P("serve.log")});
  ASSERT_TRUE(server) << server.error().message;
  auto acme = client::Client::Connect(
      {.url = server->url(), .tls_ca = tls->ca_cert, .key_path = P("keys/acme.key")});
  ASSERT_TRUE(acme);
  ::testing::internal::CaptureStdout();
  // The step fails (INTERNAL) when the exact difference is not the target's
  // cost, the noisy one is, the repeat is not the stored answer, or the last
  // question is not refused with BUDGET_EXHAUSTED.
  auto st = cli::RunDemoDp(*acme, P("impressions.csv"), 15);
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_TRUE(server->Stop());
  ASSERT_TRUE(st) << st.error().ToString() << "\n" << out;
  for (const char* text : {"\n[15] ", "\n[16] ", "exactly the cost of the target's impression",
                           " ± ", "for epsilon 0", "BUDGET_EXHAUSTED (exit 4)"}) {
    EXPECT_NE(out.find(text), std::string::npos) << text << "\n" << out;
  }
  // What the room's own ledger says afterwards: two charges of 0.5.
  auto j = nlohmann::json::parse(Ok("budget --room " + Q(P("room")) + " --format json").out);
  EXPECT_EQ(j["epsilon_spent"], 1);
  EXPECT_EQ(j["epsilon_left"], 0.5);
  EXPECT_EQ(j["queries"], 2);
  std::cout << out;
}

}  // namespace
}  // namespace cr::testing
