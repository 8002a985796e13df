// DocuVault with Uppy, from a page on its own origin: for each file, ask
// DocuVault for a presigned PUT URL (POST /api/documents/upload-url), let
// Uppy's S3 plugin PUT the bytes straight to MinIO, then confirm
// (POST /api/documents/{id}/confirm). The glue is signRequest and the
// upload-success handler below; the rest is Uppy's own Dashboard.
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
    throw new Error(`${method} ${path}: ${res.status} ${detail}`);
  }
  return data;
}

const documents = new Map(); // Uppy file id → DocuVault document id

const uppy = new Uppy({ autoProceed: false, restrictions: { maxNumberOfFiles: 20 } })
  .use(Dashboard, { inline: true, target: "#uppy", proudlyDisplayPoweredByUppy: false })
  .use(AwsS3, {
    shouldUseMultipart: false, // one presigned PUT per file
    // DocuVault makes the object key; the plugin's key only finds the file.
    generateObjectKey: (file) => file.id,
    async signRequest(request) {
      const file = uppy.getFile(request.key);
      const ticket = await call("POST", "/api/documents/upload-url", {
        filename: file.name,
        content_type: file.type || "application/octet-stream",
        size_bytes: file.size, // signed: the body must be exactly this long
      });
      documents.set(file.id, ticket.document_id);
      // Only headers a script may set (Content-Type, If-None-Match); the
      // browser sends Content-Length itself.
      return { url: ticket.upload_url, headers: ticket.headers };
    },
  });

let confirmed = 0;
uppy.on("upload-success", async (file) => {
  const id = documents.get(file.id);
  try {
    // Idempotent: MinIO's notification may have confirmed it already.
    const doc = await call("POST", `/api/documents/${id}/confirm`);
    uppy.setFileMeta(file.id, { documentId: id, status: doc.status });
    report(`${file.name}: ${doc.status}, ${doc.size_bytes} bytes (used ${doc.used_bytes})`);
    document.body.dataset.confirmed = String(++confirmed);
  } catch (err) {
    report(`${file.name}: confirm failed: ${err.message}`);
  }
});
uppy.on("upload-error", (file, err) => report(`${file.name}: upload failed: ${err.message}`));
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
