#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/env.h"
#include "crypto/crypto.h"
#include "room/key_store.h"

namespace cr::cli {
namespace {

// CLI11 2.1 has no non-throwing lookup of a subcommand by name.
const CLI::App* FindSubcommand(const CLI::App& at, std::string_view name) {
  for (const CLI::App* sub : at.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

// The global flags that take a value, as they may appear before the command.
bool IsGlobalWithValue(std::string_view arg) {
  return arg == "--room" || arg == "--key" || arg == "--format" || arg == "--server" ||
         arg == "--tls-ca";
}

// --format json anywhere on the line, for errors raised before (or while)
// parsing sets Globals: the report must still be the JSON the script asked for.
bool AsksForJson(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--format=json") == 0) return true;
    if (std::strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
        std::strcmp(argv[i + 1], "json") == 0) {
      return true;
    }
  }
  return false;
}

// The command words of the line ("room", "init"), skipping global flags and
// their values, stopping at the first other option. When a word names no
// command, the USAGE error says so instead of CLI11's generic wording.
std::optional<Error> UnknownCommand(const CLI::App& root, int argc, char** argv) {
  const CLI::App* at = &root;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (IsGlobalWithValue(arg)) {
      ++i;
      continue;
    }
    if (IsGlobalWithValue(arg.substr(0, arg.find('=')))) continue;  // --room=DIR
    if (arg.starts_with("-")) break;
    if (at->get_subcommands([](const CLI::App*) { return true; }).empty()) break;  // a leaf's positional argument
    path += (path.empty() ? "" : " ") + std::string(arg);
    const CLI::App* next = FindSubcommand(*at, arg);
    if (!next) {
      return Error{ErrorCode::USAGE,
                   fmt::format("unknown command '{}'; see cleanroom --help", path)};
    }
    at = next;
  }
  return std::nullopt;
}

}  // namespace

std::string CommandPath(const CLI::App* app) {
  std::string path;
  for (; app && app->get_parent(); app = app->get_parent()) {
    path = app->get_name() + (path.empty() ? "" : " ") + path;
  }
  return path;
}

void Registry::Add(CLI::App* app, Uses uses, std::function<Status()> run) {
  // Bound to the same Globals as the root's flags: either position fills them.
  if (uses.room && !app->get_option_no_throw("--room")) {
    app->add_option("--room", g_.room, "room folder (or CLEANROOM_ROOM)")->group("Global");
  }
  if (uses.room && !app->get_option_no_throw("--passphrase-fd")) {
    app->add_option("--passphrase-fd", g_.passphrase_fd,
                    "read the room's passphrase from this file descriptor (or "
                    "CLEANROOM_PASSPHRASE_FILE, or the terminal)")
        ->group("Global");
    app->add_option("--pkcs11-pin-fd", g_.pin_fd,
                    "read the PKCS#11 token PIN from this file descriptor (or CLEANROOM_PKCS11_PIN_FILE)")
        ->group("Global");
  }
  if (uses.key && !app->get_option_no_throw("--key")) {
    app->add_option("--key", g_.key, "key file of the acting party")->group("Global");
  }
  if (uses.server && !app->get_option_no_throw("--server")) {
    app->add_option("--server", g_.server, "room service URL (https://HOST:PORT) instead of --room")
        ->group("Global");
    app->add_option("--tls-ca", g_.tls_ca, "CA certificate (PEM) that signed the server's")
        ->group("Global");
  }
  std::string formats;
  for (const auto& f : uses.formats) formats += (formats.empty() ? "" : "|") + f;
  app->add_option("--format", g_.format, "output format: " + formats)->group("Global");
  commands_.push_back({app, std::move(uses), std::move(run)});
}

Status Registry::RunParsed() const {
  // The deepest parsed command wins ("room init" over "room").
  const Command* chosen = nullptr;
  for (const auto& c : commands_) {
    if (c.app->parsed()) chosen = &c;
  }
  if (!chosen) return Fail(ErrorCode::USAGE, "no command given; see cleanroom --help");
  // Checked before the command touches anything: a format it cannot print is
  // refused, never silently replaced by the table.
  CR_TRY(CheckFormat(CommandPath(chosen->app), g_.format, chosen->uses.formats));
  // Never ignored: a command with no remote form would otherwise act locally.
  if (!chosen->uses.server && (!g_.server.empty() || !g_.tls_ca.empty())) {
    return Fail(ErrorCode::USAGE, "{} does not run against a server (--server)",
                CommandPath(chosen->app));
  }
  // --server names the room: CLEANROOM_ROOM does not make that a conflict.
  if (g_.room.empty() && g_.server.empty()) {
    if (const char* env = std::getenv("CLEANROOM_ROOM")) g_.room = env;
  }
  return chosen->run();
}

void RegisterHelp(CLI::App& root, Globals&, Registry& r) {
  auto* cmd = root.add_subcommand("help", "print the help of a command: cleanroom help room init");
  static std::vector<std::string> words;
  cmd->add_option("command", words, "the command and its subcommand");
  r.Add(cmd, Uses{.formats = {"table"}}, [&root]() -> Status {
    const CLI::App* at = &root;
    std::string path;
    for (const auto& w : words) {
      path += (path.empty() ? "" : " ") + w;
      const CLI::App* next = FindSubcommand(*at, w);
      if (!next || w == "help") {
        return Fail(ErrorCode::USAGE, "unknown command '{}'; see cleanroom --help", path);
      }
      at = next;
    }
    // make_help, not help(): help() would follow the parsed "help" subcommand.
    std::string name = path.empty() ? "cleanroom" : "cleanroom " + path;
    fmt::print("{}", at->get_formatter()->make_help(at, name, CLI::AppFormatMode::Normal));
    return Ok();
  });
}

int Main(int argc, char** argv) {
  CLI::App app{"cleanroom: a data clean room. Parties pool encrypted data; only agreed, "
               "anonymised answers leave.",
               "cleanroom"};
  app.require_subcommand(1);
  // Global flags may follow the command, as in `cleanroom room init --room DIR`.
  app.fallthrough();
  app.set_version_flag("--version", std::string("cleanroom ") + CLEANROOM_VERSION);
  Globals g;
  // CLEANROOM_ROOM is read in Registry::RunParsed, not by CLI11: with the
  // flag on both the root and the command, CLI11's environment step could
  // override a --room given after the command.
  app.add_option("--room", g.room, "room folder (or CLEANROOM_ROOM)");
  app.add_option("--key", g.key, "key file of the acting party");
  app.add_option("--server", g.server, "room service URL (https://HOST:PORT) instead of --room");
  app.add_option("--tls-ca", g.tls_ca, "CA certificate (PEM) that signed the server's");
  app.add_option("--passphrase-fd", g.passphrase_fd, "file descriptor holding the room's passphrase");
  app.add_option("--pkcs11-pin-fd", g.pin_fd, "file descriptor holding the PKCS#11 token PIN");
  app.add_option("--format", g.format, "output format (each command lists those it prints)")
      ->check(CLI::IsMember({"table", "csv", "json"}));

  Registry r(g);
  RegisterKeygen(app, g, r);
  RegisterSecret(app, g, r);
  RegisterSpec(app, g, r);
  RegisterRoom(app, g, r);
  RegisterPrepare(app, g, r);
  RegisterIngest(app, g, r);
  RegisterAudit(app, g, r);
  RegisterDispose(app, g, r);
  RegisterDemo(app, g, r);
  RegisterGenerate(app, g, r);
  RegisterQuery(app, g, r);
  RegisterAnonymize(app, g, r);
  RegisterRisk(app, g, r);
  RegisterDatasets(app, g, r);
  RegisterBudget(app, g, r);
  RegisterHelp(app, g, r);
  RegisterServe(app, g, r);
  RegisterForget(app, g, r);
  RegisterReport(app, g, r);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    Error err = UnknownCommand(app, argc, argv).value_or(Error{ErrorCode::USAGE, e.what()});
    PrintError(err, AsksForJson(argc, argv));
    return ExitCode(err.code);
  }

  Status st;
  try {
    if (auto init = crypto::Init(); !init) {
      st = init;
    } else if (auto clock = InstallClockOverride(); !clock) {
      st = clock;  // a fake clock is refused or honoured, never silently ignored
    } else {
      room::SetSecretFds(g.passphrase_fd, g.pin_fd);
      st = r.RunParsed();
    }
  } catch (const std::exception& e) {
    st = Fail(ErrorCode::INTERNAL, "unexpected failure: {}", e.what());
  }
  if (!st) {
    PrintError(st.error(), g.format == "json" || AsksForJson(argc, argv));
    return ExitCode(st.error().code);
  }
  return 0;
}

}  // namespace cr::cli
