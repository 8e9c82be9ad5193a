#include "report/audit_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <optional>

#include "report/html.h"

namespace cr::report {
namespace {

bool OffHours(long long t, const AuditReportOptions& o) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  if (tm.tm_wday == 0 || tm.tm_wday == 6) return true;
  return tm.tm_hour < o.work_start_hour || tm.tm_hour >= o.work_end_hour;
}

// Counts one entry into its actor's activity; false when its kind is unknown.
bool Count(ActorActivity& a, const std::string& event, const nlohmann::json& d) {
  auto code = [&]() { return d.is_object() ? d.value("code", std::string("UNKNOWN")) : "UNKNOWN"; };
  if (event == "query.run" || event == "template.run") {
    ++a.queries_run;
    if (d.is_object() && d.contains("epsilon_spent") && d["epsilon_spent"].is_number()) {
      a.epsilon_spent += d["epsilon_spent"].get<double>();
    }
  } else if (event == "query.refused" || event == "template.refused") {
    ++a.queries_refused;
    ++a.refused_by_code[code()];
  } else if (event == "query.check" || event == "template.check") {
    ++a.checks;
  } else if (event == "query.check.refused" || event == "template.check.refused") {
    ++a.checks_refused;
    ++a.refused_by_code[code()];
  } else if (event == "request.refused") {
    const std::string c = code();
    if (c.starts_with("AUTH_")) {
      ++a.failed_authentications;
    } else {
      ++a.requests_refused[c];
    }
  } else if (event == "result.get" || event == "result.list") {
    ++a.results_read;
  } else if (event == "result.get.refused" || event == "result.list.refused") {
    ++a.results_refused;
  } else if (event == "dataset.ingest") {
    ++a.ingests;
  } else if (event == "ingest.refused") {
    ++a.ingests_refused;
  } else if (event == "dataset.dispose") {
    ++a.disposals;
  } else if (event == "dataset.dispose.refused") {
    ++a.disposals_refused;
  } else if (event == "dataset.forget") {
    ++a.erasures;
  } else if (event == "forget.refused") {
    ++a.erasures_refused;
  } else if (event == "room.init" || event == "room.activate" || event == "room.update" ||
             event.starts_with("spec.") ||
             (event.find("version") != std::string::npos && !event.ends_with(".refused"))) {
    ++a.version_changes;
  } else if (event == "room.protect" || event == "room.backup" || event == "room.restore" ||
             event == "catalog.recovered" || event == "room.update.recovered" ||
             event.starts_with("room.rotate")) {
    ++a.room_operations;
  } else {
    return false;
  }
  return true;
}

nlohmann::ordered_json Counts(const std::map<std::string, int64_t>& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

std::string Eps(double e) { return fmt::format("{:.4g}", e); }

}  // namespace

AuditReport BuildAuditReport(const std::vector<nlohmann::json>& entries,
                             const AuditReportOptions& o) {
  AuditReport rep;
  rep.options = o;
  rep.log_entries = static_cast<int64_t>(entries.size());
  std::map<std::string, ActorActivity> by_actor;
  std::map<std::string, std::vector<std::pair<long long, std::string>>> refusals;  // actor -> times
  std::map<std::string, ReportFlag> off_hours;
  for (const auto& e : entries) {
    if (!e.is_object()) continue;
    const std::string time = e.value("time", "");
    const long long t = ParseTime(time);
    if (o.since_unix >= 0 && t < o.since_unix) continue;
    const std::string actor = e.value("actor", "");
    const std::string event = e.value("event", "");
    ActorActivity& a = by_actor[actor];
    a.actor = actor;
    ++a.entries;
    ++rep.entries;
    if (a.first_at.empty()) a.first_at = time;
    a.last_at = time;
    if (!Count(a, event, e.value("details", nlohmann::json::object()))) ++a.other[event];
    if (event.ends_with(".refused") && t >= 0) refusals[actor].push_back({t, time});
    // The room's own work (retention, recovery) runs whenever a command opens it.
    if (actor != "room" && t >= 0 && OffHours(t, o)) {
      ++a.off_hours;
      ReportFlag& f = off_hours[actor];
      if (f.count == 0) f = {"off_hours", actor, time, time, 0};
      f.to = time;
      ++f.count;
    }
  }
  for (auto& [actor, a] : by_actor) rep.actors.push_back(std::move(a));
  // Bursts: windows of burst_window_seconds holding burst_refusals or more;
  // overlapping windows are one burst.
  for (const auto& [actor, times] : refusals) {
    std::optional<ReportFlag> cur;
    size_t j = 0;
    for (size_t i = 0; i < times.size(); ++i) {
      while (times[i].first - times[j].first > o.burst_window_seconds) ++j;
      if (static_cast<int>(i - j + 1) < o.burst_refusals) continue;
      if (cur && ParseTime(cur->to) >= times[j].first) {
        cur->to = times[i].second;
      } else {
        if (cur) rep.flags.push_back(*cur);
        cur = ReportFlag{"probing", actor, times[j].second, times[i].second, 0};
      }
    }
    if (cur) rep.flags.push_back(*cur);
  }
  for (auto& f : rep.flags) {
    const long long from = ParseTime(f.from), to = ParseTime(f.to);
    for (const auto& [t, s] : refusals[f.actor]) f.count += (t >= from && t <= to) ? 1 : 0;
  }
  for (auto& [actor, f] : off_hours) rep.flags.push_back(f);
  return rep;
}

nlohmann::ordered_json ToJson(const AuditReport& r) {
  nlohmann::ordered_json j;
  j["since"] = r.since.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.since);
  j["entries"] = r.entries;
  j["log_entries"] = r.log_entries;
  j["head"] = r.head;
  j["thresholds"] = {
      {"burst_refusals", r.options.burst_refusals},
      {"burst_window_seconds", r.options.burst_window_seconds},
      {"work_hours_utc", fmt::format("{:02}:00-{:02}:00 Mon-Fri", r.options.work_start_hour,
                                     r.options.work_end_hour)}};
  j["parties"] = nlohmann::ordered_json::array();
  for (const auto& a : r.actors) {
    nlohmann::ordered_json p;
    p["actor"] = a.actor;
    p["entries"] = a.entries;
    p["queries_run"] = a.queries_run;
    p["queries_refused"] = a.queries_refused;
    p["checks"] = a.checks;
    p["checks_refused"] = a.checks_refused;
    p["refused_by_code"] = Counts(a.refused_by_code);
    p["epsilon_spent"] = a.epsilon_spent;
    p["failed_authentications"] = a.failed_authentications;
    p["requests_refused"] = Counts(a.requests_refused);
    p["results_read"] = a.results_read;
    p["results_refused"] = a.results_refused;
    p["ingests"] = a.ingests;
    p["ingests_refused"] = a.ingests_refused;
    p["disposals"] = a.disposals;
    p["disposals_refused"] = a.disposals_refused;
    p["erasures"] = a.erasures;
    p["erasures_refused"] = a.erasures_refused;
    p["version_changes"] = a.version_changes;
    p["room_operations"] = a.room_operations;
    p["off_hours"] = a.off_hours;
    p["other"] = Counts(a.other);
    p["first_at"] = a.first_at;
    p["last_at"] = a.last_at;
    j["parties"].push_back(std::move(p));
  }
  j["flags"] = nlohmann::ordered_json::array();
  for (const auto& f : r.flags) {
    j["flags"].push_back(
        {{"kind", f.kind}, {"actor", f.actor}, {"from", f.from}, {"to", f.to}, {"count", f.count}});
  }
  return j;
}

namespace {

std::string FlagText(const ReportFlag& f, const AuditReportOptions& o) {
  if (f.kind == "probing") {
    return fmt::format("probing: {} had {} refusals between {} and {} (threshold {} within {} s)",
                       f.actor, f.count, f.from, f.to, o.burst_refusals, o.burst_window_seconds);
  }
  return fmt::format(
      "off hours: {} acted {} time(s) outside {:02}:00-{:02}:00 UTC Mon-Fri ({} .. {})", f.actor,
      f.count, o.work_start_hour, o.work_end_hour, f.from, f.to);
}

}  // namespace

std::string ToText(const AuditReport& r) {
  std::string out =
      fmt::format("incident report: {} of {} audit entries{}; log verified, head {}\n", r.entries,
                  r.log_entries, r.since.empty() ? "" : " since " + r.since, r.head);
  out += fmt::format("{:<16} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7}  {}\n", "party",
                     "queries", "refused", "epsilon", "authfail", "ingests", "disposed", "versions",
                     "erasures", "other", "refused by code");
  for (const auto& a : r.actors) {
    int64_t other = 0;
    for (const auto& [k, v] : a.other) other += v;
    out += fmt::format("{:<16} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7}  {}\n",
                       a.actor, a.queries_run, a.queries_refused + a.checks_refused,
                       Eps(a.epsilon_spent), a.failed_authentications, a.ingests, a.disposals,
                       a.version_changes, a.erasures, other, CountsText(a.refused_by_code, "-"));
  }
  if (r.flags.empty()) out += "no flags\n";
  for (const auto& f : r.flags) out += "FLAG " + FlagText(f, r.options) + "\n";
  return out;
}

std::string ToHtml(const AuditReport& r, const std::string& room_label) {
  std::string body;
  body += "<h2>Flags</h2>\n";
  if (r.flags.empty()) body += "<p class=\"ok\">No probing bursts and no off-hours activity.</p>\n";
  for (const auto& f : r.flags) {
    body += fmt::format("<div class=\"flag\" data-kind=\"{}\">{}</div>\n", Escape(f.kind),
                        Escape(FlagText(f, r.options)));
  }
  body +=
      "<h2>Activity by party</h2>\n<div class=\"wide\"><table "
      "id=\"activity\"><tr><th>party</th><th>queries run</th>"
      "<th>queries refused</th><th>refused by code</th><th>epsilon spent</th>"
      "<th>failed authentications</th><th>other refused requests</th><th>ingests (refused)</th>"
      "<th>disposals (refused)</th><th>erasures (refused)</th><th>version changes</th>"
      "<th>off hours</th><th>other events</th><th>first</th><th>last</th></tr>\n";
  for (const auto& a : r.actors) {
    body += fmt::format(
        "<tr data-actor=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td><td "
        "class=\"n\">{2}</td><td>{3}</td>"
        "<td class=\"n\">{4}</td><td class=\"n\">{5}</td><td>{6}</td><td class=\"n\">{7} ({8})</td>"
        "<td class=\"n\">{9} ({10})</td><td class=\"n\">{11} ({12})</td><td class=\"n\">{13}</td>"
        "<td class=\"n\">{14}</td><td>{15}</td><td>{16}</td><td>{17}</td></tr>\n",
        Escape(a.actor), a.queries_run, a.queries_refused + a.checks_refused,
        Escape(CountsText(a.refused_by_code, "-")), Escape(Eps(a.epsilon_spent)),
        a.failed_authentications, Escape(CountsText(a.requests_refused, "-")), a.ingests,
        a.ingests_refused, a.disposals, a.disposals_refused, a.erasures, a.erasures_refused,
        a.version_changes, a.off_hours, Escape(CountsText(a.other, "-")), Escape(a.first_at),
        Escape(a.last_at));
  }
  body += "</table></div>\n";
  body += fmt::format(
      "<h2>Thresholds</h2><p>Probing: {} or more refusals by one party within {} seconds. Off "
      "hours: "
      "outside {:02}:00-{:02}:00 UTC, Monday to Friday, or at weekends. The room's own entries "
      "(retention, recovery) are not counted as off hours. See docs/incident-response.md.</p>\n",
      r.options.burst_refusals, r.options.burst_window_seconds, r.options.work_start_hour,
      r.options.work_end_hour);
  return Page(
      "Incident report",
      fmt::format("{}: {} of {} audit entries{}; the log's chain and signatures verified (head {})",
                  room_label, r.entries, r.log_entries, r.since.empty() ? "" : " since " + r.since,
                  r.head),
      body);
}

}  // namespace cr::report
