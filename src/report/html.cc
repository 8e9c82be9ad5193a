#include "report/html.h"

#include <fmt/format.h>

#include <ctime>

#include "common/html.h"

namespace cr::report {

std::string Escape(std::string_view text) { return HtmlEscape(text); }

std::string Page(std::string_view title, std::string_view subtitle, std::string_view body) {
  return fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{0}</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:80em;color:#1b1b1b;padding:0 1em}}
#activity{{font-size:.8em}} .wide{{overflow-x:auto}}
h1{{font-size:1.6em;margin-bottom:.2em}} h2{{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}}
table{{border-collapse:collapse;margin:.6em 0}} th,td{{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}}
th{{background:#eef1f4}} td.n{{text-align:right;font-variant-numeric:tabular-nums}}
.flag{{background:#fff1d6;border-left:4px solid #d98a00;padding:.4em .8em;margin:.4em 0}}
.ok{{color:#17672e}} .sub{{color:#555}} .q{{font-style:italic}} code{{background:#f3f3f3;padding:0 .2em}}
</style></head><body>
<h1>{0}</h1>
<p class="sub">{1}</p>
{2}
</body></html>
)",
                     Escape(title), Escape(subtitle), body);
}

long long ParseTime(std::string_view t) {
  int y, mo, d, h = 0, mi = 0, s = 0;
  char tail = 0;
  std::string text(t);
  std::tm tm{};
  if (text.size() == 10) {
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3) return -1;
  } else if (text.size() == 20 && text[10] == 'T' && text[19] == 'Z') {
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6)
      return -1;
  } else {
    return -1;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<long long>(::timegm(&tm));
}

std::string CountsText(const std::map<std::string, int64_t>& counts, std::string_view none) {
  std::string out;
  for (const auto& [k, v] : counts) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", k, v);
  return out.empty() ? std::string(none) : out;
}

}  // namespace cr::report
