// `cleanroom query`, `cleanroom run` (templates) and `cleanroom results get`.
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <regex>

#include <fmt/core.h>

#include "cli/cli.h"
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

// Prints the result to a receiver, or only its id (and who holds it) to others.
void PrintOutcome(const Globals& g, const query::Outcome& o) {
  if (o.caller_receives) {
    fmt::print("{}", results::Render(o.result, g.format));
    if (g.format == "csv") fmt::print(stderr, "result {}\n", o.result.result_id);
    return;
  }
  if (g.format == "json") {
    nlohmann::json j = {{"result_id", o.result.result_id}, {"receivers", o.receivers}};
    fmt::print("{}\n", j.dump());
    return;
  }
  fmt::print("result {} sealed to {}; {} is not a receiver of these datasets\n",
             o.result.result_id, fmt::join(o.receivers, ", "), o.caller);
}

}  // namespace

void RegisterQuery(CLI::App& root, Globals& g, Registry& r) {
  auto* q = root.add_subcommand("query", "run an ad-hoc SQL query under the collaboration's rules");
  static std::string sql;
  q->add_option("--sql", sql, "one SELECT statement")->required();
  r.Add(q, [&g]() -> Status {
    CR_ASSIGN(auto limits, Limits());
    CR_ASSIGN(auto c, OpenAs(g, "query"));
    query::Request req;
    req.sql = sql;
    CR_ASSIGN(auto o, query::Run(c.room, c.key, req, limits));
    PrintOutcome(g, o);
    return Ok();
  });

  auto* run = root.add_subcommand("run", "run an approved template of the spec");
  static std::string tmpl;
  static std::vector<std::string> params;
  run->add_option("--template", tmpl, "template name")->required();
  run->add_option("--param", params, "parameter as NAME=VALUE (repeatable)");
  r.Add(run, [&g]() -> Status {
    query::Request req;
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
    CR_ASSIGN(auto limits, Limits());
    CR_ASSIGN(auto c, OpenAs(g, "run"));
    CR_ASSIGN(auto o, query::Run(c.room, c.key, req, limits));
    PrintOutcome(g, o);
    return Ok();
  });

  auto* res = root.add_subcommand("results", "sealed query results");
  res->require_subcommand(1);
  auto* list = res->add_subcommand("list", "results sealed to the caller (ids, datasets, counts)");
  r.Add(list, [&g]() -> Status {
    CR_ASSIGN(auto c, OpenAs(g, "results list"));
    CR_ASSIGN(auto metas, query::ListResults(c.room, c.key));
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
      fmt::print("{}\n", arr.dump());
      return Ok();
    }
    auto text = [](const nlohmann::json& v) {
      if (v.is_null()) return std::string();
      if (v.is_string()) return v.get<std::string>();
      if (v.is_array()) {
        std::string s;
        for (const auto& e : v) s += (s.empty() ? "" : ";") + (e.is_string() ? e.get<std::string>() : e.dump());
        return s;
      }
      return v.dump();
    };
    const bool csv = g.format == "csv";
    if (csv) fmt::print("result_id,created_at,requested_by,datasets,released_rows,withheld_rows\n");
    for (const auto& m : arr) {
      if (csv) {
        fmt::print("{},{},{},{},{},{}\n", text(m["result_id"]), text(m["created_at"]),
                   text(m["requested_by"]), text(m["datasets"]), text(m["released_rows"]),
                   text(m["withheld_rows"]));
      } else {
        fmt::print("{}  {}  by {}  over {}  {} rows released, {} withheld\n", text(m["result_id"]),
                   text(m["created_at"]), text(m["requested_by"]), text(m["datasets"]),
                   text(m["released_rows"]), text(m["withheld_rows"]));
      }
    }
    if (!csv && arr.empty()) fmt::print("no result is sealed to this party\n");
    return Ok();
  });

  auto* get = res->add_subcommand("get", "decrypt a result sealed to the caller");
  static std::string id;
  get->add_option("--id", id, "result id")->required();
  r.Add(get, [&g]() -> Status {
    CR_ASSIGN(auto c, OpenAs(g, "results get"));
    CR_ASSIGN(auto rs, query::GetResult(c.room, c.key, id));
    fmt::print("{}", results::Render(rs, g.format));
    return Ok();
  });
}

}  // namespace cr::cli
