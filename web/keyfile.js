// The party's key file as the page holds it: parsed from the text keygen
// wrote (crypto::Identity::FromText in src/crypto/crypto.cc), in memory only.

const KEY_PREFIX = "crkey1:";
const PUB_PREFIX = "crpub1:";

export class KeyFileError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// The party a key file speaks for, as the CLI names it (src/client/client.cc,
// PartyOfKeyFile): NAME.key -> NAME. null when the name is not NAME.key.
export function partyOfFileName(fileName) {
  const base = String(fileName || "").split(/[\\/]/).pop();
  if (!base.endsWith(".key") || base.length === 4) return null;
  return base.slice(0, -4);
}

// Same text, same refusals as Identity::FromText: a .pub is named for what it
// is, anything else is "not a cleanroom secret key".
export function parseKeyText(sodium, text) {
  const t = String(text).trim();
  if (t.startsWith(PUB_PREFIX)) {
    throw new KeyFileError("KEY_INVALID",
      "this is a public key (crpub1:...), not a secret key: signing needs the secret NAME.key file that keygen wrote next to NAME.pub");
  }
  if (!t.startsWith(KEY_PREFIX)) {
    throw new KeyFileError("KEY_INVALID", "not a cleanroom secret key (expected crkey1:...)");
  }
  let raw;
  try {
    raw = sodium.from_base64(t.slice(KEY_PREFIX.length), sodium.base64_variants.URLSAFE_NO_PADDING);
  } catch {
    throw new KeyFileError("KEY_INVALID", "malformed secret key");
  }
  const signLen = sodium.crypto_sign_SECRETKEYBYTES;
  const boxLen = sodium.crypto_box_SECRETKEYBYTES;
  if (raw.length !== signLen + boxLen) throw new KeyFileError("KEY_INVALID", "malformed secret key");
  const signSk = raw.slice(0, signLen);
  const boxSk = raw.slice(signLen);
  raw.fill(0);
  // An Ed25519 secret key is seed || public key (what crypto_sign_ed25519_sk_to_pk
  // copies; that function is not in the wrappers' standard build).
  const signPk = signSk.slice(32);
  const boxPk = sodium.crypto_scalarmult_base(boxSk);
  return { signSk, boxSk, signPk, boxPk, fingerprint: fingerprint(sodium, signPk, boxPk) };
}

// PublicIdentity::Fingerprint: hex of the first 8 bytes of BLAKE2b over both
// public keys; the spec's summary lists it for each party.
export function fingerprint(sodium, signPk, boxPk) {
  const both = new Uint8Array(signPk.length + boxPk.length);
  both.set(signPk, 0);
  both.set(boxPk, signPk.length);
  return sodium.to_hex(sodium.crypto_generichash(8, both));
}

// A public identity's text (room.pub): the Ed25519 key the audit log is signed with.
export function parsePublicText(sodium, text) {
  const t = String(text).trim();
  if (!t.startsWith(PUB_PREFIX)) throw new KeyFileError("KEY_INVALID", "not a cleanroom public key (expected crpub1:...)");
  const raw = sodium.from_base64(t.slice(PUB_PREFIX.length), sodium.base64_variants.URLSAFE_NO_PADDING);
  if (raw.length !== 64) throw new KeyFileError("KEY_INVALID", "malformed public key");
  return { signPk: raw.slice(0, 32), boxPk: raw.slice(32) };
}

// Overwrites the secret halves: called on sign-out.
export function wipe(identity) {
  if (!identity) return;
  identity.signSk.fill(0);
  identity.boxSk.fill(0);
}
