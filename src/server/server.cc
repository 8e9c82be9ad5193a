#include "server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "budget/ledger.h"
#include "engine/closer.h"
#include "room/cache.h"
#include "budget/report.h"
#include "common/env.h"
#include "common/files.h"
#include "common/strings.h"
#include "crypto/crypto.h"
#include "http/signature.h"
#include "ingest/forget.h"
#include "ingest/ingest.h"
#include "package/package.h"
#include "query/service.h"
#include "results/results.h"
#include "room/room.h"
#include "room/views.h"
#include "server/console.h"
#include "server/metrics.h"
#include "server/nonce_store.h"

namespace cr::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kUploadDir = "incoming";
constexpr std::string_view kNonceFile = "nonces.log";
// More headers than any client of ours sends: a request with more is refused
// before anything parses them.
constexpr size_t kMaxHeaders = 64;

// What one request did, for the access log and the metrics: filled by the
// handler on the worker thread that also runs the logger afterwards.
struct RequestInfo {
  Clock::time_point start = Clock::now();
  std::string request_id;
  std::string route = "unmatched";
  std::string party;
  std::string code;
  std::string address;  // the client's IP address
};
thread_local RequestInfo t_request;
// An upload's headers as the "Expect: 100-continue" check verified them, for
// the handler of the same request on the same worker (the nonce is spent).
thread_local std::optional<http::SignedHeaders> t_upload_checked;

// When the worker began waiting for what it reads now: the connection's
// start, then the end of each response on it. cpp-httplib (0.11) answers a
// request whose headers stop coming with the same 400 as a malformed one;
// a 400 that comes a whole --read-timeout after this is the timeout.
thread_local Clock::time_point t_reading_since = Clock::now();

// httplib's fixed pool, stamping t_reading_since when a worker takes a
// connection.
class StampingPool : public httplib::TaskQueue {
 public:
  explicit StampingPool(size_t threads) : pool_(threads) {}
  void enqueue(std::function<void()> fn) override {
    pool_.enqueue([fn = std::move(fn)] {
      t_reading_since = Clock::now();
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
};

// How many refusals of unauthenticated requests each client address may have
// audited per minute (a steady-clock window: a budget, not a time of day).
class AuditBudget {
 public:
  explicit AuditBudget(int per_minute) : per_minute_(per_minute) {}
  bool Take(const std::string& address) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (windows_.size() >= kMaxAddresses) {
      // Many addresses: forget the windows that have ended; while there are
      // still too many, a new address gets no budget (counted, not audited),
      // so memory stays bounded however many addresses a flood uses.
      std::erase_if(windows_, [&](const auto& w) { return now - w.second.start >= kWindow; });
      if (windows_.size() >= kMaxAddresses && !windows_.count(address)) return false;
    }
    Window& w = windows_[address];
    if (w.count == 0 || now - w.start >= kWindow) w = {now, 0};
    return ++w.count <= per_minute_;
  }

 private:
  static constexpr std::chrono::seconds kWindow{60};
  static constexpr size_t kMaxAddresses = 4096;
  struct Window {
    Clock::time_point start;
    long long count = 0;
  };
  const long long per_minute_;
  std::mutex mu_;
  std::map<std::string, Window> windows_;
};

// The table every route is registered from (and Routes() reports).
enum class RouteId {
  kHealth, kOpenApi, kMetrics, kStatus, kDatasets, kPackages, kQuery, kTemplateRun,
  kResults, kResult, kBudget, kAudit, kRoomPub,
  kConsoleIndex, kConsoleAsset, kSpec, kQueryCheck,  // the web console (server/console.h)
  kForget,  // erasure requests (ingest/forget.h)
};
struct RouteDef {
  RouteId id;
  const char* method;
  const char* path;   // OpenAPI form
  const char* regex;  // what httplib matches
  bool signed_request;
};
constexpr RouteDef kRouteTable[] = {
    {RouteId::kHealth, "GET", "/v1/health", "/v1/health", false},
    {RouteId::kOpenApi, "GET", "/v1/openapi.yaml", R"(/v1/openapi\.yaml)", true},
    {RouteId::kMetrics, "GET", "/v1/metrics", "/v1/metrics", false},
    {RouteId::kStatus, "GET", "/v1/status", "/v1/status", true},
    {RouteId::kDatasets, "GET", "/v1/datasets", "/v1/datasets", true},
    {RouteId::kPackages, "POST", "/v1/packages", "/v1/packages", true},
    {RouteId::kQuery, "POST", "/v1/query", "/v1/query", true},
    {RouteId::kTemplateRun, "POST", "/v1/templates/{name}/run", R"(/v1/templates/([^/]+)/run)", true},
    {RouteId::kResults, "GET", "/v1/results", "/v1/results", true},
    {RouteId::kResult, "GET", "/v1/results/{id}", R"(/v1/results/([^/]+))", true},
    {RouteId::kBudget, "GET", "/v1/budget", "/v1/budget", true},
    {RouteId::kAudit, "GET", "/v1/audit", "/v1/audit", true},
    {RouteId::kRoomPub, "GET", "/v1/room.pub", R"(/v1/room\.pub)", true},
    // A browser cannot sign a page load: the console's files are unsigned and
    // are only the built-in assets, never data.
    {RouteId::kConsoleIndex, "GET", "/", "/", false},
    {RouteId::kConsoleAsset, "GET", "/console/{file}", R"(/console/([A-Za-z0-9_.-]+))", false},
    {RouteId::kSpec, "GET", "/v1/spec", "/v1/spec", true},
    {RouteId::kQueryCheck, "POST", "/v1/query/check", "/v1/query/check", true},
    {RouteId::kForget, "POST", "/v1/forget", "/v1/forget", true},
};

void SendError(httplib::Response& res, const Error& e) {
  res.status = HttpStatus(e.code);
  t_request.code = std::string(CodeName(e.code));
  res.set_content(nlohmann::json{{"error", CodeName(e.code)}, {"message", e.message}}.dump() + "\n",
                  "application/json");
}

void SendJson(httplib::Response& res, const std::string& body) {
  res.status = 200;
  res.set_content(body, "application/json");
}

// Writes `text` to `path` atomically (the port file a benchmark or test waits for).
Status WritePortFile(const std::string& path, int port) {
  return WriteFileAtomic(path, fmt::format("{}\n", port), 0644);
}

// Files a killed server or command left: atomic-write temporaries
// ("NAME.tmp-XXXXXX") anywhere in the room, upload temporaries, and result
// folders whose meta.json (their commit point) was never written. Called with
// the room lock held, so no writer is running.
size_t SweepLeftovers(const std::string& dir) {
  size_t removed = 0;
  std::error_code ec;
  std::vector<std::filesystem::path> doomed;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && name.find(".tmp-") != std::string::npos) doomed.push_back(it->path());
  }
  for (auto it = std::filesystem::directory_iterator(JoinPath(dir, std::string(kUploadDir)), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    doomed.push_back(it->path());
  }
  ec.clear();
  for (auto it = std::filesystem::directory_iterator(JoinPath(dir, "results"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (results::ValidId(it->path().filename().string()) &&
        !PathExists((it->path() / "meta.json").string())) {
      doomed.push_back(it->path());
    }
  }
  for (const auto& p : doomed) {
    std::error_code rm;
    if (std::filesystem::remove_all(p, rm) > 0) ++removed;
  }
  return removed;
}

class Service {
 public:
  Service(const Options& options, room::Room room, std::unique_ptr<NonceStore> nonces,
          std::vector<std::string> hosts, bool tls)
      : options_(options),
        room_(std::move(room)),
        nonces_(std::move(nonces)),
        hosts_(std::move(hosts)),
        scheme_(tls ? "https" : "http"),
        cache_(options.cache_memory),
        unit_sets_(options.cache_memory / 8),
        audit_budget_(options.unauthenticated_audits_per_minute) {}
  ~Service() { cache_.Clear(); }

  void Register(httplib::Server& svr) {
    for (const RouteDef& def : kRouteTable) {
      if (std::string_view(def.method) == "GET") {
        svr.Get(def.regex, [this, &def](const httplib::Request& req, httplib::Response& res) {
          t_request.route = def.path;
          Dispatch(def, req, res, nullptr);
        });
      } else {
        svr.Post(def.regex, [this, &def](const httplib::Request& req, httplib::Response& res,
                                         const httplib::ContentReader& reader) {
          t_request.route = def.path;
          Dispatch(def, req, res, &reader);
        });
      }
    }
  }

  Metrics& metrics() { return metrics_; }

  // Retention while serving: shreds what has outlived retention_days (each
  // disposal audited by the room) with the room to itself, as an ingest has
  // it, and drops the disposed datasets' warm copies at once.
  // The room to one request alone (ingest, forget, retention), once no
  // finished query's database is left open: none outlives the rows these
  // remove or replace.
  std::unique_lock<std::shared_mutex> Exclusive() {
    std::unique_lock lock(mu_);
    closer_.Wait();
    return lock;
  }

  Result<size_t> ApplyRetention() {
    auto lock = Exclusive();
    auto disposed = room_.ApplyRetention();
    cache_.Sync(room_);
    return disposed;
  }

  // Drops every warm dataset (shutdown) and says what the cache still holds.
  room::DecryptCache::Stats ClearCache() {
    cache_.Clear();
    return cache_.stats();
  }

 private:
  void Dispatch(const RouteDef& def, const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader* reader) {
    Status st;
    if (def.id == RouteId::kPackages) {
      st = Upload(req, res, *reader);
    } else {
      std::string body = req.body;  // a GET's (normally empty), read under --max-body
      if (reader) {
        auto read = ReadBody(req, *reader, options_.max_body);
        if (!read) {
          res.set_header("Connection", "close");  // the rest of the body is unread
          return SendError(res, read.error());
        }
        body = std::move(*read);
      }
      const spec::Party* party = nullptr;
      if (def.signed_request) {
        auto who = Authenticate(def, req, body);
        if (!who) return SendError(res, who.error());
        party = *who;
      }
      st = Handle(def, req, res, body, party);
    }
    if (!st) SendError(res, st.error());
  }

  // A whole request body up to `limit` bytes: BODY_TOO_LARGE past it (from
  // Content-Length before anything is read), REQUEST_TIMEOUT when the client
  // stops sending (the read timeout) or goes away.
  Result<std::string> ReadBody(const httplib::Request& req, const httplib::ContentReader& reader,
                               uint64_t limit) {
    CR_TRY(CheckDeclaredLength(req, limit));
    std::string body;
    bool too_large = false;
    bool ok = reader([&](const char* data, size_t n) {
      if (body.size() + n > limit) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (too_large) return TooLarge(limit);
    if (!ok) return Fail(ErrorCode::REQUEST_TIMEOUT, "the request body did not arrive in time");
    return body;
  }

  static std::unexpected<Error> TooLarge(uint64_t limit) {
    return Fail(ErrorCode::BODY_TOO_LARGE, "the request body is larger than this server accepts ({} bytes)",
                limit);
  }

  static Status CheckDeclaredLength(const httplib::Request& req, uint64_t limit) {
    if (!req.has_header("Content-Length")) return Ok();
    const std::string text = req.get_header_value("Content-Length");
    uint64_t declared = 0;
    if (text.empty() || text.size() > 19 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Fail(ErrorCode::BAD_INPUT, "the Content-Length header is not a number");
    }
    declared = std::stoull(text);
    if (declared > limit) return TooLarge(limit);
    return Ok();
  }

  // The request's absolute URI as the client must have signed it: our
  // scheme, its Host (one we serve), its request target.
  Result<std::string> TargetUri(const httplib::Request& req) const {
    if (req.get_header_value_count("Host") != 1) {
      return Fail(ErrorCode::AUTH_MALFORMED, "the request must carry one Host header");
    }
    std::string host = AsciiLower(req.get_header_value("Host"));
    if (std::find(hosts_.begin(), hosts_.end(), host) == hosts_.end()) {
      return Fail(ErrorCode::AUTH_MALFORMED,
                  "the Host header names a host this server does not serve (see serve --host)");
    }
    return scheme_ + "://" + host + req.target;
  }

  // Verifies the signature over the headers (not the body), the clock and the
  // nonce. Refusals are audited by the caller.
  Result<http::SignedHeaders> VerifySigned(const httplib::Request& req) {
    if (req.headers.size() > kMaxHeaders) {
      return Fail(ErrorCode::BAD_INPUT, "the request has more than {} headers", kMaxHeaders);
    }
    CR_ASSIGN(std::string uri, TargetUri(req));
    std::map<std::string, std::string> headers;
    for (const char* name : {"signature-input", "signature", "content-digest"}) {
      size_t n = req.get_header_value_count(name);
      if (n > 1) {
        return Fail(ErrorCode::AUTH_MALFORMED, "the {} header appears more than once", name);
      }
      if (n == 1) headers[name] = req.get_header_value(name);
    }
    const spec::Spec& spec = room_.spec();
    CR_ASSIGN(auto signed_headers,
              http::VerifyHeaders(req.method, uri, headers,
                                  [&spec](std::string_view name) -> std::optional<crypto::PublicIdentity> {
                                    const spec::Party* p = spec.FindParty(name);
                                    if (!p) return std::nullopt;
                                    return p->key;
                                  }));
    t_request.party = signed_headers.request.party;
    const long long now = room_.clock().NowUnix();
    if (signed_headers.request.created < now - kMaxClockSkewSeconds ||
        signed_headers.request.created > now + kMaxClockSkewSeconds) {
      return Fail(ErrorCode::AUTH_EXPIRED,
                  "the request's signature was created more than {} seconds from the server's clock",
                  kMaxClockSkewSeconds);
    }
    CR_TRY(nonces_->Record(signed_headers.request.party, signed_headers.request.nonce,
                           signed_headers.request.created, now));
    return signed_headers;
  }

  // Audits a refusal the server itself makes (authentication, abilities):
  // route and code, the party only once its signature verified. Never bodies.
  std::unexpected<Error> Refuse(const RouteDef& def, const Error& e) {
    nlohmann::json details = {{"method", def.method}, {"route", def.path}};
    // Anyone can send unsigned requests: past a per-address budget their
    // refusals are counted, not logged. A party's (signature verified) always are.
    if (t_request.party.empty() && !audit_budget_.Take(t_request.address)) {
      metrics_.CountUnaudited();
      return std::unexpected(e);
    }
    std::string actor = t_request.party.empty() ? "unauthenticated" : t_request.party;
    return room_.audit().Refuse("request.refused", actor, std::move(details), e);
  }

  Result<const spec::Party*> Authenticate(const RouteDef& def, const httplib::Request& req,
                                          std::string_view body) {
    auto signed_headers = VerifySigned(req);
    if (!signed_headers) return Refuse(def, signed_headers.error());
    if (auto st = http::CheckBodyDigest(*signed_headers, crypto::Sha256(body)); !st) {
      return Refuse(def, st.error());
    }
    return room_.spec().FindParty(signed_headers->request.party);
  }

  Status Handle(const RouteDef& def, const httplib::Request& req, httplib::Response& res,
                const std::string& body, const spec::Party* party) {
    switch (def.id) {
      case RouteId::kHealth:
        SendJson(res, nlohmann::json{{"status", "ok"}, {"version", CLEANROOM_VERSION}}.dump() + "\n");
        return Ok();
      case RouteId::kOpenApi:
        res.set_content(std::string(OpenApiDocument()), "application/yaml");
        return Ok();
      case RouteId::kMetrics:
        res.set_content(metrics_.Render() + RenderCacheMetrics(cache_.stats(), cache_.max_bytes()) +
                            RenderUnitSetCacheMetrics(unit_sets_.entries(), unit_sets_.bytes()),
                        "text/plain; version=0.0.4");
        return Ok();
      case RouteId::kStatus: {
        std::shared_lock lock(mu_);
        auto doc = room::StatusJson(room_, room_.Info());
        CR_ASSIGN(std::string spec_yaml, ReadFile(JoinPath(room_.dir(), "spec.yaml")));
        doc["spec_sha256"] = ToHex(crypto::Sha256(spec_yaml));
        doc["spec_yaml"] = spec_yaml;
        SendJson(res, room::Dump(doc) + "\n");
        return Ok();
      }
      case RouteId::kDatasets: {
        std::shared_lock lock(mu_);
        SendJson(res, room::Dump(room::DatasetsJson(
                          room::DatasetViews(room_, room_.Info(), room_.clock().NowUnix()))) + "\n");
        return Ok();
      }
      case RouteId::kQuery:
      case RouteId::kTemplateRun:
        return RunQuery(def, req, res, body, *party);
      case RouteId::kResults: {
        std::shared_lock lock(mu_);
        CR_ASSIGN(auto metas, query::ListResults(room_, party->key));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& m : metas) list.push_back(results::Summary(m));
        SendJson(res, nlohmann::json{{"results", std::move(list)}}.dump() + "\n");
        return Ok();
      }
      case RouteId::kResult: {
        std::shared_lock lock(mu_);
        const std::string id = req.matches[1].str();
        CR_ASSIGN(std::string sealed, query::GetSealed(room_, party->key, id));
        SendJson(res, nlohmann::json{{"result_id", id}, {"sealed", crypto::Base64Encode(sealed)}}.dump() + "\n");
        return Ok();
      }
      case RouteId::kBudget: {
        // What `cleanroom budget --format json` prints (src/cli/budget_command.cc).
        std::shared_lock lock(mu_);
        const auto& dp = room_.spec().privacy.dp;
        std::optional<budget::Summary> current;
        std::vector<budget::Summary> history;
        if (dp) {
          CR_ASSIGN(auto ledger, budget::Ledger::Open(room_.dir(), room_.key(), *dp, room_.clock()));
          CR_ASSIGN(history, ledger.History());
          current = history.back();
        }
        // Plus every period, oldest first, for the client's table (`budget --server`).
        nlohmann::json answer = budget::CurrentJson(current, dp ? dp->refresh : "");
        answer["periods"] = nlohmann::json::array();
        for (const auto& s : history) answer["periods"].push_back(budget::CurrentJson(s, dp->refresh));
        CR_ASSIGN(answer["usage"],
                  budget::UsageJson(room_.dir(), room_.key(), room_.spec(), room_.clock()));
        SendJson(res, answer.dump() + "\n");
        return Ok();
      }
      case RouteId::kAudit: {
        std::shared_lock lock(mu_);
        CR_ASSIGN(std::string log, ReadFile(room::AuditLogPath(room_.dir())));
        // An append may be under way in another thread: send whole lines only.
        size_t end = log.rfind('\n');
        log.resize(end == std::string::npos ? 0 : end + 1);
        res.set_content(log, "application/x-ndjson");
        return Ok();
      }
      case RouteId::kRoomPub: {
        CR_ASSIGN(std::string pub, ReadFile(room::RoomPubPath(room_.dir())));
        res.set_content(pub, "text/plain");
        return Ok();
      }
      case RouteId::kConsoleIndex:
        return console::ServeAsset("index.html", res);
      case RouteId::kConsoleAsset:
        return console::ServeAsset(req.matches[1].str(), res);
      case RouteId::kSpec: {
        std::shared_lock lock(mu_);
        return console::ServeSpec(room_, res);
      }
      case RouteId::kQueryCheck: {
        std::shared_lock lock(mu_);
        return console::CheckQuery(room_, party->key, body, res);
      }
      case RouteId::kForget: {
        auto j = nlohmann::json::parse(body, nullptr, false);
        // The room has it alone, as for an ingest: a new version replaces the old.
        auto lock = Exclusive();
        // Forget audits both outcomes itself (a body that is no request too).
        CR_ASSIGN(auto done, ingest::Forget(room_, j, &party->key));
        cache_.Sync(room_);  // the old version's warm copies go at once
        SendJson(res, ingest::ForgetAnswer(done).dump() + "\n");
        return Ok();
      }
      case RouteId::kPackages:
        break;
    }
    return Fail(ErrorCode::INTERNAL, "unrouted request");
  }

  // POST /v1/query {"sql", "receivers"?, "epsilon"?} and
  // POST /v1/templates/{name}/run {"params"?, "receivers"?, "epsilon"?}.
  Status RunQuery(const RouteDef& def, const httplib::Request& req, httplib::Response& res,
                  const std::string& body, const spec::Party& party) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(ErrorCode::BAD_INPUT, "the request body is not a JSON object");
    }
    query::Request q;
    const bool is_template = def.id == RouteId::kTemplateRun;
    for (const auto& [key, value] : j.items()) {
      // A template's SQL is the spec's, and only a template takes params.
      if ((key == "sql" && is_template) || (key == "params" && !is_template)) {
        return Fail(ErrorCode::BAD_INPUT, "unexpected field in the request body");
      }
      CR_TRY(console::ParseQueryField(key, value, q));
    }
    if (is_template) {
      q.template_name = req.matches[1].str();
    } else if (!j.contains("sql")) {
      return Fail(ErrorCode::BAD_INPUT, "the request body needs \"sql\"");
    }
    query::RunOptions run;
    run.timeout_seconds = options_.query_timeout_seconds;
    run.cache = options_.cache_memory > 0 ? &cache_ : nullptr;
    run.closer = &closer_;
    run.unit_sets = options_.cache_memory > 0 ? &unit_sets_ : nullptr;
    std::shared_lock lock(mu_);
    CR_ASSIGN(auto outcome, query::Run(room_, party.key, q, run));
    nlohmann::json sealed = nullptr;
    if (outcome.caller_receives) {
      CR_ASSIGN(std::string box, results::ReadSealed(room_.dir(), room_.sealer(), outcome.result.result_id, party.name));
      sealed = crypto::Base64Encode(box);
    }
    SendJson(res, nlohmann::json{{"result_id", outcome.result.result_id},
                                 {"receivers", outcome.receivers},
                                 {"caller_receives", outcome.caller_receives},
                                 {"withheld_receivers", query::WithheldJson(outcome.withheld_receivers)},
                                 {"sealed", sealed}}
                      .dump() + "\n");
    return Ok();
  }

 public:
  // "Expect: 100-continue" (the client's uploads send it): an upload is
  // checked on its headers here, before the client sends a byte of its body,
  // so a refusal reaches the client as this answer rather than as a
  // connection closed under a write. 100 lets the body come; other routes
  // always continue.
  int Expect(const httplib::Request& req, httplib::Response& res) {
    if (req.method != "POST" || req.path != "/v1/packages") return 100;
    t_request = RequestInfo{};
    t_request.request_id = crypto::RandomId();
    t_request.route = kRouteTable[static_cast<size_t>(RouteId::kPackages)].path;
    t_request.address = req.remote_addr;
    auto checked = CheckUploadHeaders(req);
    if (!checked) {
      res.set_header("X-Request-Id", t_request.request_id);
      res.set_header("Connection", "close");  // the body never comes
      SendError(res, checked.error());
      return res.status;
    }
    t_upload_checked = std::move(*checked);
    return 100;
  }

 private:
  // What an upload must pass before its body is read: the signature over the
  // headers, the contribute ability, the declared length. Refusals of the
  // first two are audited.
  Result<http::SignedHeaders> CheckUploadHeaders(const httplib::Request& req) {
    const RouteDef& def = kRouteTable[static_cast<size_t>(RouteId::kPackages)];
    auto signed_headers = VerifySigned(req);
    if (!signed_headers) return Refuse(def, signed_headers.error());
    const spec::Party* party = room_.spec().FindParty(signed_headers->request.party);
    if (!party->Can("contribute")) {
      return Refuse(def, Error{ErrorCode::NOT_AUTHORIZED,
                               fmt::format("party {} does not have the contribute ability", party->name)});
    }
    CR_TRY(CheckDeclaredLength(req, options_.max_upload));
    return signed_headers;
  }

  // POST /v1/packages: authenticated on the headers before a byte is stored,
  // streamed to DIR/incoming under the size limit with its digest computed on
  // the way, then the local ingest path on the whole file.
  Status Upload(const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& reader) {
    const RouteDef& def = kRouteTable[static_cast<size_t>(RouteId::kPackages)];
    res.set_header("Connection", "close");  // a refusal may leave the body unread
    // Refused before the body is stored. A small body is still read (and
    // dropped) so the client, busy sending it, gets the answer rather than a
    // reset connection; a large one is not worth reading.
    auto refuse_early = [&](const Error& e) {
      if (CheckDeclaredLength(req, options_.max_body)) {
        uint64_t seen = 0;
        (void)reader([&](const char*, size_t n) { return (seen += n) <= options_.max_body; });
      }
      return Refuse(def, e);
    };
    // Checked already when the client asked to continue; the nonce is spent.
    std::optional<http::SignedHeaders> checked = std::exchange(t_upload_checked, std::nullopt);
    auto signed_headers = checked ? Result<http::SignedHeaders>(std::move(*checked)) : VerifySigned(req);
    if (!signed_headers) return refuse_early(signed_headers.error());
    t_request.party = signed_headers->request.party;
    const spec::Party* party = room_.spec().FindParty(signed_headers->request.party);
    if (!party->Can("contribute")) {
      return refuse_early(Error{ErrorCode::NOT_AUTHORIZED,
                                fmt::format("party {} does not have the contribute ability", party->name)});
    }
    CR_TRY(CheckDeclaredLength(req, options_.max_upload));

    std::string dir = JoinPath(room_.dir(), std::string(kUploadDir));
    CR_TRY(MakeDirs(dir, 0700));
    std::string path = dir + "/upload.tmp-XXXXXX";
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return Fail(ErrorCode::INTERNAL, "cannot create an upload file in the room");
    // Removed on every path out: a refused, failed or ingested upload leaves nothing.
    struct Cleanup {
      std::string path;
      int fd;
      ~Cleanup() {
        if (fd >= 0) ::close(fd);
        ::unlink(path.c_str());
      }
    } cleanup{path, fd};

    crypto::Sha256Stream digest;
    uint64_t received = 0;
    bool too_large = false, write_failed = false;
    bool ok = reader([&](const char* data, size_t n) {
      received += n;
      if (received > options_.max_upload) {
        too_large = true;
        return false;
      }
      digest.Update({data, n});
      for (size_t off = 0; off < n;) {
        ssize_t w = ::write(fd, data + off, n - off);
        if (w <= 0) {
          write_failed = true;
          return false;
        }
        off += static_cast<size_t>(w);
      }
      return true;
    });
    if (too_large) return TooLarge(options_.max_upload);
    if (write_failed) return Fail(ErrorCode::INTERNAL, "cannot store the upload in the room");
    if (!ok) return Fail(ErrorCode::REQUEST_TIMEOUT, "the package did not arrive in time");
    if (::fsync(fd) != 0) return Fail(ErrorCode::INTERNAL, "cannot store the upload in the room");
    if (auto st = http::CheckBodyDigest(*signed_headers, digest.Final()); !st) {
      return Refuse(def, st.error());
    }

    auto lock = Exclusive();
    // The uploader must be the package's signer: a party may not hand in
    // another's package (ingest checks the signer is the dataset's owner and
    // that the signature verifies; this binds the signer to the caller).
    auto pkg = package::Reader::Open(path);
    if (pkg) {
      auto signer = crypto::PublicIdentity::FromText(pkg->header().signer);
      if (!signer || !(*signer == party->key)) {
        return room_.audit().Refuse(
            "ingest.refused", party->name, {{"reason", "the uploader is not the package's signer"}},
            Error{ErrorCode::WRONG_SIGNER, "the package is not signed by the party uploading it"});
      }
    }
    // Ingest audits both outcomes itself (also a file that is no package).
    auto ingested = ingest::Ingest(room_, path);
    // A new version replaces the dataset's package: its warm copy goes.
    cache_.Sync(room_);
    CR_ASSIGN(auto rep, std::move(ingested));
    SendJson(res, nlohmann::json{{"dataset", rep.dataset},
                                 {"owner", rep.owner},
                                 {"rows", rep.rows},
                                 {"package_id", rep.package_id},
                                 {"bytes", rep.bytes},
                                 {"replaced", rep.replaced}}
                      .dump() + "\n");
    res.headers.erase("Connection");
    return Ok();
  }

  const Options& options_;
  room::Room room_;
  std::unique_ptr<NonceStore> nonces_;
  std::vector<std::string> hosts_;
  std::string scheme_;
  // Queries, template runs and reads share the room; ingest has it alone.
  std::shared_mutex mu_;
  Metrics metrics_;
  room::DecryptCache cache_;
  // Stored results' decoded unit sets, beside the warm datasets: an eighth
  // of --cache-memory on top of it.
  diffcheck::SetCache unit_sets_;
  AuditBudget audit_budget_;
  // Finished queries' databases close here, after their answers are sent.
  engine::Closer closer_;
};

// A test hook beside CLEANROOM_NOW, under the same build switch: the time a
// file says, re-read at every look, so a test can move a running server's
// clock (retention while serving) where CLEANROOM_NOW is read once. A file
// that stops parsing leaves the last time it said.
constexpr const char* kClockFileVar = "CLEANROOM_NOW_FILE";
class FileClock : public cr::Clock {
 public:
  static Result<std::unique_ptr<FileClock>> FromEnvironment() {
    const char* path = std::getenv(kClockFileVar);
    if (!path) return std::unique_ptr<FileClock>();
    if (!TestHooksEnabled()) {
      return Fail(ErrorCode::USAGE, "{} is a test hook this build does not honour", kClockFileVar);
    }
    auto clock = std::unique_ptr<FileClock>(new FileClock(path));
    CR_ASSIGN(clock->last_, clock->Read());
    return clock;
  }
  long long NowUnix() const override {
    std::lock_guard lock(mu_);
    if (auto now = Read()) last_ = *now;
    return last_;
  }

 private:
  explicit FileClock(std::string path) : path_(std::move(path)) {}
  Result<long long> Read() const {
    CR_ASSIGN(std::string text, ReadFile(path_));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return ParseClockOverride(text);
  }
  const std::string path_;
  mutable std::mutex mu_;
  mutable long long last_ = 0;
};

// Applies retention every `seconds` until stopped (and joined) by its
// destructor: a server that runs for months shreds datasets on the day they
// expire, not at its next restart. Each run is one JSON line on standard
// error when it disposed something or failed (the room audits each disposal
// and each refusal itself).
class RetentionTimer {
 public:
  RetentionTimer(std::function<Result<size_t>()> apply, int seconds)
      : thread_([this, apply = std::move(apply), seconds] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return stop_; })) {
            lock.unlock();
            auto disposed = apply();
            if (!disposed || *disposed > 0) {
              nlohmann::json line = {{"time", NowRfc3339()}, {"event", "retention"}};
              if (disposed) line["disposed"] = *disposed;
              else line["code"] = CodeName(disposed.error().code);
              fmt::print(stderr, "{}\n", line.dump());
              std::fflush(stderr);
            }
            lock.lock();
          }
        }) {}
  ~RetentionTimer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members it uses exist
};

// One JSON line per request on standard error: who, which route, how it
// ended and how long it took. Never bodies, SQL or paths with ids.
void AccessLog(const httplib::Request& req, const httplib::Response& res) {
  static std::mutex mu;
  const auto& info = t_request;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - info.start).count();
  nlohmann::json line = {{"time", NowRfc3339()},
                         {"request_id", info.request_id},
                         {"party", info.party.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.party)},
                         {"method", req.method},
                         {"route", info.route},
                         {"status", res.status},
                         {"latency_ms", std::round(ms * 1000) / 1000}};
  if (!info.code.empty()) line["code"] = info.code;
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mu);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

// The Host header values this server answers to. On the scheme's default
// port (443, or 80 without TLS) a browser sends the name without the port
// (RFC 9110 7.2), and signs its URI the same way, so both forms are served.
std::vector<std::string> ServedHosts(const std::string& host, int port, bool tls,
                                     const Options& options) {
  std::vector<std::string> names;
  const bool default_port = port == (tls ? 443 : 80);
  auto add = [&](std::string h) {
    if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
    names.push_back(AsciiLower(h) + ":" + std::to_string(port));
    if (default_port) names.push_back(AsciiLower(h));
  };
  add(host);
  if (IsLoopback(host)) {
    add("localhost");
    add("127.0.0.1");
    add("::1");
  }
  for (const auto& h : options.hosts) add(h);
  return names;
}

std::vector<Route> Routes() {
  std::vector<Route> out;
  for (const RouteDef& def : kRouteTable) out.push_back({def.method, def.path, def.signed_request});
  return out;
}

Result<std::pair<std::string, int>> ParseListen(std::string_view listen) {
  std::string host;
  std::string_view port_text;
  if (listen.starts_with("[")) {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return Fail(ErrorCode::USAGE, "--listen must be HOST:PORT or [IPV6]:PORT");
    }
    host = std::string(listen.substr(1, close - 1));
    port_text = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos || colon == 0 ||
        listen.substr(0, colon).find(':') != std::string_view::npos) {
      return Fail(ErrorCode::USAGE, "--listen must be HOST:PORT or [IPV6]:PORT");
    }
    host = std::string(listen.substr(0, colon));
    port_text = listen.substr(colon + 1);
  }
  if (host.empty() || port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Fail(ErrorCode::USAGE, "--listen must be HOST:PORT with a port from 0 to 65535");
  }
  int port = std::stoi(std::string(port_text));
  if (port > 65535) return Fail(ErrorCode::USAGE, "--listen must be HOST:PORT with a port from 0 to 65535");
  return std::make_pair(host, port);
}

bool IsLoopback(std::string_view host) {
  if (AsciiLower(host) == "localhost" || host == "::1") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  return false;
}

Status Serve(const Options& options) {
  CR_ASSIGN(auto listen, ParseListen(options.listen));
  const auto& [host, port] = listen;
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return Fail(ErrorCode::USAGE, "serve needs both --tls-cert and --tls-key, or neither");
  }
  if (!tls && !IsLoopback(host)) {
    return Fail(ErrorCode::USAGE,
                "serve listens on {} only with TLS: give --tls-cert and --tls-key (plain HTTP is "
                "for loopback addresses only)",
                host);
  }
  if (options.room_dir.empty()) return Fail(ErrorCode::USAGE, "serve needs --room DIR");
  for (const auto& f : {options.tls_cert, options.tls_key}) {
    if (!f.empty() && !PathExists(f)) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", f);
  }

  CR_ASSIGN(auto file_clock, FileClock::FromEnvironment());
  room::OpenOptions open;
  open.lock_wait = std::chrono::milliseconds(5000);
  open.clock = file_clock.get();  // null: the default clock
  CR_ASSIGN(auto room, room::Room::Open(options.room_dir, open));
  size_t swept = SweepLeftovers(options.room_dir);
  CR_ASSIGN(auto nonces, NonceStore::Open(JoinPath(options.room_dir, std::string(kNonceFile)),
                                          room.clock().NowUnix(), kMaxClockSkewSeconds));

  std::unique_ptr<httplib::Server> svr;
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str());
    if (!ssl->is_valid()) {
      return Fail(ErrorCode::FILE_UNREADABLE, "the TLS certificate or key does not load (PEM files expected)");
    }
    svr = std::move(ssl);
  } else {
    svr = std::make_unique<httplib::Server>();
  }

  // Signals are taken by one thread with sigwait, not a handler: stop() is not
  // async-signal-safe. Blocked before any thread starts, so all inherit it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = options.threads > 0 ? options.threads : 2 * cores;
  svr->new_task_queue = [threads] { return new StampingPool(threads); };
  svr->set_read_timeout(options.read_timeout_seconds, 0);
  svr->set_write_timeout(options.write_timeout_seconds, 0);
  svr->set_keep_alive_timeout(2);
  // Bodies are read by the handlers under their own limits.
  svr->set_payload_max_length(std::max(options.max_upload, options.max_body));

  int bound = port;
  if (port == 0) {
    bound = svr->bind_to_any_port(host);
    if (bound < 0) return Fail(ErrorCode::USAGE, "cannot listen on {}", options.listen);
  } else if (!svr->bind_to_port(host, port)) {
    return Fail(ErrorCode::USAGE, "cannot listen on {}", options.listen);
  }

  Service service(options, std::move(room), std::move(nonces), ServedHosts(host, bound, tls, options), tls);
  service.Register(*svr);
  svr->set_pre_routing_handler([&options](const httplib::Request& req, httplib::Response& res) {
    t_request = RequestInfo{};
    t_request.request_id = crypto::RandomId();
    t_request.address = req.remote_addr;
    res.set_header("X-Request-Id", t_request.request_id);
    // POST handlers stream their bodies under their own limits; for the rest
    // cpp-httplib would read a body whole before any handler runs, so one
    // past --max-body is refused here, unread.
    if (req.method != "POST") {
      bool too_large = req.has_header("Transfer-Encoding");
      if (req.has_header("Content-Length")) {
        const std::string n = req.get_header_value("Content-Length");
        too_large = too_large || n.size() > 19 ||
                    !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
                    std::stoull("0" + n) > options.max_body;
      }
      if (too_large) {
        res.set_header("Connection", "close");
        SendError(res, Error{ErrorCode::BODY_TOO_LARGE,
                             fmt::format("the request body is larger than this server accepts ({} bytes)",
                                         options.max_body)});
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr->set_expect_100_continue_handler(
      [&service](const httplib::Request& req, httplib::Response& res) { return service.Expect(req, res); });
  svr->set_error_handler(httplib::Server::HandlerWithResponse([&options](const httplib::Request& req,
                                                                         httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours, already JSON
    // Headers that stopped coming (see t_reading_since): the client is told
    // so. A stall inside the request line cannot be answered: httplib closes
    // the connection without calling any handler (docs/server.md).
    if (res.status == 400 && Clock::now() - t_reading_since >=
                                 std::chrono::seconds(options.read_timeout_seconds)) {
      res.status = 408;
      res.set_header("Connection", "close");
    }
    // What httplib refused before any handler ran (no route, bad request
    // line, a body past the limit): the same error body as ours.
    Error e{ErrorCode::NOT_SUPPORTED, fmt::format("no route for this {} request (see /v1/openapi.yaml)", req.method)};
    if (res.status == 413) e = {ErrorCode::BODY_TOO_LARGE, "the request is larger than this server accepts"};
    else if (res.status == 414) e = {ErrorCode::BAD_INPUT, "the request target is too long"};
    else if (res.status == 400) e = {ErrorCode::BAD_INPUT, "the request is malformed"};
    else if (res.status == 408) e = {ErrorCode::REQUEST_TIMEOUT, "the request did not arrive in time"};
    SendError(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, Error{ErrorCode::INTERNAL, "the request failed unexpectedly"});
  });
  svr->set_logger([&service](const httplib::Request& req, const httplib::Response& res) {
    AccessLog(req, res);
    double seconds = std::chrono::duration<double>(Clock::now() - t_request.start).count();
    service.metrics().Observe(t_request.route, req.method, res.status, seconds, t_request.code);
    t_request = RequestInfo{};
    t_upload_checked.reset();
    t_reading_since = Clock::now();
  });

  if (!options.port_file.empty()) CR_TRY(WritePortFile(options.port_file, bound));
  fmt::print(stderr, "{}\n", nlohmann::json{{"time", NowRfc3339()},
                                            {"event", "listening"},
                                            {"address", fmt::format("{}://{}:{}", tls ? "https" : "http",
                                                                    host.find(':') != std::string::npos ? "[" + host + "]" : host,
                                                                    bound)},
                                            {"threads", threads},
                                            {"swept_leftovers", swept}}
                                 .dump());
  std::fflush(stderr);

  std::optional<RetentionTimer> retention;
  retention.emplace([&service] { return service.ApplyRetention(); },
                    std::max(1, options.retention_check_seconds));
  std::atomic<bool> stopping{false};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stopping = true;
    svr->stop();
  });
  bool served = svr->listen_after_bind();
  if (!stopping) {
    // listen ended without a signal: wake the watcher so it can be joined.
    pthread_kill(watcher.native_handle(), SIGTERM);
  }
  watcher.join();
  retention.reset();
  // The warm room goes before the process does; the line says it is empty.
  const auto cache = service.ClearCache();
  fmt::print(stderr, "{}\n", nlohmann::json{{"time", NowRfc3339()},
                                            {"event", "stopped"},
                                            {"cache_entries", cache.entries},
                                            {"cache_bytes", cache.bytes},
                                            {"cache_hits", cache.hits},
                                            {"cache_misses", cache.misses}}
                                 .dump());
  if (!served && !stopping) return Fail(ErrorCode::INTERNAL, "the server stopped unexpectedly");
  return Ok();
}

}  // namespace cr::server
