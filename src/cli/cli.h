// The command line: global flags, the registry of subcommands (one file per
// command, each thin), and the one place errors become exit codes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/error.h"

namespace cr::cli {

struct Globals {
  std::string room;             // --room DIR (or CLEANROOM_ROOM)
  std::string key;              // --key FILE (who is acting)
  std::string format = "table"; // --format table|csv|json
  std::string server;           // --server URL: a room service instead of --room
  std::string tls_ca;           // --tls-ca FILE: the CA that signed the server's certificate
  // Where a command that opens a room reads the key store's passphrase or the
  // token PIN (room/key_store.h): never from an argument.
  int passphrase_fd = -1;       // --passphrase-fd N
  int pin_fd = -1;              // --pkcs11-pin-fd N
};

// Which global flags a command reads. Each one it uses is attached to the
// command too (same variable, "Global" group), so its --help lists it and it
// may come after the command name as well as before it.
struct Uses {
  bool room = false;
  bool key = false;
  // --server URL and --tls-ca FILE: the command also runs against a room service.
  bool server = false;
  // Formats the command prints; any other --format is refused (USAGE).
  std::vector<std::string> formats = {"table", "json"};
};

class Registry {
 public:
  explicit Registry(Globals& g) : g_(g) {}
  void Add(CLI::App* app, std::function<Status()> run) { Add(app, Uses{}, std::move(run)); }
  void Add(CLI::App* app, Uses uses, std::function<Status()> run);
  // Runs the parsed leaf command after checking its --format; USAGE when none
  // was chosen.
  Status RunParsed() const;

 private:
  struct Command {
    CLI::App* app;
    Uses uses;
    std::function<Status()> run;
  };
  Globals& g_;
  std::vector<Command> commands_;
};

// The full name of a command as typed: "room init".
std::string CommandPath(const CLI::App* app);

// Whether `dispose` may shred every dataset: --yes, or on a terminal the
// operator typed the collaboration id or "yes" (surrounding blanks ignored).
// Without a terminal there is nobody to ask, so --yes is required.
bool DisposeAllConfirmed(bool yes, bool interactive, const std::optional<std::string>& answer,
                         std::string_view collaboration);

// Entry point used by apps/cleanroom.cc: parses, runs, prints
// "cleanroom: error[CODE]: message" (with --format json, one JSON object) on
// failure and returns the exit code.
int Main(int argc, char** argv);

// One per command file under src/cli/.
void RegisterKeygen(CLI::App& root, Globals& g, Registry& r);
void RegisterSecret(CLI::App& root, Globals& g, Registry& r);
void RegisterSpec(CLI::App& root, Globals& g, Registry& r);
void RegisterRoom(CLI::App& root, Globals& g, Registry& r);
void RegisterPrepare(CLI::App& root, Globals& g, Registry& r);
void RegisterIngest(CLI::App& root, Globals& g, Registry& r);
void RegisterAudit(CLI::App& root, Globals& g, Registry& r);
void RegisterDispose(CLI::App& root, Globals& g, Registry& r);
void RegisterDemo(CLI::App& root, Globals& g, Registry& r);
void RegisterGenerate(CLI::App& root, Globals& g, Registry& r);
void RegisterAnonymize(CLI::App& root, Globals& g, Registry& r);
void RegisterQuery(CLI::App& root, Globals& g, Registry& r);
void RegisterRisk(CLI::App& root, Globals& g, Registry& r);
void RegisterDatasets(CLI::App& root, Globals& g, Registry& r);  // datasets and status
void RegisterBudget(CLI::App& root, Globals& g, Registry& r);
void RegisterHelp(CLI::App& root, Globals& g, Registry& r);
void RegisterServe(CLI::App& root, Globals& g, Registry& r);
void RegisterForget(CLI::App& root, Globals& g, Registry& r);
void RegisterReport(CLI::App& root, Globals& g, Registry& r);  // `report` (the buyer's questions)
// `audit report` (the incident report), a subcommand of `audit`.
void RegisterAuditReport(CLI::App& audit, Globals& g, Registry& r);

}  // namespace cr::cli
