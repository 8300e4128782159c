// @ts-check
/**
 * Verify a webhook from the joint action plan tracker (Standard Webhooks signatures).
 *
 * Node 18+, no npm packages (node:crypto only). Types are JSDoc, so TypeScript checks this
 * file as it is (`// @ts-check`, or `checkJs`); in a .ts file, copy it with the annotations
 * written inline. Call verify() with the secret shown when the webhook was created (or
 * rotated), the request's headers and its RAW body, before parsing the JSON, e.g. Express:
 *
 *   app.post("/hooks/tracker", express.raw({ type: "application/json" }), (req, res) => {
 *     if (!verify(SECRET, req.headers, req.body)) return res.sendStatus(401);
 *     const event = JSON.parse(req.body.toString("utf8"));
 *     ...
 *   });
 *
 * From a shell: `node verify_webhook.mjs SECRET HEADERS.json BODY-FILE` exits 0 when valid.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { argv, exit } from "node:process";
import { fileURLToPath } from "node:url";

/**
 * @param {string} secret `whsec_...` as shown once by the tracker
 * @param {Record<string, string | string[] | undefined>} headers names in any case
 * @param {Uint8Array | string} body the raw body, exactly as received
 * @param {{ toleranceSeconds?: number, now?: number }} [options] now: Unix seconds
 * @returns {boolean} true when a v1 signature matches and the timestamp is recent
 */
export function verify(secret, headers, body, options = {}) {
  const { toleranceSeconds = 300, now = Date.now() / 1000 } = options;
  /** @type {Record<string, string>} */
  const lowered = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) lowered[name.toLowerCase()] = Array.isArray(value) ? value.join(" ") : value;
  }
  const msgId = lowered["webhook-id"];
  const timestamp = lowered["webhook-timestamp"];
  const signatures = lowered["webhook-signature"];
  if (!msgId || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return false;
  const sentAt = Number(timestamp);
  if (Math.abs(now - sentAt) > toleranceSeconds) return false; // too old or from the future
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${msgId}.${sentAt}.`)
    .update(typeof body === "string" ? Buffer.from(body, "utf8") : body)
    .digest();
  // Several signatures (space-separated) while a rotated secret is still honoured.
  for (const candidate of signatures.split(" ")) {
    const [version, signature] = candidate.split(",", 2);
    if (version !== "v1" || !signature) continue;
    const given = Buffer.from(signature, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  }
  return false;
}

if (argv[1] === fileURLToPath(import.meta.url)) {
  const [secret, headersFile, bodyFile] = argv.slice(2);
  const valid = verify(secret, JSON.parse(readFileSync(headersFile, "utf8")), readFileSync(bodyFile));
  console.log(valid ? "valid" : "invalid");
  exit(valid ? 0 : 1);
}
