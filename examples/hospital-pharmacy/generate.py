#!/usr/bin/env python3
"""Synthetic hospital discharges and pharmacy customers for the red-team example.

The hospital's naive release keeps exact age, 5-digit ZIP and sex next to the
diagnosis; the pharmacy knows age, ZIP and sex of its customers, many of whom
were hospital patients. `eval_id` is the ground truth that scores the attack:
both files carry it only so the exercise can count correct re-identifications.
Deterministic (fixed seed): synthetic example data, no privacy decision.
Usage: generate.py OUT_DIR
"""
import csv
import random
import sys

out = sys.argv[1]
rng = random.Random(20261130)
zips = [f"{z:05d}" for z in rng.sample(range(2100, 2300), 60)]
diagnoses = ["asthma", "diabetes", "hypertension", "depression", "fracture", "hiv", "copd",
             "migraine", "pneumonia", "appendicitis"]
drugs = ["insulin", "salbutamol", "sertraline", "lisinopril", "ibuprofen", "tenofovir"]

people = []
for i in range(6000):
    people.append({"eval_id": f"p{i:05d}", "age": str(rng.randint(18, 90)),
                   "zip": rng.choice(zips), "sex": rng.choice("FM")})

patients = rng.sample(people, 3000)
with open(f"{out}/hospital.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["eval_id", "age", "zip", "sex", "diagnosis"])
    for p in patients:
        w.writerow([p["eval_id"], p["age"], p["zip"], p["sex"], rng.choice(diagnoses)])

# The pharmacy: 1,500 of the patients and 1,500 people the hospital never saw.
patient_ids = {p["eval_id"] for p in patients}
others = [p for p in people if p["eval_id"] not in patient_ids]
customers = rng.sample(patients, 1500) + rng.sample(others, 1500)
rng.shuffle(customers)
with open(f"{out}/pharmacy.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["eval_id", "age", "zip", "sex", "drug"])
    for p in customers:
        w.writerow([p["eval_id"], p["age"], p["zip"], p["sex"], rng.choice(drugs)])
