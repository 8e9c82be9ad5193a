#!/bin/sh
# Red team: attack the naive hospital release with the pharmacy's customer
# list, anonymise it with `cleanroom anonymize`, attack again, print the drop.
# Run from anywhere after `make`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CLEANROOM:-$root/build/bin/cleanroom}
out=${OUT:-$(mktemp -d)}
python3 "$here/generate.py" "$out"

attack() {
  "$bin" --format json risk --input "$1" --qi age,zip,sex --sensitive diagnosis \
    --aux "$out/pharmacy.csv" --link age,zip,sex --truth eval_id \
    --report "$2.json" --html "$2.html" >/dev/null
}

echo "--- attack on the naive release"
attack "$out/hospital.csv" "$out/naive"
echo "--- anonymise"
"$bin" anonymize --config "$here/anon.yaml" --input "$out/hospital.csv" \
  --out "$out/released.csv" --report "$out/anonymize.json"
echo "--- attack on the anonymised release"
attack "$out/released.csv" "$out/released"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
before = json.load(open(f"{out}/naive.json"))
after = json.load(open(f"{out}/released.json"))
rows = [("sample uniques", "sample_uniques", None), ("max prosecutor risk", "prosecutor", "max"),
        ("records at risk", "records_at_risk", None)]
print(f"{'':32}{'naive':>12}{'anonymised':>12}")
for label, key, sub in rows:
    b, a = before[key], after[key]
    if sub:
        b, a = b[sub], a[sub]
    print(f"{label:32}{b:>12.4g}{a:>12.4g}")
for label, key in [("pharmacy customers singled out", "reidentified"),
                   ("  of which correct", "correct"),
                   ("diagnoses learned for certain", "disclosed")]:
    print(f"{label:32}{before['linkage'][key]:>12}{after['linkage'][key]:>12}")
print(f"\nreports: {out}/naive.html and {out}/released.html")
PY
