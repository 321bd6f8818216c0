// REST helpers: every API answer is JSON, errors are {"error": message} with an HTTP status.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function request(method, path, payload = undefined) {
  let response;
  const headers = { Accept: "application/json" };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  try {
    response = await fetch(path, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, `server unreachable (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

/** Get or create this browser session's lab (idempotent). */
export const ensureLab = () => request("POST", "/api/labs");
export const getLab = (lab) => request("GET", `/api/labs/${encodeURIComponent(lab)}`);
export const restartLab = (lab) => request("POST", `/api/labs/${encodeURIComponent(lab)}/restart`);
export const partitionAction = (lab, name, action) =>
  request(
    "POST",
    `/api/labs/${encodeURIComponent(lab)}/partitions/${encodeURIComponent(name)}/actions/${encodeURIComponent(action)}`,
  );

/** Restart the lab in another design (microkernel, monolithic, hosted), disks kept; answers the lab. */
export const setDesign = (lab, design) => request("PUT", `/api/labs/${encodeURIComponent(lab)}/design`, { design });
/** Fail one component (e.g. child2.ide) through the same path as a real exception. */
export const injectFault = (lab, component) => request("POST", `/api/labs/${encodeURIComponent(lab)}/faults`, { component });

const partitionPath = (lab, name) =>
  `/api/labs/${encodeURIComponent(lab)}/partitions/${encodeURIComponent(name)}`;

/** Change settings (memory_mb, integration_services); they take effect at the partition's next start. */
export const putSettings = (lab, name, changes) => request("PUT", `${partitionPath(lab, name)}/settings`, changes);

/** Where a partition's disk downloads from (the server answers 409 unless the partition is off). */
export const diskUrl = (lab, name) => `${partitionPath(lab, name)}/disk.vhd`;

/** ws:// or wss:// URL on our own origin. */
export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// --- lessons (docs/api.md, "Lessons") ---
const lessonPath = (id) => `/api/lessons/${encodeURIComponent(id)}`;
export const listLessons = () => request("GET", "/api/lessons");
/** Set up the session's lab for the lesson (only if it does not match already); answers the lesson and its state. */
export const openLesson = (id, resetLab = false) => request("POST", `${lessonPath(id)}/open`, resetLab ? { reset_lab: true } : {});
/** What opening the lesson would change in the lab ({needed, changes}); changes nothing. */
export const lessonSetup = (id) => request("GET", `${lessonPath(id)}/setup`);
export const lessonState = (id) => request("GET", `${lessonPath(id)}/state`);
export const gotoStep = (id, index) => request("POST", `${lessonPath(id)}/goto`, { index });
export const commitPrediction = (id, step, value) =>
  request("POST", `${lessonPath(id)}/steps/${encodeURIComponent(step)}/prediction`, { value });
export const nextHint = (id, step) => request("POST", `${lessonPath(id)}/steps/${encodeURIComponent(step)}/hint`);
export const restartStep = (id, step) => request("POST", `${lessonPath(id)}/steps/${encodeURIComponent(step)}/restart`);
export const resetLesson = (id) => request("POST", `${lessonPath(id)}/reset`);

/** Follow a class's live view (the dashboard's SSE stream): `onView(view)` for every frame, and `linkState`
 *  (an element) says whether the stream is live or reconnecting. Shared by the dashboard and the projector. */
export function followClassView(classId, onView, linkState) {
  const source = new EventSource(`/api/classes/${encodeURIComponent(classId)}/dashboard/events`);
  source.addEventListener("view", (event) => {
    linkState.textContent = "live";
    linkState.className = "link link-live";
    onView(JSON.parse(event.data));
  });
  source.onerror = () => {
    linkState.textContent = "reconnecting";
    linkState.className = "link link-connecting";
  };
  return source;
}
