// Column transforms applied outside the lattice search: masking (keyed
// pseudonyms, redaction, partial masks), fixed generalisation, additive and
// multiplicative noise, rank swapping and random swapping within strata.
// Each works on one column's values, row by row.
#pragma once

#include <string>
#include <vector>

#include "anonymize/random.h"
#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::anonymize {

// HMAC-SHA256 pseudonyms keyed per column: key = HKDF(secret, salt
// "cleanroom-anonymize-v1", info "pseudonym:" + column). Equal inputs give equal
// pseudonyms (joins still work), nothing is reversible without the secret.
// Output: 32 hex digits (128 bits of the MAC).
class Pseudonymizer {
 public:
  Pseudonymizer(const crypto::SecureBuffer& secret, const std::string& column);
  std::string Pseudonym(const std::string& value) const;

 private:
  crypto::KeyedHmac hmac_;
};

// Keeps the first `keep_first` and last `keep_last` characters (UTF-8 code
// points) and replaces the others with '*'. A value no longer than what is kept
// is masked entirely, so a mask never releases a whole value.
std::string MaskValue(const std::string& value, int keep_first, int keep_last);

struct NoiseSpec {
  enum class Kind { kLaplace, kGaussian, kMultiplicative };
  Kind kind = Kind::kLaplace;
  double scale = 1;  // Laplace b, Gaussian sigma, or the relative sigma for kMultiplicative
};

// Adds noise to every numeric value (empty values stay empty). Output keeps the
// column's largest number of decimals. BAD_INPUT when a value is not a number.
Status AddNoise(std::vector<std::string>* values, const NoiseSpec& spec, RandomSource& random,
                const std::string& column);

// Rank swapping: records sorted by value (numerically when all values are
// numbers); each not-yet-swapped record swaps with a random not-yet-swapped
// record at most `window` (a share of the records, at least one) ranks above
// it. Keeps the column's multiset; no value moves more than the window in rank.
Status RankSwap(std::vector<std::string>* values, double window, RandomSource& random,
                const std::string& column);

// Random permutation of the values within each stratum (rows with equal
// `strata` keys; one stratum when `strata` is empty).
void RandomSwap(std::vector<std::string>* values, const std::vector<std::string>& strata,
                RandomSource& random);

}  // namespace cr::anonymize
