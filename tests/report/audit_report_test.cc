// The incident report's counting and flags over crafted entries: exact
// thresholds, unknown or malformed records counted, never an error.
#include "report/audit_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "report/html.h"

namespace cr::report {
namespace {

using nlohmann::json;

// 2026-12-01T10:00:00Z, a Tuesday.
constexpr long long kT = 1796119200;

json Entry(long long t, const std::string& actor, const std::string& event,
           json details = json::object()) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {{"time", buf}, {"actor", actor}, {"event", event}, {"details", details}};
}

const ActorActivity& Of(const AuditReport& r, const std::string& actor) {
  for (const auto& a : r.actors) {
    if (a.actor == actor) return a;
  }
  static ActorActivity none;
  ADD_FAILURE() << "no activity for " << actor;
  return none;
}

int Flags(const AuditReport& r, const std::string& kind) {
  int n = 0;
  for (const auto& f : r.flags) n += f.kind == kind;
  return n;
}

TEST(AuditReportTest, FourRefusalsInTheWindowAreNotABurstFiveAre) {
  std::vector<json> e;
  for (int i = 0; i < 4; ++i)
    e.push_back(Entry(kT + 100 * i, "acme", "query.refused", {{"code", "QUERY_REFUSED"}}));
  EXPECT_EQ(Flags(BuildAuditReport(e, {}), "probing"), 0);
  e.push_back(Entry(kT + 600, "acme", "query.refused", {{"code", "QUERY_REFUSED"}}));
  auto r = BuildAuditReport(e, {});
  ASSERT_EQ(Flags(r, "probing"), 1);
  EXPECT_EQ(r.flags[0].count, 5);
  EXPECT_EQ(r.flags[0].from, "2026-12-01T10:00:00Z");
  EXPECT_EQ(r.flags[0].to, "2026-12-01T10:10:00Z");
  // One second more and the fifth falls outside the first one's window.
  e.back() = Entry(kT + 601, "acme", "query.refused", {{"code", "QUERY_REFUSED"}});
  EXPECT_EQ(Flags(BuildAuditReport(e, {}), "probing"), 0);
}

TEST(AuditReportTest, OverlappingWindowsAreOneBurstAndSeparateOnesTwo) {
  std::vector<json> e;
  for (int i = 0; i < 12; ++i)
    e.push_back(Entry(kT + 60 * i, "acme", "request.refused", {{"code", "AUTH_BAD_SIGNATURE"}}));
  for (int i = 0; i < 5; ++i)
    e.push_back(Entry(kT + 86400 + i, "acme", "template.refused", {{"code", "THRESHOLD_NOT_MET"}}));
  auto r = BuildAuditReport(e, {});
  ASSERT_EQ(Flags(r, "probing"), 2);
  EXPECT_EQ(r.flags[0].count, 12);
  EXPECT_EQ(r.flags[1].count, 5);
  EXPECT_EQ(Of(r, "acme").failed_authentications, 12);
  EXPECT_EQ(Of(r, "acme").queries_refused, 5);
  EXPECT_EQ(Of(r, "acme").refused_by_code.at("THRESHOLD_NOT_MET"), 5);
  // Other refusers are counted apart.
  e.push_back(Entry(kT + 30, "newsco", "query.refused", {{"code", "QUERY_REFUSED"}}));
  EXPECT_EQ(BuildAuditReport(e, {}).flags[0].count, 12);
}

TEST(AuditReportTest, OffHoursWeekendsAndTheRoomsOwnWork) {
  std::vector<json> e = {
      Entry(kT, "acme", "query.run"),                        // Tuesday 10:00
      Entry(kT - 4 * 3600, "acme", "query.run"),             // Tuesday 06:00
      Entry(kT + 9 * 3600, "newsco", "dataset.ingest"),      // Tuesday 19:00
      Entry(kT + 4 * 86400, "operator", "dataset.dispose"),  // Saturday 10:00
      Entry(kT - 8 * 3600, "room", "dataset.dispose"),       // retention at 02:00: not flagged
  };
  auto r = BuildAuditReport(e, {});
  EXPECT_EQ(Of(r, "acme").off_hours, 1);
  EXPECT_EQ(Of(r, "newsco").off_hours, 1);
  EXPECT_EQ(Of(r, "operator").off_hours, 1);
  EXPECT_EQ(Of(r, "room").off_hours, 0);
  EXPECT_EQ(Flags(r, "off_hours"), 3);
  AuditReportOptions wide;
  wide.work_start_hour = 6;
  wide.work_end_hour = 20;
  EXPECT_EQ(Of(BuildAuditReport(e, wide), "acme").off_hours, 0);
}

TEST(AuditReportTest, UnknownAndMalformedRecordsAreCountedNotErrors) {
  std::vector<json> e = {
      Entry(kT, "acme", "pool.contribution", {{"x", 1}}),
      Entry(kT, "acme", "difference.withheld"),
      Entry(kT, "acme", "query.refused", json::array()),             // details not an object
      Entry(kT, "acme", "query.run", {{"epsilon_spent", "a lot"}}),  // not a number: not added
      Entry(kT, "acme", "query.run", {{"epsilon_spent", 0.25}}),
      Entry(kT, "operator", "room.update"),
      json("not an object"),
      {{"event", "query.run"}},  // no time or actor
  };
  auto r = BuildAuditReport(e, {});
  const auto& a = Of(r, "acme");
  EXPECT_EQ(a.other.at("pool.contribution"), 1);
  EXPECT_EQ(a.other.at("difference.withheld"), 1);
  EXPECT_EQ(a.queries_refused, 1);
  EXPECT_EQ(a.refused_by_code.at("UNKNOWN"), 1);
  EXPECT_EQ(a.queries_run, 2);
  EXPECT_DOUBLE_EQ(a.epsilon_spent, 0.25);
  EXPECT_EQ(Of(r, "operator").version_changes, 1);
  EXPECT_EQ(Of(r, "").queries_run, 1);
  EXPECT_EQ(r.entries, 7);
  EXPECT_EQ(r.log_entries, 8);
  EXPECT_EQ(ToJson(r)["parties"].size(), 3u);
}

TEST(AuditReportTest, SinceLeavesOutEarlierEntries) {
  std::vector<json> e = {Entry(kT - 1, "acme", "query.run"), Entry(kT, "acme", "query.run")};
  AuditReportOptions o;
  o.since_unix = ParseTime("2026-12-01T10:00:00Z");
  auto r = BuildAuditReport(e, o);
  EXPECT_EQ(Of(r, "acme").queries_run, 1);
  EXPECT_EQ(ParseTime("2026-12-01"), kT - 10 * 3600);
  for (const char* bad :
       {"", "yesterday", "2026-13-01", "2026-12-01T10:00:00", "2026-12-01 10:00:00Z"}) {
    EXPECT_EQ(ParseTime(bad), -1) << bad;
  }
}

TEST(AuditReportTest, HtmlEscapesEveryNameAndLoadsNothing) {
  std::vector<json> e = {Entry(kT, "<script>alert(1)</script>", "x.<b>")};
  const std::string html = ToHtml(BuildAuditReport(e, {}), "room <dir>");
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
}

}  // namespace
}  // namespace cr::report
