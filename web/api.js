// The page's side of the room API: every request signed in the page with the
// party's key, byte for byte as the CLI signs (cr::http::Sign in
// src/http/signature.cc: RFC 9421 over "@method" "@target-uri"
// "content-digest", RFC 9530 Content-Digest), and sealed results opened here.

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const encoder = new TextEncoder();

// RFC 8941 sf-string, as SerializeString in signature.cc.
function sfString(s) {
  return '"' + String(s).replace(/[\\"]/g, (c) => "\\" + c) + '"';
}

export function signatureParams(created, nonce, party) {
  return `("@method" "@target-uri" "content-digest");created=${created};nonce=${sfString(nonce)};keyid=${sfString(party)};alg="ed25519"`;
}

export function signatureBase(method, targetUri, contentDigest, params) {
  return `"@method": ${method}\n"@target-uri": ${targetUri}\n"content-digest": ${contentDigest}\n"@signature-params": ${params}`;
}

export async function sha256(bytes) {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    throw new ApiError("NOT_SUPPORTED", "this page needs a secure context (https://, or http:// on 127.0.0.1) to hash requests");
  }
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
}

export async function contentDigest(sodium, bodyBytes) {
  return "sha-256=:" + sodium.to_base64(await sha256(bodyBytes), sodium.base64_variants.ORIGINAL) + ":";
}

// The three headers for one request.
export async function signRequest(sodium, identity, party, method, targetUri, bodyText, created, nonce) {
  const digest = await contentDigest(sodium, encoder.encode(bodyText));
  const params = signatureParams(created, nonce, party);
  const base = signatureBase(method, targetUri, digest, params);
  const sig = sodium.crypto_sign_detached(encoder.encode(base), identity.signSk);
  return {
    "Content-Digest": digest,
    "Signature-Input": "sig1=" + params,
    "Signature": "sig1=:" + sodium.to_base64(sig, sodium.base64_variants.ORIGINAL) + ":",
  };
}

export class Api {
  constructor(sodium, identity, party, origin = globalThis.location.origin) {
    this.sodium = sodium;
    this.identity = identity;
    this.party = party;
    this.origin = origin;
  }

  // One signed request; resolves to the parsed JSON (or text), throws ApiError
  // with the server's stable code on a refusal.
  async call(method, path, body = undefined, { text = false } = {}) {
    const bodyText = body === undefined ? "" : JSON.stringify(body);
    const created = Math.floor(Date.now() / 1000);
    const nonce = this.sodium.to_base64(this.sodium.randombytes_buf(16), this.sodium.base64_variants.URLSAFE_NO_PADDING);
    const headers = await signRequest(this.sodium, this.identity, this.party, method, this.origin + path, bodyText, created, nonce);
    if (method !== "GET") headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: method === "GET" ? undefined : bodyText,
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch {
      throw new ApiError("SERVER_UNREACHABLE", "the room service did not answer", 0);
    }
    const raw = await res.text();
    if (!res.ok) {
      let j = null;
      try { j = JSON.parse(raw); } catch { /* not ours */ }
      if (j && typeof j.error === "string") throw new ApiError(j.error, String(j.message || ""), res.status);
      throw new ApiError("INTERNAL", `the server answered HTTP ${res.status}`, res.status);
    }
    if (text) return raw;
    try {
      return JSON.parse(raw);
    } catch {
      throw new ApiError("INTERNAL", "the server's answer is not JSON", res.status);
    }
  }

  // results::OpenSealed: the box opens with this party's key and holds result `id`.
  openSealed(sealedB64, id) {
    const s = this.sodium;
    let plain;
    try {
      const box = s.from_base64(sealedB64, s.base64_variants.URLSAFE_NO_PADDING);
      plain = s.crypto_box_seal_open(box, this.identity.boxPk, this.identity.boxSk);
    } catch {
      throw new ApiError("TAMPERED", "the sealed result does not open with this key");
    }
    let rs;
    try {
      rs = JSON.parse(new TextDecoder().decode(plain));
    } catch {
      throw new ApiError("TAMPERED", "the sealed result does not hold a result");
    }
    if (!rs || rs.result_id !== id || !Array.isArray(rs.columns) || !Array.isArray(rs.rows)) {
      throw new ApiError("TAMPERED", "the sealed box holds another result");
    }
    return rs;
  }
}
