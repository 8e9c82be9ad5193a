// The differential-privacy budget ledger: per collaboration and refresh
// period, a signed, hash-chained log of epsilon spent (DIR/budget.log) and the
// stored noisy answers that let an identical query repeat at no cost.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/env.h"
#include "common/error.h"
#include "crypto/crypto.h"
#include "spec/spec.h"

namespace cr::budget {

// "2026-12" for monthly, "2026-12-02" daily, "2026-W49" weekly (ISO), "all"
// for none; starts_at/ends_at are RFC 3339 UTC, ends_at exclusive (both empty
// for "all").
struct Period {
  std::string id;
  std::string starts_at;
  std::string ends_at;
};

struct Summary {
  double epsilon_total = 0;
  double epsilon_spent = 0;
  double epsilon_left = 0;
  Period period;
  int64_t queries = 0;
};

// What Spend returns.
struct Charge {
  bool cached = false;     // an identical query in this period: its stored answer, no cost
  std::string answer;      // the stored answer bytes when cached (opaque to the ledger)
  double epsilon_charged = 0;
};

// Epsilon is accounted in whole units of 10^-12 (each charge and the total
// rounded to the nearest unit), so sums are exact: ten charges of 0.1 spend a
// total of 1.0 exactly, and concurrent spenders agree to the last digit.
inline constexpr double kEpsilonUnit = 1e-12;

// The period containing `unix_seconds` for `refresh` (none, daily, weekly,
// monthly); SPEC_INVALID for anything else.
Result<Period> PeriodAt(std::string_view refresh, long long unix_seconds);

class Ledger {
 public:
  // DIR/budget.log (signed by the room key and hash-chained like audit.log) and
  // DIR/budget-answers/ (stored noisy answers, encrypted under a key derived
  // from the room key). Each charge also appends a "budget.charge" entry to
  // DIR/audit.log holding the ledger's new head {"budget": {"seq", "hash"}};
  // Open and Spend refuse with TAMPERED a ledger that does not reach the last
  // head recorded there (an older copy put back, lines cut off, the file
  // replaced or removed). AUDIT_CHAIN_BROKEN when the log is damaged; BAD_INPUT
  // when dp.epsilon is not a positive finite number; SPEC_INVALID for an
  // unknown refresh. `room_key` and `clock` must outlive the ledger.
  static Result<Ledger> Open(const std::string& room_dir, const crypto::Identity& room_key,
                             const spec::Dp& dp, const Clock& clock);

  // Atomically across processes (flock on the ledger): when `query_key` (a hash
  // of the checked plan, parameters, receivers and epsilon: 64 lower-case hex
  // digits, else BAD_INPUT) has a stored answer in the current period, returns
  // it with cached=true and charges nothing; otherwise refuses with
  // BUDGET_EXHAUSTED (exit 4) when spent + epsilon > total (nothing written),
  // or appends a signed entry charging `epsilon` to `party`, fsynced, and
  // returns cached=false.
  Result<Charge> Spend(const std::string& query_key, double epsilon, const std::string& party);

  // Stores the noisy answer for `query_key` so a repeat in the period returns
  // it. Only a query the ledger charged can store one (BAD_INPUT otherwise):
  // an answer nobody paid for must never be served for free.
  Status StoreAnswer(const std::string& query_key, std::string_view answer);

  Result<Summary> Summarize() const;             // the current period
  Result<std::vector<Summary>> History() const;  // every period seen, oldest first

  const std::string& log_path() const { return log_path_; }

  // For `room rotate-key`: writes `from_dir`'s budget.log, usage.log and budget-answers/
  // into `to_dir` under the room's next key: every entry checked under
  // `from` and signed again by `to` (its hash, and so every anchor the audit
  // log holds, unchanged), every stored answer re-encrypted. Nothing when the
  // room has no ledger; AUDIT_CHAIN_BROKEN / TAMPERED for a damaged one.
  // Returns how many entries and answers it rewrote.
  static Result<size_t> Rekey(const std::string& from_dir, const std::string& to_dir,
                              const crypto::Identity& from, const crypto::Identity& to);

 private:
  Ledger(const std::string& room_dir, const crypto::Identity& room_key, const spec::Dp& dp,
         const Clock& clock);
  std::string AnswerPath(const std::string& period, const std::string& query_key) const;

  std::string room_dir_;
  std::string log_path_;
  std::string audit_path_;  // DIR/audit.log: where each charge anchors the ledger's head
  std::string answers_dir_;
  const crypto::Identity* room_key_;
  spec::Dp dp_;
  const Clock* clock_;
  int64_t total_units_ = 0;
};

// ----- Usage budgets (a dataset rule's max_queries) ----------------------------------

struct UsageLimit {
  std::string dataset;
  spec::MaxQueries max;
};

struct UsageCount {
  UsageLimit limit;
  Period period;     // the current window ("all" for lifetime)
  int64_t used = 0;  // queries counted in it
};

// The usage limits of the datasets a query touches, in that order.
std::vector<UsageLimit> UsageLimits(const spec::Spec& spec, const std::vector<std::string>& datasets);

// DIR/usage.log: one signed, hash-chained entry per counted query (the
// datasets with max_queries it touched and each one's window), kept and
// anchored in DIR/audit.log ("usage.charge" with {"usage": {"seq", "hash"}})
// exactly as budget.log is: an older copy put back, lines cut off or a
// replaced file is TAMPERED, a damaged line AUDIT_CHAIN_BROKEN.
class UsageLedger {
 public:
  static Result<UsageLedger> Open(const std::string& room_dir, const crypto::Identity& room_key,
                                  const Clock& clock);

  // A query admitted against every limit, not yet counted. It holds the
  // log's exclusive lock until Commit (which counts it) or its end (which
  // counts nothing), so the caller can still refuse it (a DP budget) free.
  class Reservation {
   public:
    Reservation(Reservation&& o) noexcept;
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation();
    [[nodiscard]] Status Commit();

   private:
    friend class UsageLedger;
    Reservation() = default;
    int fd_ = -1;
    long long size_ = 0;
    std::string room_dir_, log_path_, audit_path_;
    const crypto::Identity* room_key_ = nullptr;
    const Clock* clock_ = nullptr;
    nlohmann::json entry_;
  };

  // USAGE_EXHAUSTED (exit 4) when some limit's window already holds `count`
  // queries; nothing is written until Commit.
  [[nodiscard]] Result<Reservation> Reserve(const std::vector<UsageLimit>& limits,
                                            const std::string& party) const;
  // The current window and count of each limit.
  Result<std::vector<UsageCount>> Counts(const std::vector<UsageLimit>& limits) const;

 private:
  UsageLedger(const std::string& room_dir, const crypto::Identity& room_key, const Clock& clock);
  std::string room_dir_;
  std::string log_path_;
  std::string audit_path_;
  const crypto::Identity* room_key_;
  const Clock* clock_;
};

}  // namespace cr::budget
