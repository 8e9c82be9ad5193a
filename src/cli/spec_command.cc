// `cleanroom spec sign` and `cleanroom spec check`.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "spec/spec.h"

namespace cr::cli {

void RegisterSpec(CLI::App& root, Globals& g, Registry& r) {
  auto* spec_cmd = root.add_subcommand("spec", "the collaboration spec");
  spec_cmd->require_subcommand(1);
  auto* sign = spec_cmd->add_subcommand("sign", "sign the exact spec bytes: writes SPEC.NAME.sig");
  static std::string spec_path, key_path;
  sign->add_option("--spec", spec_path, "the spec file")->required();
  sign->add_option("--key", key_path, "your key file (or the global --key)");
  r.Add(sign, Uses{.key = true}, [&g]() -> Status {
    std::string key = key_path.empty() ? g.key : key_path;
    if (key.empty()) return Fail(ErrorCode::USAGE, "spec sign needs --key");
    CR_ASSIGN(auto spec, spec::Load(spec_path));
    CR_ASSIGN(auto id, crypto::Identity::Load(key));
    CR_ASSIGN(auto sig, spec::Sign(spec, id));
    std::string out = spec_path + "." + sig.party + ".sig";
    CR_TRY(WriteFileAtomic(out, spec::SignatureToJson(sig) + "\n"));
    if (g.format == "json") {
      PrintJson({{"party", sig.party},
                 {"collaboration", spec.collaboration},
                 {"spec_hash", spec.hash},
                 {"signature_file", out}});
      return Ok();
    }
    fmt::print("{} signed collaboration '{}' (spec {})\nwrote {}\n", sig.party,
               spec.collaboration, spec.hash.substr(0, 16), out);
    return Ok();
  });

  auto* check = spec_cmd->add_subcommand(
      "check", "validate a spec and its key files without a room; print what it agrees");
  static std::string check_path;
  check->add_option("--spec", check_path, "the spec file")->required();
  r.Add(check, Uses{}, [&g]() -> Status {
    CR_ASSIGN(auto spec, spec::Load(check_path));
    if (g.format == "json") {
      fmt::print("{}\n", spec::Summary(spec).dump(2, ' ', false,
                                                   nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print("{}: valid\n\n{}", check_path, spec::SummaryText(spec));
    }
    return Ok();
  });
}

}  // namespace cr::cli
