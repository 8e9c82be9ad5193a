#!/bin/sh
# Runs the walk-through of README.md in a temporary folder.
set -eu
B=${CLEANROOM:-build/bin/cleanroom}
X=$(dirname "$0")
W=$(mktemp -d)
echo "working in $W"
head -c 24 /dev/urandom | base64 > "$W/operator.passphrase"
chmod 600 "$W/operator.passphrase"
export CLEANROOM_PASSPHRASE_FILE="$W/operator.passphrase"
mkdir -p "$W/keys"
cp "$X/spec.yaml" "$W/"
parties="bank-a bank-b bank-c bank-d bank-e consultant"
for p in $parties; do $B keygen --name $p --out "$W/keys"; done
$B secret new --out "$W/shared.secret"
$B room init --room "$W/room" --spec "$W/spec.yaml"
for p in $parties; do $B spec sign --spec "$W/spec.yaml" --key "$W/keys/$p.key"; done
$B room activate --room "$W/room" --sig "$W"/spec.yaml.*.sig
for b in bank-a bank-b bank-c bank-d bank-e; do
  $B prepare --spec "$W/spec.yaml" --dataset it_spend --input "$X/data/$b.csv" \
    --key "$W/keys/$b.key" --secret "$W/shared.secret" --room-pub "$W/room/room.pub" \
    --out "$W/$b.crpkg"
  $B ingest --room "$W/room" "$W/$b.crpkg"
done
$B datasets --room "$W/room"
$B status --room "$W/room"
$B query --room "$W/room" --key "$W/keys/consultant.key" --sql "SELECT category, department,
  SUM(amount) AS spend, COUNT(DISTINCT line_id) AS lines FROM it_spend
  GROUP BY category, department ORDER BY category, department"
id=$($B --format json run --room "$W/room" --key "$W/keys/consultant.key" \
  --template spend_benchmark | sed 's/.*"result_id":"\([0-9a-f]*\)".*/\1/')
$B results get --room "$W/room" --key "$W/keys/bank-c.key" --id "$id"
