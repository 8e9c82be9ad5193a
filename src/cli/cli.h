// The command line: global flags, the registry of subcommands (one file per
// command, each thin), and the one place errors become exit codes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/error.h"

namespace cr::cli {

struct Globals {
  std::string room;             // --room DIR
  std::string key;              // --key FILE (who is acting)
  std::string format = "table"; // --format table|csv|json
};

class Registry {
 public:
  void Add(CLI::App* app, std::function<Status()> run) { commands_.push_back({app, std::move(run)}); }
  // Runs the parsed leaf command; USAGE when none was chosen.
  Status RunParsed() const;

 private:
  struct Command {
    CLI::App* app;
    std::function<Status()> run;
  };
  std::vector<Command> commands_;
};

// Entry point used by apps/cleanroom.cc: parses, runs, prints
// "cleanroom: error[CODE]: message" on failure and returns the exit code.
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

}  // namespace cr::cli
