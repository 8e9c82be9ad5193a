// Shared fixture for end-to-end tests: drives the real `cleanroom` binary
// through keygen, spec, signatures, room, prepare and ingest in a temp folder.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "demo/campaign_spec.h"
#include "testing/temp_dir.h"

namespace cr::testing {

// The shared campaign spec (src/demo), with another id or description for
// tests that need a second version.
inline std::string SpecText(const std::string& collab = "acme-newsco-2026q4",
                            const std::string& description = "Campaign measurement") {
  return demo::CampaignSpec({collab, description, "keys"});
}

class E2eTest : public ::testing::Test {
 protected:
  // Rooms these tests create hold their key in the test-only key store (no
  // Argon2id per command); a test of custody names its key store itself.
  E2eTest() { ::setenv("CLEANROOM_KEY_STORE", "test-plain", /*overwrite=*/0); }

  std::string Bin() const { return CLEANROOM_BINARY; }

  RunResult Run(const std::string& args, const std::string& env = "") {
    return RunShell(env + (env.empty() ? "" : " ") + Q(Bin()) + " " + args);
  }

  // Runs and expects success, failing the test with stderr otherwise.
  RunResult Ok(const std::string& args) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\nstdout: " << r.out << "\nstderr: " << r.err;
    return r;
  }

  std::string P(const std::string& rel) const { return dir_ / rel; }

  // Keys for both parties, a shared secret, the spec (`spec_text`, default
  // SpecText()) and an initialised room.
  void SetUpRoom(bool activate = true, const std::string& spec_text = "") {
    Ok("keygen --name acme --out " + Q(P("keys")));
    Ok("keygen --name newsco --out " + Q(P("keys")));
    Ok("secret new --out " + Q(P("shared.secret")));
    Spit(P("spec.yaml"), spec_text.empty() ? SpecText() : spec_text);
    Ok("room init --region eu --key-store test-plain --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
    Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/acme.key")));
    Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/newsco.key")));
    if (activate) {
      Ok("room activate --room " + Q(P("room")) + " --sig " + Q(P("spec.yaml.acme.sig")) + " " +
         Q(P("spec.yaml.newsco.sig")));
    }
  }

  void Generate(int rows = 3000, int people = 600) {
    Ok("generate --kind impressions --rows " + std::to_string(rows) + " --people " +
       std::to_string(people) + " --out " + Q(P("impressions.csv")));
    Ok("generate --kind purchases --rows " + std::to_string(rows / 3) + " --people " +
       std::to_string(people) + " --out " + Q(P("purchases.csv")));
  }

  RunResult Prepare(const std::string& dataset, const std::string& input, const std::string& key,
                    const std::string& out, const std::string& spec = "spec.yaml",
                    const std::string& room_pub = "room/room.pub") {
    return Run("prepare --spec " + Q(P(spec)) + " --dataset " + dataset + " --input " +
               Q(input) + " --key " + Q(P(key)) + " --secret " + Q(P("shared.secret")) +
               " --room-pub " + Q(P(room_pub)) + " --out " + Q(P(out)));
  }

  RunResult Ingest(const std::string& pkg, const std::string& room = "room") {
    return Run("--room " + Q(P(room)) + " ingest " + Q(pkg));
  }

  // Asserts a refusal: exit code, stable code on stderr, and (when `room`
  // given) every room file but audit.log byte-for-byte unchanged, audit.log grown.
  void ExpectRefused(const RunResult& r, int exit_code, const std::string& code) {
    EXPECT_EQ(r.exit_code, exit_code) << "stderr: " << r.err;
    EXPECT_EQ(ErrorCodeOf(r), code) << "stderr: " << r.err;
  }

  TempDir dir_;
};

}  // namespace cr::testing
