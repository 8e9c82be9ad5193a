#!/usr/bin/env python3
"""Writes data/bank-*.csv: five banks' IT spend lines (deterministic).

Each bank has budget lines (line_id, category, department, amount in
thousands of euros). The design gives the demo one cell of each kind:
  cloud/operations      all five banks, none dominant: released;
  mainframe/operations  only bank-a and bank-b (many lines): too few contributors;
  network/markets       bank-c spends 75% of the cell: withheld by dominance;
Every other cell is spread over at least three banks.
"""
import os
import random

BANKS = ["bank-a", "bank-b", "bank-c", "bank-d", "bank-e"]
CATEGORIES = ["cloud", "software", "hardware", "network", "security"]
DEPARTMENTS = ["retail", "markets", "operations"]

# (category, department) -> {bank: total in thousands of euros}
TOTALS = {
    ("cloud", "operations"): {"bank-a": 4100, "bank-b": 3200, "bank-c": 2500, "bank-d": 4000, "bank-e": 2900},
    ("mainframe", "operations"): {"bank-a": 5200, "bank-b": 4800},
    ("network", "markets"): {"bank-a": 200, "bank-b": 150, "bank-c": 1200, "bank-d": 50},
}


def main():
    rng = random.Random(14)
    for cat in CATEGORIES:
        for dep in DEPARTMENTS:
            if (cat, dep) in TOTALS:
                continue
            TOTALS[(cat, dep)] = {b: rng.randint(300, 900) for b in BANKS}
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(here, "data"), exist_ok=True)
    for bank in BANKS:
        rows = []
        for (cat, dep), parts in sorted(TOTALS.items()):
            if bank not in parts:
                continue
            lines = 25
            total = parts[bank]
            # Lines of different sizes that add up to the bank's total exactly.
            weights = [rng.randint(1, 9) for _ in range(lines)]
            amounts = [round(total * w / sum(weights), 2) for w in weights]
            amounts[-1] = round(total - sum(amounts[:-1]), 2)
            for i, a in enumerate(amounts):
                rows.append(f"{bank}-{cat}-{dep}-{i:02d},{cat},{dep},{a:.2f}")
        with open(os.path.join(here, "data", bank + ".csv"), "w") as f:
            f.write("line_id,category,department,amount\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
