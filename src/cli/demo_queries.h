// The query part of `cleanroom demo`: an ad-hoc query, a template run, a
// refused hostile query, and a receiver reading its sealed result.
#pragma once

#include <string>

#include "common/error.h"

namespace cr::cli {

// Runs demo steps 10-13 against an active demo room holding impressions and
// purchases (the demo spec). Key paths are the parties' .key files.
Status RunDemoQueries(const std::string& room_dir, const std::string& acme_key,
                      const std::string& newsco_key);

}  // namespace cr::cli
