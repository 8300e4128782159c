/**
 * What an integrator does first, through a TypeScript client made from the live /api/schema/:
 * types by openapi-typescript (into var/clients/typescript/schema.d.ts, never committed) and
 * requests by openapi-fetch. scripts/api_clients.sh generates the types, type-checks this file
 * against them (tsc, strict) and runs it against a live server:
 *
 *   TRACKER_URL=http://127.0.0.1:8000 node clients/typescript/dist/smoke.js
 *
 * Logs in, lists tasks with filters and follows the cursor, reads a task and its ETag, moves
 * it with If-Match, reports progress, gets a 412 (stale ETag) and a 409 (a move the workflow
 * refuses) back as typed problems, and puts the task back so the script can run again.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "../../var/clients/typescript/schema.js";

type Problem = components["schemas"]["Problem"];
type TaskStatus = components["schemas"]["TaskStatusEnum"];

const BASE = process.env.TRACKER_URL ?? "http://127.0.0.1:8000";
const USERNAME = process.env.TRACKER_USER ?? "coordinator.kr";
const PASSWORD = process.env.TRACKER_PASSWORD ?? "demo";
const PAGE_SIZE = 5;

function check(condition: unknown, what: string): asserts condition {
  if (!condition) {
    console.error(`typescript client: FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`typescript client: ok: ${what}`);
}

/** The ETag a write needs next: every task answer carries one. */
function etagOf(response: Response, what: string): string {
  const etag = response.headers.get("ETag");
  check(etag !== null && etag.startsWith('"'), `${what}: ETag ${etag}`);
  return etag;
}

/** A problem document and its status, typed: what the schema says a 409 or 412 carries. */
function isProblem(error: unknown, status: number): error is Problem {
  return typeof error === "object" && error !== null && (error as Problem).status === status;
}

async function main(): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl: BASE });
  const login = await anonymous.POST("/api/v1/auth/token/", {
    body: { username: USERNAME, password: PASSWORD, scope: "read_write" },
  });
  check(login.response.status === 201 && login.data, "log in (POST /api/v1/auth/token/)");
  const api = createClient<paths>({
    baseUrl: BASE,
    headers: { Authorization: `Bearer ${login.data.token}` },
  });

  // Filters and the cursor: every page through `next`, no task twice.
  const seen: number[] = [];
  let pages = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await api.GET("/api/v1/tasks/", {
      params: { query: { status: ["in_progress"], page_size: PAGE_SIZE, cursor } },
    });
    check(page.data, `GET /api/v1/tasks/?status=in_progress&page_size=${PAGE_SIZE}`);
    pages += 1;
    check(
      page.data.results.every((task) => task.status === "in_progress"),
      `page ${pages}: ${page.data.results.map((task) => task.ref).join(", ")} all in_progress`,
    );
    seen.push(...page.data.results.map((task) => task.id));
    if (!page.data.next) break;
    cursor = new URL(page.data.next).searchParams.get("cursor") ?? undefined;
  }
  check(
    pages >= 2 && new Set(seen).size === seen.length && seen.length > PAGE_SIZE,
    `${seen.length} tasks, ${pages} pages`,
  );

  // Read one and its ETag; move it with If-Match; report progress with the new ETag.
  const id = seen[0];
  check(id !== undefined, "a task to work on");
  const read = await api.GET("/api/v1/tasks/{id}/", { params: { path: { id } } });
  check(read.data, `read task ${read.data?.ref}`);
  const etag = etagOf(read.response, "read");

  const move = (to: TaskStatus, from: TaskStatus, ifMatch: string, note = "") =>
    api.POST("/api/v1/tasks/{id}/transition/", {
      params: { path: { id }, header: { "If-Match": ifMatch } },
      body: { to, expected_from: from, note },
    });

  const moved = await move("at_risk", "in_progress", etag, "Supplier delay (typescript client).");
  check(moved.data?.status === "at_risk", "transition in_progress -> at_risk with If-Match");
  let current = etagOf(moved.response, "after the move");

  const progress = await api.POST("/api/v1/tasks/{id}/updates/", {
    params: { path: { id }, header: { "If-Match": current } },
    body: { note: "Half way (typescript client).", progress: 50 },
  });
  check(progress.response.status === 201 && progress.data, "progress posted with If-Match");
  current = etagOf(progress.response, "after the progress report");

  // Typed errors: `error` is the schema's Problem for a 412 and a 409.
  const stale = await move("in_progress", "at_risk", etag);
  check(
    stale.response.status === 412 && isProblem(stale.error, 412),
    `stale If-Match -> 412 Problem (${stale.error?.title})`,
  );
  const refused = await move("verified", "at_risk", current);
  check(
    refused.response.status === 409 && isProblem(refused.error, 409),
    `at_risk -> verified -> 409 Problem (${refused.error?.detail})`,
  );

  const back = await move("in_progress", "at_risk", current);
  check(back.data?.status === "in_progress", "moved back to in_progress");
  console.log("typescript client: all green");
}

main().catch((error: unknown) => {
  console.error("typescript client: FAILED:", error);
  process.exit(1);
});
