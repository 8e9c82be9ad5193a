#include "anonymize/models.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace cr::anonymize {

std::string PrivacyModels::SensitiveAttribute() const {
  if (l) return l->attribute;
  if (t) return t->attribute;
  return "";
}

Status PrivacyModels::Validate() const {
  if (k < 1) return Fail(ErrorCode::BAD_INPUT, "privacy models: k must be at least 1 (is {})", k);
  if (!(suppression_limit >= 0 && suppression_limit <= 1)) {
    return Fail(ErrorCode::BAD_INPUT,
                "privacy models: the suppression limit must be a share in [0, 1] (is {})",
                suppression_limit);
  }
  if (l) {
    if (l->attribute.empty()) {
      return Fail(ErrorCode::BAD_INPUT, "privacy models: l-diversity needs an attribute");
    }
    if (!(l->l >= 1) || !std::isfinite(l->l)) {
      return Fail(ErrorCode::BAD_INPUT, "privacy models: l must be at least 1 (is {})", l->l);
    }
    if (l->kind == LDiversity::Kind::kRecursive && (!(l->c > 0) || !std::isfinite(l->c))) {
      return Fail(ErrorCode::BAD_INPUT,
                  "privacy models: c of recursive l-diversity must be above 0 (is {})", l->c);
    }
  }
  if (t) {
    if (t->attribute.empty()) {
      return Fail(ErrorCode::BAD_INPUT, "privacy models: t-closeness needs an attribute");
    }
    if (!(t->t >= 0 && t->t <= 1)) {
      return Fail(ErrorCode::BAD_INPUT, "privacy models: t must be in [0, 1] (is {})", t->t);
    }
  }
  if (l && t && l->attribute != t->attribute) {
    return Fail(ErrorCode::BAD_INPUT,
                "privacy models: l-diversity ({}) and t-closeness ({}) must name the same "
                "attribute",
                l->attribute, t->attribute);
  }
  return Ok();
}

bool PrivacyModels::AllMonotone() const {
  if (t) return false;
  return !l || l->kind == LDiversity::Kind::kDistinct;
}

Result<ClassChecker> ClassChecker::Create(const PrivacyModels& models,
                                          std::vector<uint32_t> sensitive_counts,
                                          std::vector<uint32_t> ordered_rank, bool ordered) {
  CR_TRY(models.Validate());
  if (!models.SensitiveAttribute().empty() && sensitive_counts.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "class checker: the models need the counts of {}",
                models.SensitiveAttribute());
  }
  if (ordered) {
    if (ordered_rank.size() != sensitive_counts.size()) {
      return Fail(ErrorCode::BAD_INPUT,
                  "class checker: {} ranks for {} sensitive values (one each is needed)",
                  ordered_rank.size(), sensitive_counts.size());
    }
    std::vector<uint8_t> seen(ordered_rank.size(), 0);
    for (uint32_t r : ordered_rank) {
      if (r >= seen.size() || seen[r]++) {
        return Fail(ErrorCode::BAD_INPUT,
                    "class checker: the ranks are not a permutation of the sensitive values");
      }
    }
  }
  return ClassChecker(models, std::move(sensitive_counts), std::move(ordered_rank), ordered);
}

ClassChecker::ClassChecker(const PrivacyModels& models, std::vector<uint32_t> sensitive_counts,
                           std::vector<uint32_t> ordered_rank, bool ordered)
    : models_(models), rank_(std::move(ordered_rank)), ordered_(ordered) {
  uint64_t total = 0;
  for (uint32_t c : sensitive_counts) total += c;
  global_.resize(sensitive_counts.size());
  for (size_t i = 0; i < sensitive_counts.size(); ++i) {
    global_[i] = total ? static_cast<double>(sensitive_counts[i]) / static_cast<double>(total) : 0;
  }
  if (models_.l) log_l_ = std::log(models_.l->l);
}

double ClassChecker::Distance(uint64_t size, const uint32_t* codes, const uint32_t* counts,
                              size_t m) const {
  const double n = static_cast<double>(size);
  if (!ordered_) {
    // Equal ground distance: EMD is half the L1 distance; values absent from
    // the class contribute their global share.
    double d = 0, covered = 0;
    for (size_t i = 0; i < m; ++i) {
      d += std::fabs(counts[i] / n - global_[codes[i]]);
      covered += global_[codes[i]];
    }
    return 0.5 * (d + std::max(0.0, 1.0 - covered));
  }
  // Ordered distance: EMD = sum of |cumulative difference| / (values - 1).
  const size_t v = global_.size();
  if (v < 2) return 0;
  scratch_.assign(v, 0.0);
  for (size_t i = 0; i < v; ++i) scratch_[rank_[i]] -= global_[i];
  for (size_t i = 0; i < m; ++i) scratch_[rank_[codes[i]]] += counts[i] / n;
  double cum = 0, d = 0;
  for (size_t i = 0; i + 1 < v; ++i) {
    cum += scratch_[i];
    d += std::fabs(cum);
  }
  return d / static_cast<double>(v - 1);
}

ClassChecker::Verdict ClassChecker::Check(uint64_t size, const uint32_t* codes,
                                          const uint32_t* counts, size_t m) const {
  Verdict v;
  if (size < static_cast<uint64_t>(models_.k)) v.monotone_ok = false;
  if (models_.l) {
    const auto& l = *models_.l;
    switch (l.kind) {
      case LDiversity::Kind::kDistinct:
        if (static_cast<double>(m) < l.l) v.monotone_ok = false;
        break;
      case LDiversity::Kind::kEntropy: {
        double h = 0;
        for (size_t i = 0; i < m; ++i) {
          double p = counts[i] / static_cast<double>(size);
          h -= p * std::log(p);
        }
        // A tiny tolerance so a class with exactly l equally frequent values passes.
        if (h + 1e-12 < log_l_) v.all_ok = false;
        break;
      }
      case LDiversity::Kind::kRecursive: {
        size_t li = static_cast<size_t>(std::ceil(l.l));
        if (m < li) {
          v.all_ok = false;
          break;
        }
        std::vector<uint32_t> r(counts, counts + m);
        std::sort(r.begin(), r.end(), std::greater<>());
        uint64_t tail = 0;
        for (size_t i = li - 1; i < m; ++i) tail += r[i];
        if (!(r[0] < l.c * static_cast<double>(tail))) v.all_ok = false;
        break;
      }
    }
  }
  if (models_.t && Distance(size, codes, counts, m) > models_.t->t + 1e-12) v.all_ok = false;
  v.all_ok = v.all_ok && v.monotone_ok;
  return v;
}

}  // namespace cr::anonymize
