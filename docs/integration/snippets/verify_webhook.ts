/**
 * Verify a webhook from the joint action plan tracker (Standard Webhooks signatures).
 *
 * TypeScript for Node 18+, no npm packages at run time (node:crypto only; @types/node to
 * compile). Call verify() with the secret shown when the webhook was created (or rotated),
 * the request's headers and its RAW body, before parsing the JSON, e.g. Express:
 *
 *   app.post("/hooks/tracker", express.raw({ type: "application/json" }), (req, res) => {
 *     if (!verify(SECRET, req.headers, req.body)) return res.sendStatus(401);
 *     const event = JSON.parse(req.body.toString("utf8"));
 *     ...
 *   });
 *
 * From a shell, compiled as an ES module: `node verify_webhook.js SECRET HEADERS.json BODY-FILE`
 * exits 0 when valid.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { argv, exit } from "node:process";
import { fileURLToPath } from "node:url";

export interface VerifyOptions {
  /** Seconds a signature stays acceptable either side of now (default 300). */
  toleranceSeconds?: number;
  /** The time to check against, in Unix seconds (default: now). */
  now?: number;
}

/** True when a v1 signature matches and the timestamp is recent. */
export function verify(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: Uint8Array | string,
  options: VerifyOptions = {},
): boolean {
  const { toleranceSeconds = 300, now = Date.now() / 1000 } = options;
  const lowered: Record<string, string> = {};
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
  if (!secret || !headersFile || !bodyFile) {
    console.error("usage: node verify_webhook.js SECRET HEADERS.json BODY-FILE");
    exit(2);
  }
  const valid = verify(secret, JSON.parse(readFileSync(headersFile, "utf8")), readFileSync(bodyFile));
  console.log(valid ? "valid" : "invalid");
  exit(valid ? 0 : 1);
}
