#include "query/service.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "budget/ledger.h"
#include "common/files.h"
#include "diffcheck/unit_sets.h"
#include "query/dp.h"

namespace cr::query {
namespace {

std::string SqlHash(std::string_view sql) { return ToHex(crypto::Sha256(sql)); }

}  // namespace

std::vector<const spec::Party*> Receivers(const spec::Spec& spec,
                                          const std::vector<std::string>& datasets) {
  std::vector<const spec::Party*> out;
  for (const auto& p : spec.parties) {
    if (!p.Can("receive_results")) continue;
    bool everywhere = true;
    for (const auto& name : datasets) {
      const spec::Dataset* d = spec.FindDataset(name);
      if (!d || std::find(d->rule.receivers.begin(), d->rule.receivers.end(), p.name) ==
                    d->rule.receivers.end()) {
        everywhere = false;
      }
    }
    if (everywhere && !datasets.empty()) out.push_back(&p);
  }
  return out;
}

std::vector<WithheldReceiver> SplitByRegion(const spec::Spec& spec,
                                            const std::vector<std::string>& datasets,
                                            std::vector<const spec::Party*>* receivers) {
  std::vector<WithheldReceiver> withheld;
  std::vector<const spec::Party*> kept;
  for (const spec::Party* p : *receivers) {
    std::string reason;
    for (const auto& name : datasets) {
      const spec::Dataset* d = spec.FindDataset(name);
      if (!d || d->rule.result_regions.empty()) continue;
      const auto& allowed = d->rule.result_regions;
      if (std::find(allowed.begin(), allowed.end(), p->region) != allowed.end()) continue;
      reason = p->region.empty()
                   ? fmt::format("party {} declares no region, and {} releases results only to "
                                 "regions {}",
                                 p->name, name, fmt::join(allowed, ", "))
                   : fmt::format("party {} is in region {}, and {} releases results only to "
                                 "regions {}",
                                 p->name, p->region, name, fmt::join(allowed, ", "));
      break;
    }
    if (reason.empty()) {
      kept.push_back(p);
    } else {
      withheld.push_back({p->name, std::move(reason)});
    }
  }
  *receivers = std::move(kept);
  return withheld;
}

nlohmann::json WithheldJson(const std::vector<WithheldReceiver>& withheld) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& w : withheld) out.push_back({{"party", w.party}, {"reason", w.reason}});
  return out;
}

namespace {

// What Run and Check establish before any data is read: who is asking, the
// checked plan (and DP plan), and who may receive the answer.
struct Checked {
  const spec::Party* party = nullptr;
  std::string event;  // "query" or "template"
  nlohmann::json base;
  std::optional<engine::Database> db;  // parsed the query; runs it too
  std::optional<Plan> plan;
  std::optional<DpPlan> dp_plan;
  std::vector<const spec::Party*> receivers;
  std::vector<WithheldReceiver> withheld;  // receivers the rules' result_regions exclude
};

// The refusal of a query: audited as EVENT.refused with the SQL's hash and the
// reason, which names rules, columns and constructs only. Parse errors are not
// logged in words: DuckDB's text can echo the analyst's literals.
std::unexpected<Error> Refuse(room::Room& room, const std::string& event, const std::string& actor,
                              const nlohmann::json& base, const Error& e) {
  nlohmann::json d = base;
  d["code"] = CodeName(e.code);
  if (e.code != ErrorCode::SQL_INVALID) d["reason"] = e.message;
  return room.audit().Refuse(event + ".refused", actor, std::move(d), e);
}

// A benchmark compares contributors: it needs an aggregation over a pooled
// dataset, answered exactly (noise per contributor is not what DP bounds).
Status CheckBenchmark(const Plan& plan, bool dp) {
  bool pooled = false;
  for (const auto& t : plan.tables) pooled = pooled || t.ds->pooled();
  if (!pooled) {
    return Fail(ErrorCode::QUERY_REFUSED,
                "benchmark: the query must read a pooled dataset (one with contributors)");
  }
  if (plan.kind != QueryKind::kAggregation) {
    return Fail(ErrorCode::QUERY_REFUSED,
                "benchmark: only aggregation queries compare contributors");
  }
  if (dp) {
    return Fail(ErrorCode::QUERY_REFUSED,
                "benchmark: not available with differential privacy (a contributor's own figure "
                "is exact)");
  }
  return Ok();
}

// Every check of a query or template run, in order, shared by Run and Check
// so a check that passes is a run that would pass its checks. Refusals are
// audited under EVENT + `suffix` (".check" for Check).
Result<Checked> CheckRequest(room::Room& room, const crypto::PublicIdentity& caller,
                             const Request& req, const engine::Options& engine,
                             const std::string& suffix) {
  const spec::Spec& spec = room.spec();
  const spec::Template* tmpl = nullptr;
  std::string sql = req.sql;
  if (!req.template_name.empty()) {
    tmpl = spec.FindTemplate(req.template_name);
    if (tmpl) sql = tmpl->sql;
  }
  Checked c;
  c.event = tmpl || !req.template_name.empty() ? "template" : "query";
  c.base = {{"sql_sha256", SqlHash(sql)}};
  if (!req.template_name.empty()) c.base["template"] = req.template_name;

  const spec::Party* party = spec.FindPartyByKey(caller);
  const std::string actor = party ? party->name : "key:" + caller.Fingerprint();
  auto refuse = [&](const Error& e) { return Refuse(room, c.event + suffix, actor, c.base, e); };

  if (!party) {
    return refuse(Error{ErrorCode::NOT_AUTHORIZED, "this key belongs to no party of the collaboration"});
  }
  if (!party->Can("query")) {
    return refuse(Error{ErrorCode::NOT_AUTHORIZED,
                        fmt::format("party {} does not have the query ability", party->name)});
  }
  if (!room.active()) {
    return refuse(Error{ErrorCode::ROOM_NOT_ACTIVE, "the room is not active yet"});
  }
  if (!req.template_name.empty() && !tmpl) {
    return refuse(Error{ErrorCode::BAD_INPUT,
                        fmt::format("the spec has no template {}", req.template_name)});
  }
  if (req.template_name.empty() && sql.empty()) {
    return refuse(Error{ErrorCode::USAGE, "no SQL given"});
  }
  c.party = party;

  // One database parses the query and, once the plan passed, runs it.
  auto db = engine::Database::Open(engine);
  if (!db) return refuse(db.error());
  c.db.emplace(std::move(*db));
  CheckContext ctx;
  ctx.spec = &spec;
  ctx.caller = party->name;
  ctx.tmpl = tmpl;
  ctx.params = req.params;
  // Checked as a DP plan whenever it may become one (COUNT(*) is allowed
  // only there); rechecked without when it does not.
  bool any_require_dp = false;
  for (const auto& d : spec.datasets) any_require_dp = any_require_dp || d.rule.require_dp;
  ctx.dp = spec.privacy.dp && (req.epsilon || any_require_dp);
  auto plan = BuildPlan(*c.db, sql, ctx);
  if (!plan) return refuse(plan.error());
  auto use_dp = NeedsDp(spec, *plan, req.epsilon.has_value());
  if (!use_dp) return refuse(use_dp.error());
  if (ctx.dp && !*use_dp) {
    ctx.dp = false;
    plan = BuildPlan(*c.db, sql, ctx);
    if (!plan) return refuse(plan.error());
  }
  c.base["datasets"] = plan->Datasets();
  if (*use_dp) {
    double epsilon = req.epsilon.value_or(spec.privacy.dp->query_epsilon);
    c.base["epsilon"] = epsilon;
    auto p = PlanDp(spec, *plan, epsilon);
    if (!p) return refuse(p.error());
    c.dp_plan = std::move(*p);
  }
  c.plan = std::move(*plan);
  if (req.benchmark || (tmpl && tmpl->benchmark)) {
    if (auto st = CheckBenchmark(*c.plan, c.dp_plan.has_value()); !st) return refuse(st.error());
    c.plan->benchmark = true;
    c.base["benchmark"] = true;
  }

  auto receivers = Receivers(spec, c.plan->Datasets());
  if (receivers.empty()) {
    return refuse(Error{ErrorCode::QUERY_REFUSED,
                        "no party may receive results over these datasets (rule receivers)"});
  }
  if (!req.receivers.empty()) {
    // A subset of what the rules allow, never more: checked before anything
    // runs, so a refused narrowing releases and seals nothing. A name of no
    // party is not repeated: the reason is audited, and it is free text.
    std::vector<const spec::Party*> narrowed;
    for (const auto& name : req.receivers) {
      auto it = std::find_if(receivers.begin(), receivers.end(),
                             [&](const spec::Party* p) { return p->name == name; });
      if (it == receivers.end()) {
        return refuse(Error{
            ErrorCode::QUERY_REFUSED,
            spec.FindParty(name)
                ? fmt::format("party {} may not receive results over these datasets (rule "
                              "receivers and the receive_results ability)", name)
                : std::string("a requested receiver is not a party of the collaboration")});
      }
      if (std::find(narrowed.begin(), narrowed.end(), *it) == narrowed.end()) narrowed.push_back(*it);
    }
    receivers = std::move(narrowed);
  }
  // Residency: a receiver outside a touched dataset's result_regions gets
  // nothing, and the record says why; with no receiver left nothing runs.
  c.withheld = SplitByRegion(spec, c.plan->Datasets(), &receivers);
  if (!c.withheld.empty()) c.base["withheld_receivers"] = WithheldJson(c.withheld);
  if (receivers.empty()) {
    return refuse(Error{ErrorCode::REGION_REFUSED,
                        "no receiver of this result is in a region the datasets' result_regions "
                        "allow"});
  }
  c.receivers = std::move(receivers);
  return c;
}

// Withholds every released row whose units differ from an earlier released
// row's over the same datasets by 1 to k-1, and records the rest under the
// result's id, all under the store's lock, which the caller keeps until the
// result is stored. Withheld rows join the withheld summary: each covers at
// least k units, so the summary's own condition holds.
Result<diffcheck::Store::Lock> ApplyDifferenceChecks(const diffcheck::Store& store,
                                                     const Plan& plan, Outcome* out,
                                                     nlohmann::json* mark) {
  CR_ASSIGN(diffcheck::Store::Lock lock, store.Acquire());
  auto& sets = out->stats.unit_sets;
  if (sets.size() != out->result.rows.size()) {
    return Fail(ErrorCode::INTERNAL, "the difference check lost track of the released rows");
  }
  const auto t0 = std::chrono::steady_clock::now();
  CR_ASSIGN(std::vector<bool> withheld, store.Check(lock, plan.Datasets(), sets,
                                                    plan.min_distinct_units,
                                                    out->stats.fill_unit_sets));
  out->stats.unit_check_seconds = Since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<nlohmann::json> kept;
  std::vector<const diffcheck::UnitSet*> kept_sets;
  for (size_t r = 0; r < withheld.size(); ++r) {
    if (withheld[r]) continue;
    kept.push_back(std::move(out->result.rows[r]));
    kept_sets.push_back(&sets[r]);
  }
  const int64_t dropped = static_cast<int64_t>(withheld.size() - kept.size());
  out->result.rows = std::move(kept);
  if (dropped > 0) {
    out->stats.difference_withheld = dropped;
    out->stats.withheld_rows += dropped;
    out->stats.released_rows -= dropped;
    out->stats.summary_released = true;
    out->result.withheld_rows = out->stats.withheld_rows;
  }
  auto added = store.Add(lock, out->result.result_id, plan.Datasets(), kept_sets);
  // The fetch holds the decrypted datasets: let them go now.
  out->stats.fill_unit_sets = nullptr;
  CR_ASSIGN(*mark, std::move(added));
  out->stats.unit_store_seconds = Since(t1);
  return lock;
}

}  // namespace

Result<Outcome> Run(room::Room& room, const crypto::PublicIdentity& caller, const Request& req,
                    const RunOptions& options) {
  CR_ASSIGN(Checked c, CheckRequest(room, caller, req, options.engine, ""));
  // On every way out, after the answer is stored and audited, the database
  // goes to the Closer: the answer does not wait for DuckDB to free it.
  struct HandOver {
    Checked& c;
    engine::Closer* closer;
    ~HandOver() {
      if (closer && c.db) closer->Close(std::move(*c.db));
    }
  } hand_over{c, options.closer};
  const spec::Spec& spec = room.spec();
  const spec::Party* party = c.party;
  const std::string& event = c.event;
  nlohmann::json& base = c.base;
  engine::Database* db = &*c.db;
  const Plan* plan = &*c.plan;
  const std::optional<DpPlan>& dp_plan = c.dp_plan;
  const std::vector<const spec::Party*>& receivers = c.receivers;
  auto refuse = [&](const Error& e) { return Refuse(room, event, party->name, base, e); };

  // Usage budgets (rule max_queries): a query that passed every check is
  // admitted here and counted before it runs, like an epsilon charge; one
  // refused by its epsilon budget is released uncounted.
  std::optional<budget::UsageLedger::Reservation> usage;
  if (auto limits = budget::UsageLimits(spec, plan->Datasets()); !limits.empty()) {
    auto ledger = budget::UsageLedger::Open(room.dir(), room.key(), room.clock());
    if (!ledger) return refuse(ledger.error());
    auto reserved = ledger->Reserve(limits, party->name);
    if (!reserved) return refuse(reserved.error());
    usage.emplace(std::move(*reserved));
  }
  auto count_usage = [&]() -> Status {
    if (!usage) return Ok();
    Status st = usage->Commit();
    usage.reset();
    return st;
  };

  Outcome out;
  if (dp_plan) {
    out.dp = true;
    // The ledger's key for stored answers: the same checked plan, parameters
    // (inlined in the SQL), receivers and epsilon is the same question.
    std::string canonical = CanonicalText(*plan, *dp_plan) + "receivers";
    for (const auto* p : receivers) canonical += " " + p->name;
    const std::string query_key = ToHex(crypto::Sha256(canonical));
    auto ledger = budget::Ledger::Open(room.dir(), room.key(), *spec.privacy.dp, room.clock());
    if (!ledger) return refuse(ledger.error());
    // Charged before anything runs: a query that fails later has still been
    // paid for, so failures cannot be used to probe for free.
    auto charge = ledger->Spend(query_key, dp_plan->epsilon, party->name);
    if (!charge) return refuse(charge.error());
    if (auto st = count_usage(); !st) return refuse(st.error());
    if (charge->cached) {
      auto stored = nlohmann::json::parse(charge->answer, nullptr, false);
      auto rs = stored.is_discarded() ? Result<results::ResultSet>(Fail(
                                            ErrorCode::TAMPERED, "a stored answer is unreadable"))
                                      : results::FromJson(stored);
      if (!rs) return refuse(Error{ErrorCode::TAMPERED, "a stored answer is unreadable"});
      out.result = std::move(*rs);
      out.result.epsilon_spent = 0;
      out.cached = true;
      out.stats.released_rows = static_cast<int64_t>(out.result.rows.size());
      out.stats.groups = out.stats.released_rows;
      out.stats.summary_released = false;
    } else {
      auto rs = ExecuteWith(room, *db, *plan, &out.stats, options.timeout_seconds, [&] {
        return ExecuteDpPlan(*db, *plan, *dp_plan, dp::SecureRandom(), &out.stats);
      }, options.cache);
      if (!rs) return refuse(rs.error());
      rs->result_id.clear();
      if (auto st = ledger->StoreAnswer(query_key, results::ToJson(*rs).dump()); !st) {
        return refuse(st.error());
      }
      out.result = std::move(*rs);
      out.epsilon_spent = charge->epsilon_charged;
    }
  } else {
    if (auto st = count_usage(); !st) return refuse(st.error());
    c.plan->unit_sets = spec.privacy.difference_checks;
    // What the room checked at ingest: every unit in one row of one part.
    for (auto& t : c.plan->tables) {
      const auto parts = room.Parts(t.dataset);
      t.unique_units = !parts.empty() && std::all_of(parts.begin(), parts.end(), [](const auto* p) {
        return p->unique_units;
      });
    }
    auto rs = Execute(room, *db, *plan, &out.stats, options.timeout_seconds, options.cache);
    if (!rs) return refuse(rs.error());
    out.result = std::move(*rs);
  }
  out.result.result_id = crypto::RandomId();
  // Held until the result is stored and audited: the next query is checked
  // against this one's rows (diffcheck/unit_sets.h).
  std::optional<diffcheck::Store::Lock> unit_lock;
  std::optional<diffcheck::Store> unit_store;
  nlohmann::json unit_mark;  // the unit-set index's mark, for the audit record
  if (plan->unit_sets) {
    unit_store.emplace(room.dir(), room.key(), options.unit_sets);
    auto applied = ApplyDifferenceChecks(*unit_store, *plan, &out, &unit_mark);
    if (!applied) return refuse(applied.error());
    unit_lock.emplace(std::move(*applied));
  }
  // A release that failed after its sets were added takes them out again;
  // the refusal records the index as it is then (rollback detection).
  auto drop_units = [&] {
    if (!unit_lock) return;
    if (auto m = unit_store->Remove(*unit_lock, out.result.result_id)) unit_mark = std::move(*m);
  };
  out.caller = party->name;
  out.datasets = plan->Datasets();
  out.withheld_receivers = c.withheld;
  std::vector<results::Receiver> sealed_to;
  // A benchmark: each receiver that contributed to the pooled dataset gets
  // its own figures beside the peers' (same result id); the others the peers'.
  std::map<std::string, results::ResultSet> own;
  if (out.stats.own) {
    const spec::Dataset* pooled = nullptr;
    for (const auto& t : plan->tables) {
      if (!pooled && t.ds->pooled()) pooled = t.ds;
    }
    for (const auto* p : receivers) {
      int index = pooled->ContributorIndex(p->name);
      if (index >= 0) own[p->name] = WithOwnFigures(out.result, *out.stats.own, index);
    }
  }
  for (const auto* p : receivers) {
    out.receivers.push_back(p->name);
    auto mine = own.find(p->name);
    sealed_to.push_back({p->name, p->key, mine == own.end() ? nullptr : &mine->second});
    out.caller_receives = out.caller_receives || p->name == party->name;
  }

  nlohmann::json details = base;
  details["result_id"] = out.result.result_id;
  details["receivers"] = out.receivers;
  details["released_rows"] = out.stats.released_rows;
  // What was released, never more: when the withheld-row summary is itself
  // withheld (too few people together), the audit log and the result's
  // metadata (readable by parties) say null, not the count.
  details["withheld_rows"] = out.result.withheld_rows ? nlohmann::json(*out.result.withheld_rows)
                                                      : nlohmann::json(nullptr);
  if (out.dp) {
    // The cost, never a pre-noise number: partition selection replaces the
    // threshold, and how many groups it withheld is not released.
    details["epsilon_spent"] = out.epsilon_spent;
    details["cached"] = out.cached;
  } else {
    details["min_distinct_units"] = plan->min_distinct_units;
    if (plan->unit_sets) {
      details["difference_withheld"] = out.stats.difference_withheld;
      details["unitsets"] = unit_mark;
    }
  }
  nlohmann::json meta = details;
  meta["created_at"] = room.clock().NowRfc3339();
  meta["requested_by"] = party->name;
  meta["columns"] = out.result.columns;
  // Storing the result (two rounds of syncs) and appending its record (one)
  // run at once, and the answer waits for both: on a warm room these syncs
  // were most of a query's cost beyond its SQL (bench/server). Unaudited
  // releases do not exist: a result whose record could not be written is
  // removed. A record whose result could not be stored is followed by the
  // refusal, naming the same result id, so the log never claims a release
  // that did not happen.
  Status stored = Ok();
  std::thread store([&] {
    try {
      stored = results::Store(room.dir(), room.sealer(), out.result, sealed_to, meta);
    } catch (const std::exception& e) {
      stored = Fail(ErrorCode::INTERNAL, "cannot store result {}: {}", out.result.result_id, e.what());
    }
  });
  Status audited = room.audit().Append(event + ".run", party->name, details);
  store.join();
  if (!audited) {
    if (stored) results::Remove(room.dir(), out.result.result_id);
    drop_units();
    return std::unexpected(audited.error());
  }
  if (!stored) {
    nlohmann::json d = base;
    d["result_id"] = out.result.result_id;
    drop_units();
    if (unit_lock) d["unitsets"] = unit_mark;
    return Refuse(room, event, party->name, d, stored.error());
  }
  // The caller reads what was sealed to it.
  if (auto mine = own.find(party->name); mine != own.end()) out.result = std::move(mine->second);
  return out;
}

Result<CheckOutcome> Check(room::Room& room, const crypto::PublicIdentity& caller,
                           const Request& req, const engine::Options& engine) {
  CR_ASSIGN(Checked c, CheckRequest(room, caller, req, engine, ".check"));
  CheckOutcome out;
  out.datasets = c.plan->Datasets();
  if (c.dp_plan) {
    out.dp = true;
    out.epsilon = c.base["epsilon"].get<double>();
  }
  for (const auto& col : c.plan->outputs) out.columns.push_back(col.name);
  out.withheld_receivers = c.withheld;
  for (const auto* p : c.receivers) {
    out.receivers.push_back(p->name);
    out.caller_receives = out.caller_receives || p->name == c.party->name;
  }
  c.base["receivers"] = out.receivers;
  CR_TRY(room.audit().Append(c.event + ".check", c.party->name, c.base));
  return out;
}

Result<std::vector<nlohmann::json>> ListResults(room::Room& room,
                                                const crypto::PublicIdentity& caller) {
  const spec::Party* party = room.spec().FindPartyByKey(caller);
  if (!party) {
    return room.audit().Refuse(
        "result.list.refused", "key:" + caller.Fingerprint(), nlohmann::json::object(),
        Error{ErrorCode::NOT_AUTHORIZED, "this key belongs to no party of the collaboration"});
  }
  auto list = results::ListFor(room.dir(), room.sealer(), party->name);
  if (!list) {
    return room.audit().Refuse("result.list.refused", party->name, nlohmann::json::object(),
                               list.error());
  }
  CR_TRY(room.audit().Append("result.list", party->name, {{"results", list->size()}}));
  return list;
}

Result<results::ResultSet> GetResult(room::Room& room, const crypto::Identity& caller,
                                     const std::string& id) {
  const spec::Party* party = room.spec().FindPartyByKey(caller.pub());
  std::string actor = party ? party->name : "key:" + caller.pub().Fingerprint();
  nlohmann::json details = {{"result_id", results::ValidId(id) ? id : std::string("(invalid)")}};
  auto refuse = [&](const Error& e) -> std::unexpected<Error> {
    nlohmann::json d = details;
    return room.audit().Refuse("result.get.refused", actor, std::move(d), e);
  };
  if (!party) {
    return refuse(Error{ErrorCode::NOT_AUTHORIZED, "this key belongs to no party of the collaboration"});
  }
  auto r = results::Open(room.dir(), room.sealer(), id, party->name, caller);
  if (!r) return refuse(r.error());
  CR_TRY(room.audit().Append("result.get", party->name, details));
  return r;
}

Result<Outcome> Run(room::Room& room, const crypto::Identity& caller, const Request& req,
                    const RunOptions& options) {
  return Run(room, caller.pub(), req, options);
}

Result<std::vector<nlohmann::json>> ListResults(room::Room& room, const crypto::Identity& caller) {
  return ListResults(room, caller.pub());
}

Result<std::string> GetSealed(room::Room& room, const crypto::PublicIdentity& caller,
                              const std::string& id) {
  const spec::Party* party = room.spec().FindPartyByKey(caller);
  std::string actor = party ? party->name : "key:" + caller.Fingerprint();
  nlohmann::json details = {{"result_id", results::ValidId(id) ? id : std::string("(invalid)")}};
  auto refuse = [&](const Error& e) -> std::unexpected<Error> {
    return room.audit().Refuse("result.get.refused", actor, details, e);
  };
  if (!party) {
    return refuse(Error{ErrorCode::NOT_AUTHORIZED, "this key belongs to no party of the collaboration"});
  }
  auto sealed = results::ReadSealed(room.dir(), room.sealer(), id, party->name);
  if (!sealed) return refuse(sealed.error());
  CR_TRY(room.audit().Append("result.get", party->name, details));
  return sealed;
}

}  // namespace cr::query
