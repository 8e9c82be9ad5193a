#!/bin/sh
# Releases the extract and shows the report. Run from anywhere after `make`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CLEANROOM:-$root/build/bin/cleanroom}
out=${OUT:-$(mktemp -d)}
"$bin" anonymize --config "$here/anon.yaml" --input "$root/data/adult/adult.csv" \
  --out "$out/adult-extract.csv" --report "$out/report.json"
echo "--- first records of $out/adult-extract.csv"
head -5 "$out/adult-extract.csv"
echo "--- report (without the class-size histogram)"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['classes'].pop('histogram'); print(json.dumps(r, indent=2))" "$out/report.json"
