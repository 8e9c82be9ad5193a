// `cleanroom query`, `cleanroom run` (templates) and `cleanroom results get`.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <regex>

#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "cli/remote.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "query/service.h"
#include "results/results.h"
#include "room/room.h"

namespace cr::cli {
namespace {

struct Caller {
  room::Room room;
  crypto::Identity key;
};

Result<Caller> OpenAs(const Globals& g, std::string_view command) {
  if (g.room.empty()) return Fail(ErrorCode::USAGE, "{} needs --room DIR", command);
  if (g.key.empty()) return Fail(ErrorCode::USAGE, "{} needs --key FILE", command);
  CR_ASSIGN(auto key, crypto::Identity::Load(g.key));
  CR_ASSIGN(auto room, room::Room::Open(g.room));
  return Caller{std::move(room), std::move(key)};
}

// The operator's limits: CLEANROOM_QUERY_TIMEOUT (seconds, 0 for none;
// default 600) and CLEANROOM_QUERY_MEMORY (DuckDB's memory limit for a query,
// such as 4GB or 512MiB; default DuckDB's 80% of RAM). A value that does not
// parse is a usage error, never ignored.
Result<query::RunOptions> Limits() {
  query::RunOptions o;
  if (const char* env = std::getenv("CLEANROOM_QUERY_TIMEOUT")) {
    // from_chars: no locale, no leading blanks, no hex; the whole value must parse.
    double v = -1;
    const char* end = env + std::strlen(env);
    auto [ptr, ec] = std::from_chars(env, end, v, std::chars_format::fixed);
    if (ec != std::errc() || ptr != end || !(v >= 0) || v > 1e7) {
      return Fail(ErrorCode::USAGE,
                  "CLEANROOM_QUERY_TIMEOUT must be a number of seconds (0 for no limit)");
    }
    o.timeout_seconds = v;
  }
  if (const char* env = std::getenv("CLEANROOM_QUERY_MEMORY")) {
    static const std::regex kSize(R"(([1-9][0-9]{0,8}) ?(KB|MB|GB|TB|KiB|MiB|GiB|TiB))");
    if (!std::regex_match(env, kSize)) {
      return Fail(ErrorCode::USAGE,
                  "CLEANROOM_QUERY_MEMORY must be a size such as 4GB or 512MiB");
    }
    o.engine.memory_limit = env;
  }
  return o;
}

// The one SQL source of `query`: --sql TEXT, --sql - (standard input) or
// --sql-file FILE. USAGE for none or two; FILE_UNREADABLE for a file that
// cannot be read.
Result<std::string> ReadSql(const CLI::Option* sql_opt, const std::string& sql,
                            const CLI::Option* file_opt, const std::string& file) {
  const bool inline_sql = sql_opt->count() > 0, from_file = file_opt->count() > 0;
  if (inline_sql == from_file) {
    return Fail(ErrorCode::USAGE, "query needs exactly one of --sql TEXT, --sql - (standard "
                                  "input) or --sql-file FILE");
  }
  if (from_file) return ReadFile(file);
  if (sql != "-") return sql;
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (std::cin.bad()) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read the SQL from standard input");
  return text;
}

// --receivers a,b as names (the service checks each is allowed). Split here,
// not by CLI11, which drops empty items: "a,,b" is a typo to report.
Result<std::vector<std::string>> ParseReceivers(const CLI::Option* opt, const std::string& text) {
  std::vector<std::string> names;
  if (opt->count() == 0) return names;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.empty()) {
      return Fail(ErrorCode::USAGE, "--receivers takes party names separated by commas");
    }
    names.push_back(std::move(name));
    if (comma == std::string::npos) return names;
    start = comma + 1;
  }
}

// --epsilon E: a finite number greater than 0, the whole of the query's cost.
// The service checks it against the spec's caps.
Result<std::optional<double>> ParseEpsilon(const CLI::Option* opt, const std::string& text) {
  if (opt->count() == 0) return std::optional<double>();
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v, std::chars_format::general);
  if (ec != std::errc() || ptr != end || !(v > 0) || !std::isfinite(v)) {
    return Fail(ErrorCode::USAGE, "--epsilon must be a number greater than 0, such as 0.5");
  }
  return std::optional<double>(v);
}

// Prints the result to a receiver, or only its id (and who holds it) to others.
// Receivers residency withheld the result from are named, with the reason:
// in the JSON object, or as lines after a table (on stderr beside CSV).
void PrintOutcome(const Globals& g, const query::Outcome& o) {
  auto print_withheld = [&](FILE* out) {
    for (const auto& w : o.withheld_receivers) {
      fmt::print(out, "not sealed to {}: {}\n", w.party, w.reason);
    }
  };
  if (o.caller_receives) {
    if (g.format == "json" && !o.withheld_receivers.empty()) {
      auto j = nlohmann::ordered_json::parse(results::Render(o.result, g.format));
      j["withheld_receivers"] = query::WithheldJson(o.withheld_receivers);
      fmt::print("{}\n", j.dump());
      return;
    }
    fmt::print("{}", results::Render(o.result, g.format));
    if (g.format == "csv") fmt::print(stderr, "result {}\n", o.result.result_id);
    if (g.format != "json") print_withheld(g.format == "csv" ? stderr : stdout);
    return;
  }
  if (g.format == "json") {
    nlohmann::json j = {{"result_id", o.result.result_id}, {"receivers", o.receivers}};
    if (!o.withheld_receivers.empty()) j["withheld_receivers"] = query::WithheldJson(o.withheld_receivers);
    PrintJson(j);
    return;
  }
  print_withheld(g.format == "csv" ? stderr : stdout);
  if (g.format == "csv") {
    PrintCsv({"result_id", "receivers"}, {{o.result.result_id, CellText(o.receivers)}});
    return;
  }
  fmt::print("result {} sealed to {}; {} is not one of its receivers\n",
             o.result.result_id, fmt::join(o.receivers, ", "), o.caller);
}

}  // namespace

void RegisterQuery(CLI::App& root, Globals& g, Registry& r) {
  const Uses kUses{.room = true, .key = true, .server = true, .formats = {"table", "csv", "json"}};
  auto* q = root.add_subcommand("query", "run an ad-hoc SQL query under the collaboration's rules");
  static std::string sql, sql_file;
  static std::string receivers;
  auto* sql_opt = q->add_option("--sql", sql, "one SELECT statement, or - to read it from standard input");
  auto* file_opt = q->add_option("--sql-file", sql_file, "file holding the SELECT statement");
  const char* kReceiversHelp =
      "parties to seal the result to, comma-separated (default: all the rules allow)";
  auto* receivers_opt = q->add_option("--receivers", receivers, kReceiversHelp);
  const char* kEpsilonHelp =
      "answer with differential privacy at this cost, charged to the room's budget";
  static std::string epsilon;
  auto* epsilon_opt = q->add_option("--epsilon", epsilon, kEpsilonHelp);
  static bool benchmark = false;
  q->add_flag("--benchmark", benchmark,
              "over a pooled dataset: each contributor receives its own figures beside the "
              "peers' mean, median and quartiles");
  r.Add(q, kUses, [&g, sql_opt, file_opt, receivers_opt, epsilon_opt]() -> Status {
    CR_ASSIGN(auto narrowed, ParseReceivers(receivers_opt, receivers));
    CR_ASSIGN(auto eps, ParseEpsilon(epsilon_opt, epsilon));
    CR_ASSIGN(auto limits, Limits());
    CR_ASSIGN(std::string text, ReadSql(sql_opt, sql, file_opt, sql_file));
    CR_ASSIGN(bool remote, Remote(g, "query"));
    if (remote) {
      CR_ASSIGN(auto c, ConnectServer(g, "query"));
      nlohmann::json body = {{"sql", text}};
      if (!narrowed.empty()) body["receivers"] = narrowed;
      if (eps) body["epsilon"] = *eps;
      if (benchmark) body["benchmark"] = true;
      CR_ASSIGN(auto o, RemoteOutcome(c, c.PostJson("/v1/query", body)));
      PrintOutcome(g, o);
      return Ok();
    }
    CR_ASSIGN(auto c, OpenAs(g, "query"));
    query::Request req;
    req.sql = std::move(text);
    req.receivers = std::move(narrowed);
    req.epsilon = eps;
    req.benchmark = benchmark;
    CR_ASSIGN(auto o, query::Run(c.room, c.key, req, limits));
    PrintOutcome(g, o);
    return Ok();
  });

  auto* run = root.add_subcommand("run", "run an approved template of the spec");
  static std::string tmpl;
  static std::vector<std::string> params;
  run->add_option("--template", tmpl, "template name")->required();
  run->add_option("--param", params, "parameter as NAME=VALUE (repeatable)");
  static std::string run_receivers;
  auto* run_receivers_opt = run->add_option("--receivers", run_receivers, kReceiversHelp);
  static std::string run_epsilon;
  auto* run_epsilon_opt = run->add_option("--epsilon", run_epsilon, kEpsilonHelp);
  r.Add(run, kUses, [&g, run_receivers_opt, run_epsilon_opt]() -> Status {
    query::Request req;
    CR_ASSIGN(req.receivers, ParseReceivers(run_receivers_opt, run_receivers));
    CR_ASSIGN(req.epsilon, ParseEpsilon(run_epsilon_opt, run_epsilon));
    req.template_name = tmpl;
    for (const auto& p : params) {
      auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Fail(ErrorCode::BAD_INPUT, "--param must be NAME=VALUE");
      }
      if (!req.params.emplace(p.substr(0, eq), p.substr(eq + 1)).second) {
        return Fail(ErrorCode::BAD_INPUT, "parameter {} given twice", p.substr(0, eq));
      }
    }
    CR_ASSIGN(bool remote, Remote(g, "run"));
    Result<query::Outcome> ran;
    if (remote) {
      CR_ASSIGN(auto c, ConnectServer(g, "run"));
      nlohmann::json body = {{"params", req.params}};
      if (!req.receivers.empty()) body["receivers"] = req.receivers;
      if (req.epsilon) body["epsilon"] = *req.epsilon;
      ran = RemoteOutcome(
          c, c.PostJson("/v1/templates/" + PathSegment(req.template_name) + "/run", body));
    } else {
      CR_ASSIGN(auto limits, Limits());
      CR_ASSIGN(auto c, OpenAs(g, "run"));
      ran = query::Run(c.room, c.key, req, limits);
    }
    if (!ran && ran.error().message.find("needs the parameter") != std::string::npos) {
      ran.error().message += "; give it as --param NAME=VALUE";  // the library names no flags
    }
    CR_ASSIGN(auto o, std::move(ran));
    PrintOutcome(g, o);
    return Ok();
  });

  auto* res = root.add_subcommand("results", "sealed query results");
  res->require_subcommand(1);
  auto* list = res->add_subcommand("list", "results sealed to the caller (ids, datasets, counts)");
  r.Add(list, kUses, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "results list"));
    std::vector<nlohmann::json> metas;
    if (remote) {
      CR_ASSIGN(auto c, ConnectServer(g, "results list"));
      CR_ASSIGN(auto answer, c.GetJson("/v1/results"));
      if (!answer.is_object() || !answer.contains("results") || !answer["results"].is_array()) {
        return Fail(ErrorCode::INTERNAL, "the server's answer lists no results");
      }
      metas = answer["results"].get<std::vector<nlohmann::json>>();
    } else {
      CR_ASSIGN(auto c, OpenAs(g, "results list"));
      CR_ASSIGN(metas, query::ListResults(c.room, c.key));
    }
    auto field = [](const nlohmann::json& m, const char* k) {
      return m.contains(k) ? m[k] : nlohmann::json(nullptr);
    };
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& m : metas) {
      arr.push_back({{"result_id", field(m, "result_id")}, {"created_at", field(m, "created_at")},
                     {"requested_by", field(m, "requested_by")}, {"template", field(m, "template")},
                     {"datasets", field(m, "datasets")}, {"columns", field(m, "columns")},
                     {"released_rows", field(m, "released_rows")},
                     {"withheld_rows", field(m, "withheld_rows")}});
    }
    if (g.format == "json") {
      PrintJson(arr);
      return Ok();
    }
    if (g.format == "csv") {
      std::vector<std::vector<std::string>> rows;
      for (const auto& m : arr) {
        rows.push_back({CellText(m["result_id"]), CellText(m["created_at"]),
                        CellText(m["requested_by"]), CellText(m["datasets"]),
                        CellText(m["released_rows"]), CellText(m["withheld_rows"])});
      }
      PrintCsv({"result_id", "created_at", "requested_by", "datasets", "released_rows",
                "withheld_rows"},
               rows);
      return Ok();
    }
    for (const auto& m : arr) {
      const auto& released = m["released_rows"];
      const auto& withheld = m["withheld_rows"];
      fmt::print("{}  {}  by {}  over {}  {} released{}\n", CellText(m["result_id"]),
                 CellText(m["created_at"]), CellText(m["requested_by"]), CellText(m["datasets"]),
                 Counted(released.is_number_integer() ? released.get<int64_t>() : 0, "row"),
                 WithheldClause(withheld.is_number_integer()
                                    ? std::optional<int64_t>(withheld.get<int64_t>())
                                    : std::nullopt));
    }
    if (arr.empty()) fmt::print("no result is sealed to this party\n");
    return Ok();
  });

  auto* get = res->add_subcommand("get", "decrypt a result sealed to the caller");
  static std::string id;
  get->add_option("--id", id, "result id")->required();
  r.Add(get, kUses, [&g]() -> Status {
    CR_ASSIGN(bool remote, Remote(g, "results get"));
    results::ResultSet rs;
    if (remote) {
      CR_ASSIGN(auto c, ConnectServer(g, "results get"));
      CR_ASSIGN(auto answer, c.GetJson("/v1/results/" + PathSegment(id)));
      if (!answer.is_object() || !answer.contains("result_id") || answer["result_id"] != id) {
        return Fail(ErrorCode::TAMPERED, "the server answered with another result than {}",
                    results::ValidId(id) ? id : std::string("the one asked for"));
      }
      CR_ASSIGN(rs, OpenSealedAnswer(c, answer));
    } else {
      CR_ASSIGN(auto c, OpenAs(g, "results get"));
      CR_ASSIGN(rs, query::GetResult(c.room, c.key, id));
    }
    fmt::print("{}", results::Render(rs, g.format));
    return Ok();
  });
}

}  // namespace cr::cli
