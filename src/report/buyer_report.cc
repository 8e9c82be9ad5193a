#include "report/buyer_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>
#include <map>
#include <set>

#include "ingest/ingest.h"
#include "report/html.h"
#include "room/views.h"

namespace cr::report {
namespace {

// What the audit log says happened, counted once for every answer.
struct History {
  std::map<std::string, int64_t> events;
  std::map<std::string, int64_t> refused_by_code;  // queries and checks
  std::map<std::string, int64_t> runs_by_party;
  std::map<std::string, int64_t> results_by_receiver;
  std::vector<std::string> disposals;  // "DATASET (reason, time)"
  int64_t released_rows = 0;
  int64_t withheld_rows = 0;
  double epsilon_spent = 0;
};

History Read(const std::vector<nlohmann::json>& entries) {
  History h;
  for (const auto& e : entries) {
    if (!e.is_object()) continue;
    const std::string ev = e.value("event", "");
    const nlohmann::json d = e.value("details", nlohmann::json::object());
    ++h.events[ev];
    if (!d.is_object()) continue;
    if (ev == "query.refused" || ev == "template.refused" || ev.ends_with(".check.refused")) {
      ++h.refused_by_code[d.value("code", std::string("UNKNOWN"))];
    }
    if (ev == "query.run" || ev == "template.run") {
      ++h.runs_by_party[e.value("actor", "")];
      if (d.contains("receivers") && d["receivers"].is_array()) {
        for (const auto& r : d["receivers"]) {
          if (r.is_string()) ++h.results_by_receiver[r.get<std::string>()];
        }
      }
      if (d.contains("released_rows") && d["released_rows"].is_number_integer()) {
        h.released_rows += d["released_rows"].get<int64_t>();
      }
      if (d.contains("withheld_rows") && d["withheld_rows"].is_number_integer()) {
        h.withheld_rows += d["withheld_rows"].get<int64_t>();
      }
      if (d.contains("epsilon_spent") && d["epsilon_spent"].is_number()) {
        h.epsilon_spent += d["epsilon_spent"].get<double>();
      }
    }
    if (ev == "dataset.dispose") {
      h.disposals.push_back(fmt::format("{} ({}, {})", d.value("dataset", "?"),
                                        d.value("reason", "?"), e.value("time", "")));
    }
  }
  return h;
}

int64_t Count(const History& h, const std::string& ev) {
  auto it = h.events.find(ev);
  return it == h.events.end() ? 0 : it->second;
}

std::vector<std::string> PartiesWith(const spec::Spec& s, std::string_view ability) {
  std::vector<std::string> out;
  for (const auto& p : s.parties) {
    if (p.Can(ability)) out.push_back(p.name);
  }
  return out;
}

std::string Names(const std::vector<std::string>& v) {
  return v.empty() ? "none" : fmt::format("{}", fmt::join(v, ", "));
}

struct Ctx {
  const room::Room& room;
  const spec::Spec& spec;
  const History& h;
  const std::string& head;
  int64_t entries;
};

using Generator = std::function<void(const Ctx&, Answer&)>;

void Inputs(const Ctx& c, Answer& a) {
  const auto views = room::DatasetViews(c.room, c.room.Info(), c.room.clock().NowUnix());
  for (const auto& v : views) {
    std::vector<std::string> cols;
    for (const auto& col : v.declared->columns) {
      cols.push_back(fmt::format(
          "{} ({} {}{})", col.name, spec::Name(col.type), spec::Name(col.role),
          col.normalize == spec::Normalize::kNone
              ? ""
              : fmt::format(", {} normalised, pseudonymised", spec::Name(col.normalize))));
    }
    std::string stored = "nothing stored";
    if (v.stored) {
      const bool exact = v.stored->schema == ingest::ExpectedSchema(*v.declared);
      stored = fmt::format(
          "{} rows stored (version {}, {}); the stored columns are {} the declared ones",
          v.stored->rows, v.stored->package_id, v.stored->ingested_at, exact ? "exactly" : "NOT");
    }
    a.answer.push_back(fmt::format("Dataset {} from {}: declared columns {}; {}.", v.declared->name,
                                   v.declared->owner, fmt::join(cols, "; "), stored));
  }
  a.answer.push_back(
      "Only declared columns enter a package: prepare selects them on the party's machine, so an "
      "undeclared column never leaves the party, and ingest refuses a package whose schema is not "
      "the "
      "declared one (SCHEMA_MISMATCH).");
  a.evidence.push_back(
      {"declared columns", fmt::format("signed spec {} (spec.yaml)", c.spec.hash)});
  a.evidence.push_back(
      {"stored schema and rows", "catalog.json (sealed), as `cleanroom datasets` shows"});
  a.evidence.push_back(
      {"ingests", fmt::format("{} dataset.ingest, {} ingest.refused entries in audit.log",
                              Count(c.h, "dataset.ingest"), Count(c.h, "ingest.refused"))});
}

void Encryption(const Ctx& c, Answer& a) {
  const nlohmann::json ks = c.room.KeyStoreInfo();
  a.answer.push_back(
      "Before loading: each package is encrypted on the party's machine under a fresh data key "
      "(XChaCha20-Poly1305 secretstream, 1 MiB chunks), the key sealed to the room's public key "
      "(X25519 sealed box), and the package signed with the owner's Ed25519 key.");
  a.answer.push_back(
      "At rest: every stored dataset is re-encrypted per Parquet column chunk with AES-256-GCM "
      "under a "
      "fresh key, wrapped with XChaCha20-Poly1305 under a key derived from the room key; plaintext "
      "is "
      "only ever in memory.");
  a.answer.push_back(
      fmt::format("The room key is held by a {} key store and is never on disk in clear.",
                  ks.value("key_store", std::string("?"))));
  a.answer.push_back(
      "In transit (cleanroom serve): HTTPS, and every request signed by the party's key (RFC 9421) "
      "with "
      "a body digest (RFC 9530); results travel sealed to each receiver.");
  a.evidence.push_back(
      {"room key", fmt::format("room.pub, fingerprint {}", c.room.key().pub().Fingerprint())});
  a.evidence.push_back(
      {"key store", "keystore.json (" + ks.value("key_store", std::string("?")) + ")"});
  a.evidence.push_back(
      {"stored versions", fmt::format("{} dataset(s) in catalog.json", c.room.datasets().size())});
}

void Anonymisation(const Ctx& c, Answer& a) {
  a.answer.push_back(fmt::format(
      "Join keys are pseudonymised by the parties before loading (HMAC-SHA256 under a secret the "
      "room "
      "does not hold). Privacy unit: {}; default threshold: {} distinct units per released row.",
      c.spec.privacy.unit, c.spec.privacy.min_distinct_units));
  for (const auto& d : c.spec.datasets) {
    a.answer.push_back(fmt::format("{}: {} rule, at least {} distinct units per released row{}.",
                                   d.name, spec::Name(d.rule.kind), c.spec.MinDistinctUnits(d),
                                   d.rule.require_dp ? ", differential privacy required" : ""));
  }
  if (c.spec.privacy.dp) {
    const auto& dp = *c.spec.privacy.dp;
    a.answer.push_back(
        fmt::format("Differential privacy is in force: epsilon {} per {} period, delta {}, at most "
                    "{} groups per unit "
                    "and {} contributions per group; {} spent so far.",
                    dp.epsilon, dp.refresh, dp.delta, dp.max_groups_per_unit,
                    dp.max_contributions_per_group, c.h.epsilon_spent));
  } else {
    a.answer.push_back(
        "Differential privacy is not configured in the spec: answers are thresholded, not noised.");
  }
  a.evidence.push_back({"rules and thresholds", fmt::format("signed spec {}", c.spec.hash)});
}

void Aggregation(const Ctx& c, Answer& a) {
  for (const auto& d : c.spec.datasets) {
    std::vector<std::string> fns;
    for (const auto& [col, list] : d.rule.aggregates) {
      std::vector<std::string> names;
      for (auto f : list) names.emplace_back(spec::Name(f));
      fns.push_back(fmt::format("{}: {}", col, fmt::join(names, "/")));
    }
    a.answer.push_back(fmt::format("{}: aggregates allowed {}.", d.name,
                                   fns.empty() ? "none" : fmt::format("{}", fmt::join(fns, "; "))));
  }
  a.answer.push_back(fmt::format(
      "So far {} query run(s) released {} row(s) and withheld {} row(s) under the threshold.",
      Count(c.h, "query.run") + Count(c.h, "template.run"), c.h.released_rows, c.h.withheld_rows));
  a.answer.push_back(
      "Red-teaming: the checker refuses the known attack queries before they run; microdata "
      "releases "
      "are red-teamed with `cleanroom risk` (a linkage attack), which this room's log does not "
      "record.");
  a.evidence.push_back(
      {"runs", "query.run / template.run entries in audit.log (released_rows, withheld_rows)"});
}

void Analysts(const Ctx& c, Answer& a) {
  a.answer.push_back(
      fmt::format("Parties with the query ability: {}.", Names(PartiesWith(c.spec, "query"))));
  a.answer.push_back(
      fmt::format("Queries actually run, by party: {}.", CountsText(c.h.runs_by_party, "none")));
  a.answer.push_back(
      "The operator runs only the agreed code; it holds no shared secret, so never sees raw "
      "identifiers.");
  a.evidence.push_back({"abilities", fmt::format("signed spec {}", c.spec.hash)});
  a.evidence.push_back(
      {"signatures", fmt::format("state.json: signed by {}", Names(c.room.Info().signed_by))});
}

void Exposure(const Ctx& c, Answer& a) {
  a.answer.push_back(
      fmt::format("Every query is checked against the dataset's rule before it reads data; "
                  "refusals so far by code: {}.",
                  CountsText(c.h.refused_by_code, "none")));
  a.answer.push_back(
      "Each released row covers at least the threshold's distinct units, counted inside the "
      "query.");
  a.evidence.push_back(
      {"refusals", "query.refused / template.refused / *.check.refused entries in audit.log"});
}

void Output(const Ctx& c, Answer& a) {
  a.answer.push_back(
      fmt::format("Outputs are the checked plan's columns only; rows under the threshold are "
                  "withheld and counted "
                  "({} withheld so far); results are sealed to each receiver's key and stored "
                  "sealed ({} result(s)).",
                  c.h.withheld_rows, Count(c.h, "query.run") + Count(c.h, "template.run")));
  a.evidence.push_back(
      {"results", "results/ID/meta.json (sealed) and query.run entries in audit.log"});
}

void OutputAccess(const Ctx& c, Answer& a) {
  for (const auto& d : c.spec.datasets) {
    a.answer.push_back(
        fmt::format("Results over {} may go to: {}.", d.name, Names(d.rule.receivers)));
  }
  a.answer.push_back(fmt::format("Parties with the receive_results ability: {}.",
                                 Names(PartiesWith(c.spec, "receive_results"))));
  a.answer.push_back(fmt::format("Results released so far, by receiver: {}.",
                                 CountsText(c.h.results_by_receiver, "none")));
  a.answer.push_back(fmt::format(
      "Result reads: {} allowed, {} refused.", Count(c.h, "result.get") + Count(c.h, "result.list"),
      Count(c.h, "result.get.refused") + Count(c.h, "result.list.refused")));
  a.evidence.push_back({"receivers", fmt::format("signed spec {}", c.spec.hash)});
}

void Storage(const Ctx& c, Answer& a) {
  a.answer.push_back(
      c.spec.retention_days > 0
          ? fmt::format("Retention: {} days from each contribution, then crypto-shredded "
                        "automatically (key deleted, then ciphertext).",
                        c.spec.retention_days)
          : "Retention: the spec sets none; data stays until disposed of.");
  for (const auto& v : room::DatasetViews(c.room, c.room.Info(), c.room.clock().NowUnix())) {
    if (v.stored) {
      a.answer.push_back(
          fmt::format("{} is stored{}.", v.declared->name,
                      v.retain_until.empty() ? "" : ", retained until " + v.retain_until));
    }
  }
  a.answer.push_back(c.h.disposals.empty()
                         ? "No disposals so far."
                         : fmt::format("Disposals so far: {}.", fmt::join(c.h.disposals, "; ")));
  a.answer.push_back(fmt::format("Erasure requests applied: {}; refused: {}.",
                                 Count(c.h, "dataset.forget"), Count(c.h, "forget.refused")));
  a.evidence.push_back({"retention", fmt::format("signed spec {}", c.spec.hash)});
  a.evidence.push_back({"disposals", "dataset.dispose entries in audit.log"});
}

void Breach(const Ctx& c, Answer& a) {
  a.answer.push_back(
      "The plan is docs/incident-response.md: `cleanroom audit report` to see who did what "
      "(probing "
      "bursts and off-hours activity flagged), revoke a party by a new spec version, rotate the "
      "room "
      "key, dispose of the data.");
  a.answer.push_back(
      fmt::format("The audit log is hash-chained and signed by the room: {} entries verified, head "
                  "{}; a changed, "
                  "removed or reordered entry is detected.",
                  c.entries, c.head));
  a.evidence.push_back({"audit log", fmt::format("audit.log, head {}", c.head)});
}

void CrossBorder(const Ctx& c, Answer& a) {
  a.answer.push_back(fmt::format("The spec places the room in region '{}'.", c.spec.region));
  a.answer.push_back("Data leaves the room only as results sealed to the receivers listed above.");
  a.evidence.push_back({"region", fmt::format("signed spec {}", c.spec.hash)});
}

void ProviderAudits(const Ctx& c, Answer& a) {
  a.answer.push_back(
      "Not evidenced by the room: certifications are about whoever operates it. What the room "
      "itself "
      "proves is its signed audit log (see the breach plan).");
  a.evidence.push_back({"audit log", fmt::format("audit.log, {} entries", c.entries)});
}

void SubjectRequests(const Ctx& c, Answer& a) {
  a.answer.push_back(fmt::format(
      "A dataset's owner erases one person with `cleanroom forget`: the room stores the dataset "
      "without "
      "that unit as a new version and crypto-shreds the old one. Applied so far: {}; refused: {}.",
      Count(c.h, "dataset.forget"), Count(c.h, "forget.refused")));
  a.evidence.push_back({"erasures", "dataset.forget / forget.refused entries in audit.log"});
}

void Regulation(const Ctx& c, Answer& a) {
  a.answer.push_back(fmt::format(
      "Rules change only by a new spec version that every party signs; this room's spec {} was "
      "activated {}.",
      c.spec.hash.substr(0, 16),
      c.room.Info().activated_at.empty() ? "not yet" : "at " + c.room.Info().activated_at));
  a.evidence.push_back({"activations", fmt::format("{} room.activate entries in audit.log",
                                                   Count(c.h, "room.activate"))});
}

void Contracts(const Ctx& c, Answer& a) {
  a.answer.push_back(
      fmt::format("The collaboration '{}' is the signed spec: every party signed its exact bytes "
                  "(hash {}); signed by {}.",
                  c.spec.collaboration, c.spec.hash, Names(c.room.Info().signed_by)));
  a.answer.push_back("Legal contracts beside it are outside what the room records.");
  a.evidence.push_back({"signatures", "state.json (sealed)"});
}

const std::map<std::string, Generator>& Generators() {
  static const std::map<std::string, Generator> g = {
      {"inputs", Inputs},
      {"encryption", Encryption},
      {"anonymisation", Anonymisation},
      {"aggregation", Aggregation},
      {"analysts", Analysts},
      {"individual_exposure", Exposure},
      {"output", Output},
      {"output_access", OutputAccess},
      {"storage_disposal", Storage},
      {"breach_plan", Breach},
      {"cross_border", CrossBorder},
      {"provider_audits", ProviderAudits},
      {"data_subject_requests", SubjectRequests},
      {"regulation_updates", Regulation},
      {"contracts", Contracts},
  };
  return g;
}

}  // namespace

Result<BuyerReport> BuildBuyerReport(const room::Room& room,
                                     const std::vector<nlohmann::json>& entries,
                                     const std::string& audit_head) {
  auto doc = nlohmann::json::parse(QuestionsDocument(), nullptr, false);
  if (!doc.is_object() || !doc.contains("questions") || !doc["questions"].is_array()) {
    return Fail(ErrorCode::INTERNAL, "the built-in question list does not parse");
  }
  BuyerReport rep;
  rep.collaboration = room.spec().collaboration;
  rep.spec_hash = room.spec().hash;
  rep.generated_at = room.clock().NowRfc3339();
  rep.audit_head = audit_head;
  rep.audit_entries = static_cast<int64_t>(entries.size());
  rep.source = doc.value("source", nlohmann::json::object());
  const History h = Read(entries);
  Ctx ctx{room, room.spec(), h, audit_head, rep.audit_entries};
  for (const auto& q : doc["questions"]) {
    Answer a;
    a.id = q.value("id", "");
    a.group = q.value("group", "");
    a.question = q.value("question", "");
    auto it = Generators().find(a.id);
    if (it == Generators().end()) {
      return Fail(ErrorCode::INTERNAL, "no answer for built-in question '{}'", a.id);
    }
    it->second(ctx, a);
    rep.answers.push_back(std::move(a));
  }
  return rep;
}

nlohmann::ordered_json ToJson(const BuyerReport& r) {
  nlohmann::ordered_json j;
  j["collaboration"] = r.collaboration;
  j["spec_sha256"] = r.spec_hash;
  j["generated_at"] = r.generated_at;
  j["audit"] = {{"entries", r.audit_entries}, {"head", r.audit_head}};
  j["questions_source"] = r.source;
  j["answers"] = nlohmann::ordered_json::array();
  for (const auto& a : r.answers) {
    nlohmann::ordered_json e;
    e["id"] = a.id;
    e["group"] = a.group;
    e["question"] = a.question;
    e["answer"] = a.answer;
    e["evidence"] = nlohmann::ordered_json::array();
    for (const auto& [what, where] : a.evidence)
      e["evidence"].push_back({{"what", what}, {"where", where}});
    j["answers"].push_back(std::move(e));
  }
  return j;
}

std::string ToText(const BuyerReport& r) {
  std::string out = fmt::format("collaboration {} (spec {}), generated {}\n", r.collaboration,
                                r.spec_hash, r.generated_at);
  int n = 0;
  for (const auto& a : r.answers) {
    out += fmt::format("\n{}. {}\n", ++n, a.question);
    for (const auto& s : a.answer) out += "   " + s + "\n";
    for (const auto& [what, where] : a.evidence)
      out += fmt::format("   evidence: {}: {}\n", what, where);
  }
  return out;
}

std::string ToHtml(const BuyerReport& r) {
  std::string body;
  for (const std::string group : {"room", "provider"}) {
    body += group == "room" ? "<h2>The room</h2>\n" : "<h2>The provider</h2>\n";
    for (const auto& a : r.answers) {
      if (a.group != group) continue;
      body += fmt::format("<section class=\"answer\" id=\"{}\"><h3 class=\"q\">{}</h3>\n",
                          Escape(a.id), Escape(a.question));
      for (const auto& s : a.answer) body += "<p>" + Escape(s) + "</p>\n";
      body += "<table><tr><th>evidence</th><th>recorded in</th></tr>\n";
      for (const auto& [what, where] : a.evidence) {
        body += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", Escape(what), Escape(where));
      }
      body += "</table></section>\n";
    }
  }
  body += fmt::format("<h2>Source of the questions</h2><p>{} ({}), {}.</p>\n",
                      Escape(r.source.value("title", "")), Escape(r.source.value("section", "")),
                      Escape(r.source.value("note", "")));
  return Page(
      "The buyer's questions answered",
      fmt::format("collaboration {} - spec {} - audit log {} entries, head {} - generated {}",
                  r.collaboration, r.spec_hash, r.audit_entries, r.audit_head, r.generated_at),
      body);
}

}  // namespace cr::report
