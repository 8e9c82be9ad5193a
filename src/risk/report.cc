#include "risk/report.h"

#include <fmt/core.h>

#include <cmath>
#include <utility>
#include <vector>

#include "anonymize/table.h"
#include "common/files.h"
#include "common/html.h"

namespace cr::risk {

namespace {

std::string Pct(double x) { return fmt::format("{:.2f}%", 100 * x); }

std::string Escape(const std::string& s) { return HtmlEscape(s); }

using Bars = std::vector<std::pair<std::string, uint64_t>>;

// Classes per size bucket (the shape of the class-size distribution).
Bars ClassSizeBars(const RiskReport& r) {
  const std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> buckets = {
      {"1", {1, 1}},       {"2", {2, 2}},       {"3-4", {3, 4}},          {"5-9", {5, 9}},
      {"10-19", {10, 19}}, {"20-49", {20, 49}}, {"50+", {50, UINT64_MAX}}};
  Bars bars;
  for (const auto& [label, range] : buckets) {
    uint64_t n = 0;
    for (auto& [size, count] : r.class_size_histogram) {
      if (size >= range.first && size <= range.second) n += count;
    }
    bars.emplace_back(label, n);
  }
  return bars;
}

// Records per prosecutor-risk bucket (1 / class size).
Bars RiskBars(const RiskReport& r) {
  const std::vector<std::pair<std::string, std::pair<double, double>>> buckets = {
      {"<=1%", {0, 0.01}},    {"1-5%", {0.01, 0.05}}, {"5-10%", {0.05, 0.1}},
      {"10-20%", {0.1, 0.2}}, {"20-50%", {0.2, 0.5}}, {"50-100%", {0.5, 1.0}}};
  Bars bars;
  for (const auto& [label, range] : buckets) {
    uint64_t n = 0;
    for (auto& [size, count] : r.class_size_histogram) {
      double risk = 1.0 / static_cast<double>(size);
      if (risk > range.first && risk <= range.second) n += size * count;
    }
    bars.emplace_back(label, n);
  }
  return bars;
}

std::string SvgBars(const Bars& bars, const std::string& title, const std::string& unit) {
  const int width = 560, height = 250, left = 50, bottom = 40, top = 45;
  uint64_t max = 1;
  for (auto& [l, v] : bars) max = std::max(max, v);
  const double slot = static_cast<double>(width - left - 10) / static_cast<double>(bars.size());
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"{}\"><text x=\"{}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{}</text>"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>",
      width, height, Escape(title), left, Escape(title), left, height - bottom, width - 10,
      height - bottom);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double h = static_cast<double>(height - bottom - top) *
                     static_cast<double>(bars[i].second) / static_cast<double>(max);
    const double x = left + slot * static_cast<double>(i) + slot * 0.1;
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#3b6ea5\">"
        "<title>{}: {} {}</title></rect>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{}</text>"
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
        x, height - bottom - h, slot * 0.8, h, Escape(bars[i].first), bars[i].second, unit,
        x + slot * 0.4, height - bottom - h - 4, bars[i].second, x + slot * 0.4,
        height - bottom + 16, Escape(bars[i].first));
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text></svg>", left, height - 6,
                   Escape(unit));
  return s;
}

std::string Row(const std::string& k, const std::string& v) {
  return "<tr><th>" + Escape(k) + "</th><td>" + Escape(v) + "</td></tr>";
}

}  // namespace

std::vector<std::string> Findings(const RiskReport& r, const LinkageReport* l) {
  std::vector<std::string> out;
  if (r.sample_uniques) {
    out.push_back(fmt::format(
        "{} of {} records ({}) are unique on the quasi-identifiers: anyone who knows those "
        "values about a person in the data can single out their record.",
        r.sample_uniques, r.records, Pct(r.sample_uniqueness)));
  } else {
    out.push_back(
        fmt::format("No record is unique: every record shares its quasi-identifiers "
                    "with at least {} others.",
                    r.k - 1));
  }
  out.push_back(
      fmt::format("The highest re-identification risk of a record is {} (smallest group: "
                  "{} records); the average is {}.",
                  Pct(r.prosecutor_max), r.k, Pct(r.prosecutor_avg)));
  out.push_back(fmt::format("{} records ({}) have a risk above the {} threshold.",
                            r.records_at_risk, Pct(r.records_at_risk_share), Pct(r.threshold)));
  if (r.sensitive && r.sensitive->homogeneous_records) {
    out.push_back(
        fmt::format("In {} groups ({} records) everyone has the same {}: it is disclosed without "
                    "identifying anyone.",
                    r.sensitive->homogeneous_classes, r.sensitive->homogeneous_records,
                    r.sensitive->attribute));
  }
  if (r.population && std::isfinite(r.population->pitman)) {
    out.push_back(
        fmt::format("In a population of {}, about {:.0f} people are estimated to be "
                    "unique on these attributes (Pitman model).",
                    r.population->population, r.population->pitman));
  }
  if (l) {
    out.push_back(fmt::format(
        "Linking {} auxiliary records singled out {} ({}) of them to exactly one released record.",
        l->aux_records, l->reidentified,
        Pct(l->aux_records
                ? static_cast<double>(l->reidentified) / static_cast<double>(l->aux_records)
                : 0.0)));
    if (l->correct) {
      out.push_back(fmt::format("{} of those re-identifications are correct.", *l->correct));
    }
    if (l->disclosed && *l->disclosed) {
      out.push_back(
          fmt::format("For {} auxiliary records the sensitive value is learned with "
                      "certainty (all candidates share it).",
                      *l->disclosed));
    }
  }
  return out;
}

std::string RenderHtml(const RiskReport& r, const LinkageReport* l, const std::string& title) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Re-identification "
      "risk: " +
      Escape(title) +
      "</title><style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
      "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;"
      "text-align:left}th{background:#f3f3f3}.finding{background:#fff4e5;border-left:4px solid "
      "#e08a00;padding:6px 10px;margin:6px 0}</style></head><body>\n<h1>Re-identification risk</h1>"
      "<p>Release: <code>" +
      Escape(title) + "</code></p>\n<h2>Findings</h2>\n";
  for (const auto& f : Findings(r, l)) h += "<p class=\"finding\">" + Escape(f) + "</p>\n";
  h += "<h2>Metrics</h2><table>";
  h += Row("records", std::to_string(r.records));
  h += Row("equivalence classes", std::to_string(r.classes));
  h += Row("k (smallest class)", std::to_string(r.k));
  h += Row("sample uniques", fmt::format("{} ({})", r.sample_uniques, Pct(r.sample_uniqueness)));
  h += Row("prosecutor risk (max / avg)", Pct(r.prosecutor_max) + " / " + Pct(r.prosecutor_avg));
  h += Row("journalist risk (max / avg)", Pct(r.journalist_max) + " / " + Pct(r.journalist_avg));
  h += Row("marketer risk", Pct(r.marketer));
  h += Row(fmt::format("records at risk (> {})", Pct(r.threshold)),
           fmt::format("{} ({})", r.records_at_risk, Pct(r.records_at_risk_share)));
  if (r.sensitive) {
    h += Row("sensitive attribute", r.sensitive->attribute);
    h += Row("distinct l", std::to_string(r.sensitive->distinct_l));
    h += Row("entropy l", fmt::format("{:.3f}", r.sensitive->entropy_l));
    h += Row("t-closeness", fmt::format("{:.4f}", r.sensitive->t));
  }
  if (r.population) {
    auto est = [](double v) { return std::isfinite(v) ? fmt::format("{:.1f}", v) : "n/a"; };
    h += Row("population", std::to_string(r.population->population));
    h += Row("population uniques (Zayatz)", est(r.population->zayatz));
    h += Row("population uniques (Pitman)", est(r.population->pitman));
    h += Row("population uniques (SNB)", est(r.population->snb));
  }
  h += "</table>\n<h2>Distributions</h2>\n";
  h += SvgBars(ClassSizeBars(r), "Equivalence classes by size", "classes") + "\n";
  h += SvgBars(RiskBars(r), "Records by re-identification risk", "records") + "\n";
  if (l) {
    h += "<h2>Linkage attack</h2><table>";
    h += Row("auxiliary records", std::to_string(l->aux_records));
    h += Row("distinct released patterns", std::to_string(l->release_patterns));
    h += Row("matched (at least one candidate)", std::to_string(l->matched));
    h += Row("re-identified (exactly one candidate)", std::to_string(l->reidentified));
    if (l->correct) h += Row("correct re-identifications", std::to_string(*l->correct));
    if (l->disclosed) h += Row("sensitive value disclosed", std::to_string(*l->disclosed));
    h += "</table>\n";
    Bars bars;
    for (const char* b : {"0", "1", "2-4", "5-9", "10-19", "20+"}) {
      auto it = l->candidates.find(b);
      bars.emplace_back(b, it == l->candidates.end() ? 0 : it->second);
    }
    h += SvgBars(bars, "Auxiliary records by number of candidates", "aux records") + "\n";
  }
  h += "</body></html>\n";
  return h;
}

std::string RecordsCsv(const RiskReport& risk) {
  std::string out = "record,class_size,prosecutor_risk,at_risk\n";
  out.reserve(out.size() + risk.record_class_size.size() * 24);
  for (size_t r = 0; r < risk.record_class_size.size(); ++r) {
    uint64_t size = risk.record_class_size[r];
    double p = 1.0 / static_cast<double>(size);
    out += fmt::format("{},{},{:.6g},{}\n", r + 1, size, p, p > risk.threshold ? "true" : "false");
  }
  return out;
}

Result<RiskResult> RunRisk(const RiskRun& run) {
  // The command layer checks its flags first; this keeps the library closed
  // for any other caller.
  if (run.aux.empty() != run.link.empty()) {
    return Fail(ErrorCode::BAD_INPUT,
                "risk: auxiliary data and link columns go together (one is missing)");
  }
  if (!run.truth.empty() && run.aux.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "risk: a truth column needs auxiliary data to link with");
  }
  CR_ASSIGN(anonymize::Table table, anonymize::ReadTableFile(run.input));
  RiskOptions opt;
  opt.qis = SplitList(run.qi);
  opt.sensitive = run.sensitive;
  opt.threshold = run.threshold;
  opt.population = run.population;
  RiskResult out;
  CR_ASSIGN(out.risk, AnalyzeRisk(table, opt));
  out.json = ToJson(out.risk);
  if (!run.aux.empty()) {
    CR_ASSIGN(anonymize::Table aux, anonymize::ReadTableFile(run.aux));
    LinkageOptions lo;
    lo.link = SplitList(run.link);
    lo.truth = run.truth;
    lo.sensitive = run.sensitive;
    CR_ASSIGN(out.linkage, RunLinkage(table, aux, lo));
    out.json["linkage"] = ToJson(*out.linkage);
  }
  const LinkageReport* l = out.linkage ? &*out.linkage : nullptr;
  for (const auto& f : Findings(out.risk, l)) out.summary += f + "\n";
  // Which records are at risk is about the release's own rows: written 0600.
  if (!run.records.empty()) CR_TRY(WriteFileAtomic(run.records, RecordsCsv(out.risk), 0600));
  if (!run.report.empty()) CR_TRY(WriteFileAtomic(run.report, out.json.dump(2) + "\n"));
  if (!run.html.empty()) CR_TRY(WriteFileAtomic(run.html, RenderHtml(out.risk, l, run.input)));
  return out;
}

}  // namespace cr::risk
