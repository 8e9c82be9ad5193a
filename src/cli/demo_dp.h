// The differential-privacy part of `cleanroom demo`: the differencing attack
// that exact thresholds let through, then the same questions answered with
// noise, the stored answer of a repeat, the budget, and its refusal.
#pragma once

#include <string>

#include "client/client.h"
#include "common/error.h"

namespace cr::cli {

// Runs demo steps `first_step` and `first_step + 1` through the room service
// of an active demo room whose spec has privacy.dp (demo::CampaignSpec with
// dp) and a fresh budget, as acme. `impressions_csv` is newsco's raw file: the
// demo reads the time and cost of one impression there, as an attacker would
// know them from outside, to show what the attack recovers.
Status RunDemoDp(client::Client& acme, const std::string& impressions_csv, int first_step);

}  // namespace cr::cli
