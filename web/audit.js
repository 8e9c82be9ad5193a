// The audit log checked in the page against room.pub, as `cleanroom audit
// verify` checks it (audit::Verify in src/audit/audit_log.cc): every line a
// well-formed entry, its hash over the entry without "hash" and "sig", the
// room's Ed25519 signature over that hash, seq 1, 2, 3... and each "prev" the
// hash before it.

import { sha256 } from "./api.js";

export const GENESIS = "0".repeat(64);

const FIELDS = [
  ["seq", (v) => Number.isInteger(v) && v >= 0],
  ["time", (v) => typeof v === "string"],
  ["event", (v) => typeof v === "string"],
  ["actor", (v) => typeof v === "string"],
  ["details", (v) => v !== null && typeof v === "object" && !Array.isArray(v)],
  ["prev", (v) => typeof v === "string"],
  ["hash", (v) => typeof v === "string"],
  ["sig", (v) => typeof v === "string"],
];

// The top-level members of a JSON object's text, each as [key, its raw text
// "KEY":VALUE]. The room writes entries with nlohmann::json's dump (keys
// sorted, no spaces) and hashes the same dump without "hash" and "sig": so the
// hashed bytes are this line with those two members taken out, and no number
// or string is re-serialised here (JavaScript would print 1.0 as 1).
export function topLevelMembers(line) {
  const members = [];
  let i = 0;
  const n = line.length;
  if (line[i] !== "{") return null;
  i++;
  const skipString = () => {
    i++;  // opening quote
    while (i < n && line[i] !== '"') i += line[i] === "\\" ? 2 : 1;
    if (i >= n) throw new Error("unterminated string");
    i++;
  };
  while (i < n && line[i] !== "}") {
    const start = i;
    if (line[i] !== '"') return null;
    skipString();
    const key = JSON.parse(line.slice(start, i));
    if (line[i] !== ":") return null;
    i++;
    let depth = 0;
    while (i < n) {
      const c = line[i];
      if (c === '"') { skipString(); continue; }
      if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        if (depth === 0) break;
        depth--;
      } else if (c === "," && depth === 0) break;
      i++;
    }
    members.push([key, line.slice(start, i)]);
    if (line[i] === ",") i++;
  }
  if (line[i] !== "}" || i !== n - 1) return null;
  return members;
}

function hexToBytes(hex) {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let k = 0; k < 32; k++) out[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Why `line` is not a valid entry signed by `roomSignPk`; "" when it is.
async function checkEntry(sodium, line, entry, roomSignPk) {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) return "is not a JSON object (changed)";
  for (const [name, ok] of FIELDS) {
    if (!(name in entry) || !ok(entry[name])) return `lacks a valid "${name}" field (changed)`;
  }
  if (Object.keys(entry).length !== FIELDS.length) return "has unexpected fields (changed)";
  if (entry.seq === 0) return "has seq 0 (changed)";
  const members = topLevelMembers(line);
  if (!members) return "is not a JSON object (changed)";
  const body = "{" + members.filter(([k]) => k !== "hash" && k !== "sig").map(([, raw]) => raw).join(",") + "}";
  const hash = toHex(await sha256(new TextEncoder().encode(body)));
  if (hash !== entry.hash) return "was changed: its hash does not match its contents";
  const rawHash = hexToBytes(entry.hash);
  let sig = null;
  try { sig = sodium.from_base64(entry.sig, sodium.base64_variants.URLSAFE_NO_PADDING); } catch { /* bad */ }
  if (!rawHash || !sig || sig.length !== 64 || !sodium.crypto_sign_verify_detached(sig, rawHash, roomSignPk)) {
    return "has a bad signature: not signed by the room key (forged, or changed and re-hashed)";
  }
  return "";
}

// {ok: true, entries, head, list} or {ok: false, line, reason, entries (checked before it), list}.
export async function verifyAuditLog(sodium, text, roomSignPk) {
  const list = [];
  if (text === "") return { ok: true, entries: 0, head: GENESIS, list };
  const lines = text.split("\n");
  const incomplete = lines[lines.length - 1] !== "";
  if (!incomplete) lines.pop();
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const broken = (reason) => ({ ok: false, line: i + 1, reason: `line ${i + 1} ${reason}`, entries: i, list });
    if (i === lines.length - 1 && incomplete) return broken("is incomplete: the log was cut mid-entry (truncated)");
    if (lines[i] === "") return broken("is empty (an entry was blanked out)");
    let entry;
    try { entry = JSON.parse(lines[i]); } catch { return broken("does not parse (changed)"); }
    const why = await checkEntry(sodium, lines[i], entry, roomSignPk);
    if (why) return broken(why);
    if (entry.seq !== i + 1) {
      return broken(entry.seq > i + 1
        ? `follows a gap or is out of order: expected seq ${i + 1}, found ${entry.seq}`
        : `repeats an earlier seq (entry inserted, replayed or reordered): expected seq ${i + 1}, found ${entry.seq}`);
    }
    if (entry.prev !== prev) return broken("does not chain to the entry before it (an entry was inserted, deleted or reordered)");
    prev = entry.hash;
    list.push(entry);
  }
  return { ok: true, entries: lines.length, head: prev, list };
}
