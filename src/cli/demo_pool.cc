#include "cli/demo_pool.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <sstream>
#include <vector>

#include "cli/demo_say.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "ingest/ingest.h"
#include "ingest/prepare.h"
#include "query/service.h"
#include "results/results.h"
#include "room/room.h"
#include "room/views.h"
#include "spec/spec.h"

namespace cr::cli {
namespace {

using demo_say::Say;
using demo_say::SayTable;
using demo_say::Step;

const std::vector<std::string> kBanks = {"bank-a", "bank-b", "bank-c", "bank-d", "bank-e"};

// The released row of (category, department), or nullptr.
const nlohmann::json* Cell(const results::ResultSet& r, const std::string& category,
                           const std::string& department) {
  for (const auto& row : r.rows) {
    if (row[0] == category && row[1] == department) return &row;
  }
  return nullptr;
}

std::string Number(const nlohmann::json& v) {
  return v.is_number() ? fmt::format("{:.0f}", v.get<double>()) : std::string("-");
}

}  // namespace

Status RunDemoPool(const std::string& dir, const std::string& example_dir, int first_step) {
  const std::string home = dir + "/peer-benchmark", room_dir = home + "/room";
  const std::string spec_path = home + "/spec.yaml";
  Step(first_step, "Peer benchmarking: five banks pool their IT budgets with a consultant");
  Say("one dataset, it_spend, lists contributors [bank-a .. bank-e] instead of one owner;");
  Say("each bank prepares and signs its own part; the room holds the union of the latest parts");
  CR_TRY(MakeDirs(home + "/keys"));
  std::vector<std::string> parties = kBanks;
  parties.push_back("consultant");
  for (const auto& p : parties) {
    auto id = crypto::Identity::Generate();
    CR_TRY(crypto::WriteIdentityFiles(id, home + "/keys", p));
  }
  CR_ASSIGN(auto spec_text, ReadFile(example_dir + "/spec.yaml"));
  CR_TRY(WriteFileAtomic(spec_path, spec_text));
  CR_TRY(crypto::WriteNewSharedSecret(home + "/shared.secret"));
  CR_ASSIGN(auto spec, spec::Load(spec_path));
  room::InitOptions init;
  init.key_store.kind = room::KeyStoreKind::kPassphrase;
  CR_ASSIGN(auto room_pub, room::Room::Init(room_dir, spec_path, init));
  (void)room_pub;
  std::vector<std::string> sigs;
  for (const auto& p : parties) {
    CR_ASSIGN(auto id, crypto::Identity::Load(home + "/keys/" + p + ".key"));
    CR_ASSIGN(auto sig, spec::Sign(spec, id));
    sigs.push_back(spec_path + "." + p + ".sig");
    CR_TRY(WriteFileAtomic(sigs.back(), spec::SignatureToJson(sig) + "\n"));
  }
  {
    CR_ASSIGN(auto room, room::Room::Open(room_dir));
    CR_TRY(room.Activate(sigs));
  }
  Say("rule: min_contributors 3, dominance {n: 1, k: 0.6}, p_percent 10, and >= 10 budget lines");
  for (const auto& bank : kBanks) {
    ingest::PrepareOptions o;
    o.spec_path = spec_path;
    o.dataset = "it_spend";
    o.input = example_dir + "/data/" + bank + ".csv";
    o.key_path = home + "/keys/" + bank + ".key";
    o.secret_path = home + "/shared.secret";
    o.room_pub = room::RoomPubPath(room_dir);
    o.out = home + "/" + bank + ".crpkg";
    CR_ASSIGN(auto prepared, ingest::Prepare(o));
    CR_ASSIGN(auto room, room::Room::Open(room_dir));
    CR_ASSIGN(auto rep, ingest::Ingest(room, o.out));
    Say(fmt::format("{} contributed its part: {} budget lines, signed by {}", bank, prepared.rows,
                    rep.owner));
  }
  {
    // The consultant is no contributor: its package would be refused (exit 5).
    ingest::PrepareOptions o;
    o.spec_path = spec_path;
    o.dataset = "it_spend";
    o.input = example_dir + "/data/bank-a.csv";
    o.key_path = home + "/keys/consultant.key";
    o.secret_path = home + "/shared.secret";
    o.room_pub = room::RoomPubPath(room_dir);
    o.out = home + "/consultant.crpkg";
    auto refused = ingest::Prepare(o);
    if (refused) return Fail(ErrorCode::INTERNAL, "demo: a non-contributor prepared a part");
    Say(fmt::format("the consultant trying to contribute: {} (exit {})",
                    CodeName(refused.error().code), ExitCode(refused.error().code)));
  }

  Step(first_step + 1, "The consultant asks for spend by category and department");
  const std::string sql =
      "SELECT category, department, SUM(amount) AS spend, COUNT(DISTINCT line_id) AS lines "
      "FROM it_spend GROUP BY category, department ORDER BY category, department";
  Say(sql);
  CR_ASSIGN(auto consultant, crypto::Identity::Load(home + "/keys/consultant.key"));
  results::ResultSet answer;
  {
    CR_ASSIGN(auto room, room::Room::Open(room_dir));
    query::Request req;
    req.sql = sql;
    CR_ASSIGN(auto out, query::Run(room, consultant, req));
    answer = std::move(out.result);
  }
  SayTable(answer);
  const nlohmann::json* cloud = Cell(answer, "cloud", "operations");
  if (!cloud || Cell(answer, "mainframe", "operations") || Cell(answer, "network", "markets")) {
    return Fail(ErrorCode::INTERNAL, "demo: the cell rules did not decide as designed");
  }
  Say(fmt::format("released: cloud/operations, {} k from five banks, none above 60%",
                  Number((*cloud)[2])));
  Say("withheld by the contributor count: mainframe/operations (two banks, 50 budget lines)");
  Say("withheld by dominance: network/markets (one bank supplies most of it)");
  Say("the summary names the rules and counts cells, never a value");

  Step(first_step + 2, "bank-c's benchmark view: its own figures beside its peers'");
  Say("the consultant runs the template spend_benchmark (benchmark: true); each bank receives");
  Say("its own figure for every released cell, the consultant the peers' figures only");
  std::string id;
  {
    CR_ASSIGN(auto room, room::Room::Open(room_dir));
    query::Request req;
    req.template_name = "spend_benchmark";
    CR_ASSIGN(auto out, query::Run(room, consultant, req));
    id = out.result.result_id;
    Say(fmt::format("the consultant's copy: columns {}", fmt::join(out.result.columns, ", ")));
  }
  CR_ASSIGN(auto bank_c, crypto::Identity::Load(home + "/keys/bank-c.key"));
  CR_ASSIGN(auto room, room::Room::Open(room_dir));
  CR_ASSIGN(auto mine, query::GetResult(room, bank_c, id));
  const nlohmann::json* row = Cell(mine, "cloud", "operations");
  if (!row || mine.columns.size() != 8 || mine.columns[3] != "spend_own") {
    return Fail(ErrorCode::INTERNAL, "demo: bank-c's view lacks its own figures");
  }
  Say(fmt::format("results get --id {} with bank-c's key:", id));
  Say(
      fmt::format("our spend on cloud/operations: {} k; peers' median {} k, quartiles {}-{} k "
                  "(mean {} k)",
                  Number((*row)[3]), Number((*row)[5]), Number((*row)[6]), Number((*row)[7]),
                  Number((*row)[4])));
  Say("nothing in it is any other bank's figure; the room is in " + room_dir);
  return Ok();
}

}  // namespace cr::cli
