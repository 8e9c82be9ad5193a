// The budget ledger: charging, refusing an overspend without writing, cached
// answers, periods, tamper detection, and overspending by parallel processes.
#include "budget/ledger.h"

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/files.h"
#include "crypto/crypto.h"
#include "testing/temp_dir.h"

extern char** environ;

namespace cr::budget {
namespace {

using cr::testing::Slurp;
using cr::testing::TempDir;

constexpr long long kDec2 = 1796169600;   // 2026-12-02T00:00:00Z
constexpr long long kJan3 = 1798934400;   // 2027-01-03T00:00:00Z

crypto::Identity NewIdentity() {
  (void)crypto::Init();  // before the first key: fixtures build theirs before SetUp
  return crypto::Identity::Generate();
}

std::string Key(int i) {
  std::string k = ToHex(crypto::Sha256(std::to_string(i)));
  return k;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }
  Ledger Open(double total, const std::string& refresh = "monthly") {
    spec::Dp dp;
    dp.epsilon = total;
    dp.refresh = refresh;
    auto l = Ledger::Open(dir_.path(), room_, dp, clock_);
    EXPECT_TRUE(l.has_value()) << l.error().ToString();
    return std::move(*l);
  }
  std::string Log() { return PathExists(dir_ / "budget.log") ? Slurp(dir_ / "budget.log") : ""; }

  TempDir dir_;
  crypto::Identity room_ = NewIdentity();
  FixedClock clock_{kDec2};
};

TEST_F(LedgerTest, ChargesAndSummarizes) {
  Ledger l = Open(1.0);
  auto c = l.Spend(Key(1), 0.25, "alice");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_FALSE(c->cached);
  EXPECT_EQ(c->epsilon_charged, 0.25);
  auto s = l.Summarize();
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->epsilon_total, 1.0);
  EXPECT_DOUBLE_EQ(s->epsilon_spent, 0.25);
  EXPECT_DOUBLE_EQ(s->epsilon_left, 0.75);
  EXPECT_EQ(s->queries, 1);
  EXPECT_EQ(s->period.id, "2026-12");
  EXPECT_EQ(s->period.starts_at, "2026-12-01T00:00:00Z");
  EXPECT_EQ(s->period.ends_at, "2027-01-01T00:00:00Z");
}

TEST_F(LedgerTest, ExactlyFloorTotalOverEpsilonSpendsSucceed) {
  Ledger l = Open(1.0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(l.Spend(Key(i), 0.1, "alice").has_value()) << i;
  std::string before = Log();
  auto refused = l.Spend(Key(10), 0.1, "alice");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::BUDGET_EXHAUSTED);
  EXPECT_EQ(ExitCode(refused.error().code), 4);
  EXPECT_EQ(Log(), before);  // nothing written
  EXPECT_DOUBLE_EQ(l.Summarize()->epsilon_left, 0.0);
}

TEST_F(LedgerTest, OverspendIsRefusedAndNothingIsWritten) {
  Ledger l = Open(0.5);
  ASSERT_TRUE(l.Spend(Key(1), 0.4, "alice").has_value());
  std::string before = Log();
  auto r = l.Spend(Key(2), 0.2, "bob");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::BUDGET_EXHAUSTED);
  EXPECT_EQ(Log(), before);
  EXPECT_EQ(l.Summarize()->queries, 1);
  // What is left can still be spent.
  EXPECT_TRUE(l.Spend(Key(3), 0.1, "bob").has_value());
}

TEST_F(LedgerTest, IdenticalQueryInPeriodReturnsStoredAnswerAtNoCost) {
  Ledger l = Open(0.3);
  ASSERT_TRUE(l.Spend(Key(1), 0.3, "alice").has_value());
  ASSERT_TRUE(l.StoreAnswer(Key(1), "noisy answer bytes").has_value());
  std::string before = Log();
  auto again = l.Spend(Key(1), 0.3, "alice");  // the budget is spent, yet this is free
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->answer, "noisy answer bytes");
  EXPECT_EQ(again->epsilon_charged, 0.0);
  EXPECT_EQ(Log(), before);
  // A different query is not.
  auto other = l.Spend(Key(2), 0.1, "alice");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, ErrorCode::BUDGET_EXHAUSTED);
}

TEST_F(LedgerTest, StoredAnswerIsEncrypted) {
  Ledger l = Open(1.0);
  ASSERT_TRUE(l.Spend(Key(1), 0.3, "alice").has_value());
  ASSERT_TRUE(l.StoreAnswer(Key(1), "count=4711").has_value());
  std::string path = dir_ / ("budget-answers/2026-12." + Key(1) + ".ans");
  ASSERT_TRUE(PathExists(path));
  EXPECT_EQ(Slurp(path).find("4711"), std::string::npos);
}

TEST_F(LedgerTest, ChangedStoredAnswerIsTampered) {
  Ledger l = Open(1.0);
  ASSERT_TRUE(l.Spend(Key(1), 0.3, "alice").has_value());
  ASSERT_TRUE(l.StoreAnswer(Key(1), "count=4711").has_value());
  std::string path = dir_ / ("budget-answers/2026-12." + Key(1) + ".ans");
  std::string bytes = Slurp(path);
  bytes[bytes.size() - 1] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(path, bytes).has_value());
  auto r = l.Spend(Key(1), 0.3, "alice");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::TAMPERED);
}

TEST_F(LedgerTest, ChargedButUnansweredQueryPaysAgain) {
  Ledger l = Open(1.0);
  ASSERT_TRUE(l.Spend(Key(1), 0.3, "alice").has_value());
  auto again = l.Spend(Key(1), 0.3, "alice");
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->cached);
  EXPECT_DOUBLE_EQ(l.Summarize()->epsilon_spent, 0.6);
}

TEST_F(LedgerTest, UnpaidAnswerIsNotStored) {
  Ledger l = Open(1.0);
  auto st = l.StoreAnswer(Key(1), "free answer");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::BAD_INPUT);
  EXPECT_FALSE(PathExists(dir_ / "budget-answers"));
}

TEST_F(LedgerTest, QueryKeyMustBeHexBeforeItTouchesAPath) {
  Ledger l = Open(1.0);
  for (std::string bad : {std::string("../../etc/passwd"), std::string(64, 'A'), std::string(63, 'a'),
                          std::string(""), Key(1) + "/"}) {
    auto r = l.Spend(bad, 0.1, "alice");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::BAD_INPUT);
    EXPECT_EQ(l.StoreAnswer(bad, "x").error().code, ErrorCode::BAD_INPUT);
  }
  EXPECT_EQ(Log(), "");
}

TEST_F(LedgerTest, BadSpendArgumentsAreRefused) {
  Ledger l = Open(1.0);
  for (double eps : {0.0, -0.1, double(NAN), double(INFINITY), 1e-14}) {
    auto r = l.Spend(Key(1), eps, "alice");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::BAD_INPUT);
  }
  EXPECT_EQ(l.Spend(Key(1), 0.1, "").error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(Log(), "");
}

TEST_F(LedgerTest, BadDpSettingsAreRefused) {
  spec::Dp dp;
  dp.epsilon = 0;
  EXPECT_EQ(Ledger::Open(dir_.path(), room_, dp, clock_).error().code, ErrorCode::BAD_INPUT);
  dp.epsilon = 1;
  dp.refresh = "hourly";
  EXPECT_EQ(Ledger::Open(dir_.path(), room_, dp, clock_).error().code, ErrorCode::SPEC_INVALID);
}

TEST_F(LedgerTest, MonthlyBudgetRefreshesAndCacheDoesNotCarryOver) {
  Ledger l = Open(0.5);
  ASSERT_TRUE(l.Spend(Key(1), 0.5, "alice").has_value());
  ASSERT_TRUE(l.StoreAnswer(Key(1), "december").has_value());
  EXPECT_EQ(l.Spend(Key(2), 0.1, "alice").error().code, ErrorCode::BUDGET_EXHAUSTED);
  clock_.Set(kJan3);
  auto jan = l.Spend(Key(1), 0.5, "alice");
  ASSERT_TRUE(jan.has_value());
  EXPECT_FALSE(jan->cached);  // a new period answers afresh, and pays
  auto hist = l.History();
  ASSERT_TRUE(hist.has_value());
  ASSERT_EQ(hist->size(), 2u);
  EXPECT_EQ((*hist)[0].period.id, "2026-12");
  EXPECT_EQ((*hist)[0].period.starts_at, "2026-12-01T00:00:00Z");
  EXPECT_EQ((*hist)[1].period.id, "2027-01");
  EXPECT_DOUBLE_EQ((*hist)[1].epsilon_spent, 0.5);
  EXPECT_EQ((*hist)[1].queries, 1);
}

TEST_F(LedgerTest, NoneIsOnePeriodForever) {
  Ledger l = Open(0.5, "none");
  ASSERT_TRUE(l.Spend(Key(1), 0.5, "alice").has_value());
  clock_.Set(kJan3);
  EXPECT_EQ(l.Spend(Key(2), 0.1, "alice").error().code, ErrorCode::BUDGET_EXHAUSTED);
  EXPECT_EQ(l.Summarize()->period.id, "all");
}

TEST(PeriodTest, Ids) {
  EXPECT_EQ(PeriodAt("monthly", kDec2)->id, "2026-12");
  EXPECT_EQ(PeriodAt("daily", kDec2)->id, "2026-12-02");
  EXPECT_EQ(PeriodAt("daily", kDec2 - 1)->id, "2026-12-01");
  EXPECT_EQ(PeriodAt("daily", kDec2)->ends_at, "2026-12-03T00:00:00Z");
  auto w = PeriodAt("weekly", kDec2);  // a Wednesday
  EXPECT_EQ(w->id, "2026-W49");
  EXPECT_EQ(w->starts_at, "2026-11-30T00:00:00Z");
  EXPECT_EQ(w->ends_at, "2026-12-07T00:00:00Z");
  EXPECT_EQ(PeriodAt("weekly", 1798761600)->id, "2026-W53");  // 2027-01-01, a Friday
  EXPECT_EQ(PeriodAt("monthly", 1798761599)->id, "2026-12");
  EXPECT_EQ(PeriodAt("none", kDec2)->id, "all");
  EXPECT_EQ(PeriodAt("yearly", kDec2).error().code, ErrorCode::SPEC_INVALID);
}

// ----- Tampering: the ledger refuses to say or spend anything on a damaged log --------

class LedgerTamperTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    Ledger l = Open(1.0);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(l.Spend(Key(i), 0.3, "alice").has_value());
    lines_.clear();
    std::ifstream in(dir_ / "budget.log");
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
    ASSERT_EQ(lines_.size(), 3u);
  }
  void Write(const std::vector<std::string>& lines, bool final_newline = true) {
    std::string data;
    for (size_t i = 0; i < lines.size(); ++i) {
      data += lines[i];
      if (i + 1 < lines.size() || final_newline) data += "\n";
    }
    ASSERT_TRUE(WriteFileAtomic(dir_ / "budget.log", data).has_value());
  }
  void ExpectBroken() {
    std::string before = Log();
    spec::Dp dp;
    dp.epsilon = 1.0;
    dp.refresh = "monthly";
    auto l = Ledger::Open(dir_.path(), room_, dp, clock_);
    ASSERT_FALSE(l.has_value());
    EXPECT_EQ(l.error().code, ErrorCode::AUDIT_CHAIN_BROKEN) << l.error().ToString();
    EXPECT_EQ(Log(), before);
  }
  std::vector<std::string> lines_;
};

TEST_F(LedgerTamperTest, LoweredChargeIsDetected) {
  // The attack: make a spend look cheaper to free budget.
  Ledger l = Open(1.0);
  auto pos = lines_[1].find("\"units\":");
  ASSERT_NE(pos, std::string::npos);
  lines_[1].replace(pos, 9, "\"units\":1");
  Write(lines_);
  ExpectBroken();
  auto s = l.Spend(Key(9), 0.05, "alice");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
  EXPECT_EQ(l.Summarize().error().code, ErrorCode::AUDIT_CHAIN_BROKEN);
}

TEST_F(LedgerTamperTest, DeletedEntryIsDetected) {
  Write({lines_[0], lines_[2]});
  ExpectBroken();
}

TEST_F(LedgerTamperTest, DeletedFirstEntryIsDetected) {
  Write({lines_[1], lines_[2]});
  ExpectBroken();
}

TEST_F(LedgerTamperTest, ReorderedEntriesAreDetected) {
  Write({lines_[0], lines_[2], lines_[1]});
  ExpectBroken();
}

TEST_F(LedgerTamperTest, CutLastLineIsDetected) {
  Write({lines_[0], lines_[1], lines_[2].substr(0, 20)}, false);
  ExpectBroken();
}

TEST_F(LedgerTamperTest, EntrySignedByAnotherKeyIsDetected) {
  // Rebuild the whole log under a different key: every hash is right, no
  // signature is the room's.
  crypto::Identity other = crypto::Identity::Generate();
  TempDir elsewhere;
  spec::Dp dp;
  dp.epsilon = 1.0;
  dp.refresh = "monthly";
  auto forged = Ledger::Open(elsewhere.path(), other, dp, clock_);
  ASSERT_TRUE(forged.has_value());
  ASSERT_TRUE(forged->Spend(Key(1), 0.1, "alice").has_value());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "budget.log", Slurp(elsewhere / "budget.log")).has_value());
  ExpectBroken();
}

// ----- The ledger's head anchored in the audit log ---------------------------------------
// Every attack below leaves a valid chain: only the head each charge records
// in audit.log tells that budget.log was cut back or swapped.

class LedgerAnchorTest : public LedgerTamperTest {
 protected:
  void ExpectTampered() {
    std::string before = Log();
    std::string audit_before = Slurp(dir_ / "audit.log");
    spec::Dp dp;
    dp.epsilon = 1.0;
    dp.refresh = "monthly";
    auto l = Ledger::Open(dir_.path(), room_, dp, clock_);
    ASSERT_FALSE(l.has_value());
    EXPECT_EQ(l.error().code, ErrorCode::TAMPERED) << l.error().ToString();
    EXPECT_EQ(ExitCode(l.error().code), 6);
    EXPECT_EQ(Log(), before);
    EXPECT_EQ(Slurp(dir_ / "audit.log"), audit_before);
  }
};

TEST_F(LedgerAnchorTest, EachChargeRecordsTheNewHeadInTheAuditLog) {
  std::ifstream in(dir_ / "audit.log");
  std::vector<nlohmann::json> charges;
  for (std::string line; std::getline(in, line);) {
    auto e = nlohmann::json::parse(line);
    if (e["event"] == "budget.charge") charges.push_back(e);
  }
  ASSERT_EQ(charges.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    auto entry = nlohmann::json::parse(lines_[i]);
    EXPECT_EQ(charges[i]["details"]["budget"]["seq"], i + 1);
    EXPECT_EQ(charges[i]["details"]["budget"]["hash"], entry["hash"]);
    EXPECT_EQ(charges[i]["actor"], "alice");
  }
}

TEST_F(LedgerAnchorTest, AnOlderCopyPutBackIsTampered) {
  // The attack: keep a copy after one charge, spend more, put the copy back.
  Write({lines_[0]});
  ExpectTampered();
}

TEST_F(LedgerAnchorTest, DeletedLastLineIsTampered) {
  Write({lines_[0], lines_[1]});
  ExpectTampered();
}

TEST_F(LedgerAnchorTest, RemovedLedgerIsTampered) {
  ASSERT_EQ(::unlink((dir_ / "budget.log").c_str()), 0);
  ExpectTampered();
}

TEST_F(LedgerAnchorTest, ASpendOnAnOpenLedgerSeesTheCopyPutBackToo) {
  Ledger l = Open(1.0);
  Write({lines_[0], lines_[1]});
  std::string before = Log();
  auto s = l.Spend(Key(9), 0.05, "alice");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::TAMPERED);
  EXPECT_EQ(Log(), before);  // nothing charged
}

TEST_F(LedgerAnchorTest, AnotherLedgerOfTheSameLengthIsTampered) {
  // Same room key, same number of entries, other charges: a swapped file.
  TempDir elsewhere;
  spec::Dp dp;
  dp.epsilon = 1.0;
  dp.refresh = "monthly";
  auto other = Ledger::Open(elsewhere.path(), room_, dp, clock_);
  ASSERT_TRUE(other.has_value());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(other->Spend(Key(50 + i), 0.01, "alice").has_value());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "budget.log", Slurp(elsewhere / "budget.log")).has_value());
  ExpectTampered();
}

TEST_F(LedgerAnchorTest, ALedgerAheadOfItsAnchorIsTheRoomsOwnAndAccepted) {
  // A crash between the ledger's append and the audit record: the newest
  // charge has no anchor yet. Simulated by cutting the last audit entry off.
  std::string audit = Slurp(dir_ / "audit.log");
  audit.pop_back();
  audit = audit.substr(0, audit.rfind('\n') + 1);
  ASSERT_TRUE(WriteFileAtomic(dir_ / "audit.log", audit).has_value());
  Ledger l = Open(1.0);
  auto s = l.Summarize();
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->epsilon_spent, 0.9);
  // The next charge anchors again, and cutting that one back is caught.
  ASSERT_TRUE(l.Spend(Key(9), 0.05, "alice").has_value());
  Write(lines_);
  ExpectTampered();
}

// ----- Concurrency: real processes racing for the last of the budget -------------------

TEST(LedgerConcurrencyTest, ParallelProcessesNeverOverspend) {
  ASSERT_TRUE(crypto::Init());
  TempDir dir;
  crypto::Identity room = crypto::Identity::Generate();
  ASSERT_TRUE(crypto::WriteIdentityFiles(room, dir.path(), "room").has_value());
  const std::string room_dir = dir / "room-data";
  ASSERT_TRUE(MakeDirs(room_dir).has_value());
  const std::string key_file = dir / "room.key";

  constexpr int kProcesses = 16;
  constexpr int kAllowed = 7;  // total 0.7, each spends 0.1
  std::vector<pid_t> pids;
  std::vector<std::string> keys;
  for (int i = 0; i < kProcesses; ++i) keys.push_back(Key(100 + i));
  for (int i = 0; i < kProcesses; ++i) {
    std::vector<std::string> args = {BUDGET_SPENDER, room_dir, key_file, "0.7", "0.1", keys[i]};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, BUDGET_SPENDER, nullptr, nullptr, argv.data(), environ), 0);
    pids.push_back(pid);
  }
  int charged = 0, exhausted = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    int code = WEXITSTATUS(status);
    if (code == 0) ++charged;
    else if (code == 4) ++exhausted;
    else ADD_FAILURE() << "spender exited " << code;
  }
  EXPECT_EQ(charged, kAllowed);
  EXPECT_EQ(exhausted, kProcesses - kAllowed);

  spec::Dp dp;
  dp.epsilon = 0.7;
  dp.refresh = "monthly";
  FixedClock clock(kDec2);
  auto l = Ledger::Open(room_dir, room, dp, clock);  // the chain is intact
  ASSERT_TRUE(l.has_value()) << l.error().ToString();
  auto s = l->Summarize();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->queries, kAllowed);
  EXPECT_LE(s->epsilon_spent, 0.7 + 1e-12);
  EXPECT_DOUBLE_EQ(s->epsilon_spent, 0.7);
}

}  // namespace
}  // namespace cr::budget
