// `cleanroom keygen` and `cleanroom secret new`.
#include <fmt/core.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "spec/spec.h"

namespace cr::cli {

void RegisterKeygen(CLI::App& root, Globals& g, Registry& r) {
  auto* cmd = root.add_subcommand("keygen", "create an identity: NAME.key (secret) and NAME.pub");
  static std::string name, out = ".";
  cmd->add_option("--name", name, "party name")->required();
  cmd->add_option("--out", out, "output folder");
  r.Add(cmd, [&g]() -> Status {
    // The name becomes the party's name in the spec (and its file names): one
    // no spec accepts would only fail later, and "../x" would write elsewhere.
    if (!spec::IsPartyName(name)) {
      return Fail(ErrorCode::USAGE, "--name must be a party name as the spec allows ({})",
                  spec::PartyNamePattern());
    }
    CR_TRY(MakeDirs(out));
    auto id = crypto::Identity::Generate();
    CR_TRY(crypto::WriteIdentityFiles(id, out, name));
    if (g.format == "json") {
      PrintJson({{"name", name},
                 {"key_file", JoinPath(out, name + ".key")},
                 {"pub_file", JoinPath(out, name + ".pub")},
                 {"fingerprint", id.pub().Fingerprint()}});
      return Ok();
    }
    fmt::print("wrote {} (secret, mode 0600) and {}\nfingerprint {}\n",
               JoinPath(out, name + ".key"), JoinPath(out, name + ".pub"),
               id.pub().Fingerprint());
    return Ok();
  });
}

void RegisterSecret(CLI::App& root, Globals& g, Registry& r) {
  auto* secret = root.add_subcommand("secret", "the parties' shared pseudonymisation secret");
  secret->require_subcommand(1);
  auto* cmd = secret->add_subcommand("new", "write a fresh 256-bit shared secret");
  static std::string out;
  cmd->add_option("--out", out, "file to write (mode 0600, never overwritten)")->required();
  r.Add(cmd, [&g]() -> Status {
    CR_TRY(crypto::WriteNewSharedSecret(out));
    if (g.format == "json") {
      PrintJson({{"secret_file", out}, {"bits", 256}});
      return Ok();
    }
    fmt::print("wrote {} (256-bit secret, mode 0600): share it with the other parties only, "
               "never with the room\n", out);
    return Ok();
  });
}

}  // namespace cr::cli
