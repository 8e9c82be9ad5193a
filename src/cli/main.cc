#include <cstdio>

#include <fmt/core.h>

#include "cli/cli.h"
#include "common/env.h"
#include "crypto/crypto.h"

namespace cr::cli {

Status Registry::RunParsed() const {
  // The deepest parsed command wins ("room init" over "room").
  const Command* chosen = nullptr;
  for (const auto& c : commands_) {
    if (c.app->parsed()) chosen = &c;
  }
  if (!chosen) return Fail(ErrorCode::USAGE, "no command given; see cleanroom --help");
  return chosen->run();
}

int Main(int argc, char** argv) {
  CLI::App app{"cleanroom: a data clean room. Parties pool encrypted data; only agreed, "
               "anonymised answers leave.",
               "cleanroom"};
  app.require_subcommand(1);
  // Global flags may follow the command, as in `cleanroom room init --room DIR`.
  app.fallthrough();
  Globals g;
  app.add_option("--room", g.room, "room folder")->envname("CLEANROOM_ROOM");
  app.add_option("--key", g.key, "key file of the acting party");
  app.add_option("--format", g.format, "output format")
      ->check(CLI::IsMember({"table", "csv", "json"}));

  Registry r;
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    fmt::print(stderr, "{}\n", Error{ErrorCode::USAGE, e.what()}.ToString());
    return ExitCode(ErrorCode::USAGE);
  }

  Status st;
  try {
    if (auto init = crypto::Init(); !init) {
      st = init;
    } else if (auto clock = InstallClockOverride(); !clock) {
      st = clock;  // a fake clock is refused or honoured, never silently ignored
    } else {
      st = r.RunParsed();
    }
  } catch (const std::exception& e) {
    st = Fail(ErrorCode::INTERNAL, "unexpected failure: {}", e.what());
  }
  if (!st) {
    std::fflush(stdout);
    fmt::print(stderr, "{}\n", st.error().ToString());
    return ExitCode(st.error().code);
  }
  return 0;
}

}  // namespace cr::cli
