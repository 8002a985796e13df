// DocuVault with Uppy, from a page on its own origin. Before Uppy sends a
// file, the page asks DocuVault for an upload (POST /api/documents/upload-url
// with the file's size) and DocuVault's answer decides how it goes:
//   - one presigned PUT straight to MinIO, then
//     POST /api/documents/{id}/confirm;
//   - or, for a file over DocuVault's MULTIPART_THRESHOLD, a multipart
//     upload: Uppy PUTs each part of DocuVault's part_size straight to MinIO
//     (POST /api/documents/{id}/parts signs more parts, GET lists those
//     stored when Uppy resumes), then POST /api/documents/{id}/complete.
// The glue is the preprocessor, the AwsS3 hooks and the event handlers
// below; the rest is Uppy's own Dashboard. Uppy 5: @uppy/aws-s3 6 dropped
// the multipart hooks (it creates and completes uploads by talking S3
// itself), and here DocuVault's api creates, checks and completes them.
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import AwsS3 from "@uppy/aws-s3";
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";

// The API's address from the query; the token from the fragment, which the
// browser never sends to a server (keep tokens out of logs).
const params = new URLSearchParams(location.search);
const api = (params.get("api") || "http://127.0.0.1:8080").replace(/\/$/, "");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const status = document.getElementById("status");

/** calls DocuVault's API with the bearer token and returns the JSON answer. */
async function call(method, path, body) {
  const res = await fetch(api + path, {
    method,
    headers: { Authorization: "Bearer " + token, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    throw Object.assign(new Error(`${method} ${path}: ${res.status} ${detail}`), { status: res.status });
  }
  return data;
}

// file.data → DocuVault's answer to upload-url: {upload_url, headers, ...}
// for one PUT, {upload_id, part_size, part_count, parts, ...} for a multipart
// upload, or {error}. Keyed by the file's bytes, which every hook is given.
const uploads = new WeakMap();

const uppy = new Uppy({ autoProceed: false, restrictions: { maxNumberOfFiles: 20 } })
  .use(Dashboard, { inline: true, target: "#uppy", proudlyDisplayPoweredByUppy: false });

// Uppy cuts a file into parts (getChunkSize) before it calls
// createMultipartUpload, and getChunkSize cannot wait for an answer. So the
// upload is asked for first, here, and DocuVault's answer (its threshold, its
// part_size) decides the rest: nothing about either is configured in the page.
// A file whose bytes one of the user's documents has already is not sent:
// DocuVault names that document, and the file leaves the Dashboard.
uppy.addPreProcessor((fileIDs) =>
  Promise.all(
    uppy.getFilesByIds(fileIDs).map(async (file) => {
      if (uploads.has(file.data)) return;
      const u = await ask(file);
      if (u.duplicate) {
        report(`${file.name}: already uploaded as ${u.document.filename} (${u.document_id})`);
        uppy.info(`${file.name} is already uploaded`, "info", 5000);
        uppy.removeFile(file.id);
        return;
      }
      uploads.set(file.data, u);
    }),
  ),
);

// Files up to this size are hashed (SHA-256) before upload: DocuVault's
// default MULTIPART_THRESHOLD, above which a file goes in parts.
const DIGEST_MAX_BYTES = 64 * 1024 * 1024;

/** the base64 SHA-256 of a file's bytes, or null for a larger file. */
async function sha256Of(blob) {
  if (blob.size > DIGEST_MAX_BYTES || !globalThis.crypto?.subtle) return null;
  return digest(blob);
}

/** the base64 SHA-256 of a blob (a file, or one part of it), read whole. */
async function digest(blob) {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * asks DocuVault for an upload of file, with its SHA-256, which the URL
 * signs (MinIO then stores exactly these bytes) and by which DocuVault
 * knows a file already uploaded, and, should DocuVault cut it in parts, a
 * SHA-256 per part (part_checksum: signPart hashes each part Uppy sends); a
 * refusal is that file's failure. A server that cuts the file in parts
 * refuses the whole file's checksum (422): the page asks again without it.
 */
async function ask(file) {
  const body = {
    filename: file.name,
    content_type: file.type || "application/octet-stream",
    size_bytes: file.size, // signed: the bytes must be exactly this many
  };
  if (globalThis.crypto?.subtle) body.part_checksum = "sha256";
  const sha256 = await sha256Of(file.data).catch(() => null);
  try {
    return await call("POST", "/api/documents/upload-url", sha256 ? { ...body, sha256 } : body);
  } catch (error) {
    if (!(sha256 && error.status === 422 && /in parts/.test(error.message))) return { error };
    return call("POST", "/api/documents/upload-url", body).catch((error) => ({ error }));
  }
}

/** returns file's upload, or throws why DocuVault refused it. */
function upload(file) {
  const u = uploads.get(file.data);
  if (u.error) throw u.error;
  if (u.duplicate) throw new Error(`already uploaded as ${u.document.filename}`);
  return u;
}

uppy.use(AwsS3, {
  shouldUseMultipart: (file) => Boolean(uploads.get(file.data)?.upload_id),
  getChunkSize: (data) => uploads.get(data).part_size, // exactly the server's parts
  async getUploadParameters(file) {
    if (Date.parse(upload(file).expires_at) - Date.now() < 60_000) {
      // It waited in Uppy's queue for most of its URL's life: ask again.
      forget(file);
      uploads.set(file.data, await ask(file));
    }
    const u = upload(file);
    // Uppy sends a file of 5 MiB or less in one PUT whatever shouldUseMultipart says.
    if (u.upload_id) throw new Error("DocuVault wants parts, Uppy sends 5 MiB or less whole: keep MULTIPART_THRESHOLD at 5 MiB or more");
    // Only headers a script may set (Content-Type, If-None-Match, the
    // checksum); the browser sends Content-Length itself.
    return { method: "PUT", url: u.upload_url, headers: u.headers };
  },
  createMultipartUpload(file) {
    const u = upload(file);
    if (!u.upload_id) throw new Error("DocuVault made no multipart upload of this file");
    return { uploadId: u.upload_id, key: u.document_id };
  },
  async signPart(file, { partNumber, body }) {
    const u = upload(file);
    if (u.part_checksum !== "sha256") return partURL(u, partNumber);
    // Each part's URL signs its SHA-256, and its PUT carries it: MinIO
    // refuses other bytes, and Uppy sends the part again.
    const sha256 = await digest(body);
    const a = await call("POST", `/api/documents/${u.document_id}/parts`, { parts: [{ part_number: partNumber, sha256 }] });
    return { method: "PUT", url: a.parts[0].url, headers: { "x-amz-checksum-sha256": sha256 } };
  },
  async listParts(file, { key }) {
    try {
      const { parts } = await call("GET", `/api/documents/${key}/parts`);
      return parts.map((p) => ({ PartNumber: p.part_number, Size: p.size, ETag: p.etag }));
    } catch (err) {
      // 409 once the upload is complete (paused while complete was on its
      // way): every part is in, and complete answers the stored document.
      if ((await call("GET", `/api/documents/${key}`)).status === "pending") throw err;
      return Array.from({ length: upload(file).part_count }, (_, i) => ({ PartNumber: i + 1, ETag: "stored" }));
    }
  },
  completeMultipartUpload: (file, { key, parts }) =>
    call("POST", `/api/documents/${key}/complete`, {
      parts: parts.map((p) => ({ part_number: p.PartNumber, etag: p.ETag })),
    }),
  abortMultipartUpload: (file, { key }) => discard(key),
});

// Part URLs come ten at a time: the first ten with the upload, each next ten
// from POST /api/documents/{id}/parts once, when Uppy reaches them (which
// also keeps the pending upload alive), and again if they expire.
function partURL(u, n) {
  u.batches ??= new Map([[1, { expires: Date.parse(u.expires_at), answer: Promise.resolve(u) }]]);
  const ten = Math.ceil(n / 10);
  let batch = u.batches.get(ten);
  if (!batch || batch.expires - Date.now() < 60_000) {
    const first = ten * 10 - 9;
    const numbers = Array.from({ length: Math.min(10, u.part_count - first + 1) }, (_, i) => first + i);
    const answer = call("POST", `/api/documents/${u.document_id}/parts`, { part_numbers: numbers });
    batch = { expires: Infinity, answer }; // parts asked for meanwhile wait for this answer
    answer.then((a) => (batch.expires = Date.parse(a.expires_at)), () => u.batches.delete(ten));
    u.batches.set(ten, batch);
  }
  return batch.answer.then((a) => ({ method: "PUT", url: a.parts.find((p) => p.part_number === n).url }));
}

// A file that failed or was removed before it was stored gives its pending
// document back, and a retry asks DocuVault again.
function forget(file) {
  const u = uploads.get(file.data);
  uploads.delete(file.data);
  if (u?.document_id) discard(u.document_id).catch(() => {}); // the sweeper's job then
}

// discard deletes document id if it is still pending: DELETE aborts its
// multipart upload in MinIO and frees the quota its size reserved. A
// document whose bytes did arrive (an answer lost on the way back, say) is
// kept. 404 when it is gone already.
async function discard(id) {
  const doc = await call("GET", `/api/documents/${id}`);
  if (doc.status === "pending") await call("DELETE", `/api/documents/${id}`);
}
uppy.on("upload-error", (file, err) => {
  forget(file);
  report(`${file.name}: upload failed: ${err.message}`);
});
uppy.on("file-removed", forget);

let confirmed = 0;
uppy.on("upload-success", async (file, response) => {
  const u = uploads.get(file.data);
  uploads.delete(file.data); // stored: removing the file from the Dashboard now keeps the document
  try {
    // complete confirmed a multipart upload already (its answer is the body);
    // a single PUT is confirmed here (idempotent: MinIO's notification may
    // have confirmed it already).
    const doc = u.upload_id ? response.body : await call("POST", `/api/documents/${u.document_id}/confirm`);
    uppy.setFileMeta(file.id, { documentId: u.document_id, status: doc.status });
    const how = u.upload_id ? `${u.part_count} parts` : "one PUT";
    report(`${file.name}: ${doc.status}, ${doc.size_bytes} bytes in ${how} (used ${doc.used_bytes})`);
    document.body.dataset.confirmed = String(++confirmed);
  } catch (err) {
    report(`${file.name}: confirm failed: ${err.message}`);
  }
});
uppy.on("complete", (result) => {
  report(`complete: ${result.successful.length} uploaded, ${result.failed.length} failed`);
  document.body.dataset.complete = String(result.successful.length) + "/" + String(result.failed.length);
});

function report(line) {
  const li = document.createElement("li");
  li.textContent = line;
  status.append(li);
}

window.docuvaultUppy = uppy; // for tests and the console
