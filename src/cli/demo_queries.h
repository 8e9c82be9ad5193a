// The query part of `cleanroom demo`, as the parties run it against the room
// service: an ad-hoc query, a template run, a refused hostile query, and a
// receiver reading its sealed result.
#pragma once

#include <string>

#include "client/client.h"
#include "common/error.h"
#include "spec/spec.h"

namespace cr::cli {

// Runs demo steps 11-14 through the room service of an active demo room
// holding impressions and purchases (the demo spec), as acme and newsco.
Status RunDemoQueries(client::Client& acme, client::Client& newsco, const spec::Spec& spec);

}  // namespace cr::cli
