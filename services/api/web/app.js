// DocuVault web UI: sign-in, direct-to-storage uploads with progress, the
// document list, the quota bar and live updates from /api/events.
//
// No framework, no dependencies. All text coming from the server or the user
// (filenames above all) is written with textContent, never as HTML. The token
// lives only in sessionStorage and in Authorization headers: never in a URL,
// never in a log.
(function () {
  "use strict";

  const TOKEN_KEY = "docuvault.token";
  const PAGE_SIZE = 50;
  const MAX_CONCURRENT_UPLOADS = 3;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const STABLE_STREAM_MS = 5000; // a stream that lived this long resets the backoff
  const STREAM_SILENCE_MS = 45000; // no byte (not even a heartbeat) this long: reconnect
  // Multipart uploads (files the server chose to take in parts).
  const RESUME_KEY = "docuvault.multipart"; // sessionStorage: the uploads a reload may resume
  const PARTS_IN_FLIGHT = 4; // parts of one file uploading at once
  const PART_URL_BATCH = 20; // part URLs asked for at a time (the API takes up to 100)
  const PART_URL_AHEAD = 8; // ask for more while fewer signed URLs than this wait for their part
  const PART_RETRIES = 2; // more tries for a part whose PUT failed in the network or with a 5xx

  const STATUS_LABELS = {
    pending: "Pending",
    uploading: "Uploading",
    uploaded: "Uploaded",
    classified: "Classified",
    classification_failed: "Classification failed",
    rejected: "Rejected",
    failed: "Failed",
  };
  // A server update never moves a row backwards (events and responses can
  // arrive in any order). "failed" is a local state: server truth replaces it.
  const STATUS_RANK = {
    failed: 0,
    pending: 0,
    uploading: 1,
    uploaded: 2,
    classified: 3,
    classification_failed: 3,
    rejected: 3,
  };
  // The malware scan of a stored document, beside its status (scan_status;
  // none, "", when it was stored while scanning was off). An infected one is
  // also rejected (reason "infected") and its bytes are gone.
  const SCAN_LABELS = {
    pending: "Scanning…",
    clean: "Scanned",
    infected: "Infected — removed",
    failed: "Not scanned",
    released: "Released unscanned",
  };
  // Why a scan failed (scan_detail), in words.
  const SCAN_FAILURES = {
    too_large: "too large to scan",
    limits_exceeded: "an archive too large or too deep to scan whole",
  };
  // Like the status, the scan state never moves backwards.
  const SCAN_RANK = { "": 0, pending: 1, clean: 2, infected: 2, failed: 2, released: 3 };
  // Files up to this size are hashed (SHA-256) before upload: the server's
  // default MULTIPART_THRESHOLD, above which a file goes in parts.
  const DIGEST_MAX_BYTES = 64 * 1024 * 1024;
  const DOWNLOADABLE = new Set(["uploaded", "classified", "classification_failed"]);
  const EVENT_STATUS = {
    "document.uploaded": "uploaded",
    "document.scanned": "uploaded",
    "document.rejected": "rejected",
    "document.classified": "classified",
    "document.classification_failed": "classification_failed",
  };

  // ---------------------------------------------------------------------
  // Pure helpers (also exported for node smoke tests at the bottom).

  /** Human-readable size with 1000-based units: "512 B", "3.1 MB", "100 MB". */
  function formatBytes(n) {
    n = Number(n);
    if (!Number.isFinite(n) || n < 0) return "–";
    if (n < 1000) return Math.round(n) + " B";
    const units = ["KB", "MB", "GB", "TB", "PB"];
    let v = n;
    let i = -1;
    do {
      v /= 1000;
      i++;
    } while (Math.round(v * 10) / 10 >= 1000 && i < units.length - 1);
    const r = Math.round(v * 10) / 10;
    return (Number.isInteger(r) ? String(r) : r.toFixed(1)) + " " + units[i];
  }

  /** The words for a scan state and its detail: "" for none. */
  function scanLabel(state, detail) {
    if (state === "failed") {
      const why = SCAN_FAILURES[detail] || (detail ? String(detail) : "");
      return why ? SCAN_LABELS.failed + " — " + why : SCAN_LABELS.failed;
    }
    return SCAN_LABELS[state] || "";
  }

  function isQuotaDetail(d) {
    return d !== null && typeof d === "object" && "used_bytes" in d && "limit_bytes" in d;
  }

  function quotaMessage(d) {
    return (
      "quota exceeded: " + formatBytes(d.used_bytes) + " of " + formatBytes(d.limit_bytes) +
      " used, this file needs " + formatBytes(d.rejected_bytes)
    );
  }

  /** The text to show for an error body's detail. */
  function detailText(detail, status) {
    if (typeof detail === "string" && detail !== "") return detail;
    if (isQuotaDetail(detail)) return quotaMessage(detail);
    if (Array.isArray(detail)) {
      const parts = detail.map((d) => (typeof d === "string" ? d : d && d.msg ? String(d.msg) : ""));
      const joined = parts.filter(Boolean).join("; ");
      if (joined) return joined;
    }
    return status ? "request failed (HTTP " + status + ")" : "request failed";
  }

  /**
   * The planned size of part n (1-based) of a file of size bytes cut into
   * partCount parts of partSize: every part is partSize but the last.
   */
  function plannedPartSize(n, size, partSize, partCount) {
    return n < partCount ? partSize : size - (partCount - 1) * partSize;
  }

  /**
   * The parts of a GET /api/documents/{id}/parts listing that need no new
   * PUT: those stored with their planned size. Returns part number -> ETag.
   */
  function storedParts(listed, size, partSize, partCount) {
    const done = new Map();
    for (const p of Array.isArray(listed) ? listed : []) {
      const n = Number(p && p.part_number);
      if (!Number.isInteger(n) || n < 1 || n > partCount) continue;
      if (Number(p.size) !== plannedPartSize(n, size, partSize, partCount)) continue;
      done.set(n, typeof p.etag === "string" ? p.etag : "");
    }
    return done;
  }

  /** Whether a saved multipart upload is the one of file (same name, size, date). */
  function resumeMatches(entry, file) {
    return (
      !!entry && entry.filename === file.name && entry.size === file.size &&
      entry.lastModified === file.lastModified
    );
  }

  /**
   * Incremental Server-Sent Events parser (the WHATWG event stream format).
   * feed() takes decoded text in arbitrary chunks; onEvent receives
   * {type, data, id} for each complete event.
   */
  class SSEParser {
    constructor(onEvent) {
      this.onEvent = onEvent;
      this.buf = "";
      this.data = [];
      this.type = "";
      this.lastId = "";
      this.first = true;
    }

    feed(text) {
      let buf = this.buf + text;
      if (this.first && buf.length > 0) {
        if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1); // BOM
        this.first = false;
      }
      let start = 0;
      let i = 0;
      while (i < buf.length) {
        const c = buf[i];
        if (c !== "\n" && c !== "\r") {
          i++;
          continue;
        }
        if (c === "\r" && i + 1 === buf.length) break; // may be half of \r\n
        this.line(buf.slice(start, i));
        i += c === "\r" && buf[i + 1] === "\n" ? 2 : 1;
        start = i;
      }
      this.buf = buf.slice(start);
    }

    line(line) {
      if (line === "") {
        this.dispatch();
        return;
      }
      if (line[0] === ":") return; // comment / heartbeat
      const colon = line.indexOf(":");
      let field = line;
      let value = "";
      if (colon >= 0) {
        field = line.slice(0, colon);
        value = line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
      }
      switch (field) {
        case "data":
          this.data.push(value);
          break;
        case "event":
          this.type = value;
          break;
        case "id":
          if (value.indexOf("\0") < 0) this.lastId = value;
          break;
        default:
          break; // "retry" and unknown fields are ignored
      }
    }

    dispatch() {
      const data = this.data;
      const type = this.type || "message";
      this.data = [];
      this.type = "";
      if (data.length === 0) return;
      this.onEvent({ type: type, data: data.join("\n"), id: this.lastId });
    }
  }

  // ---------------------------------------------------------------------
  // Browser app.

  function init() {
    const $ = (id) => document.getElementById(id);
    const el = {
      signin: $("signin"),
      signinForm: $("signin-form"),
      tokenInput: $("token-input"),
      signinButton: $("signin-button"),
      devSignin: $("dev-signin"),
      signinStatus: $("signin-status"),
      session: $("session"),
      userId: $("user-id"),
      userRole: $("user-role"),
      signout: $("signout"),
      live: $("live-status"),
      app: $("app"),
      quotaText: $("quota-text"),
      quotaBar: $("quota-bar"),
      quotaFill: $("quota-fill"),
      dropZone: $("drop-zone"),
      fileInput: $("file-input"),
      status: $("status"),
      tbody: $("documents-body"),
      empty: $("documents-empty"),
      loadMore: $("load-more"),
    };

    // Session state. `epoch` changes at every sign-in and sign-out, so work
    // started for an earlier session can tell it is stale and stop.
    let token = null;
    let epoch = 0;
    let nextCursor = null;
    let streamAbort = null;
    let quotaTimer = null;
    const rows = new Map(); // document id -> row
    const uploadQueue = [];
    let activeUploads = 0;

    // ---- HTTP --------------------------------------------------------

    class ApiError extends Error {
      constructor(status, detail) {
        super(detailText(detail, status));
        this.status = status;
        this.detail = detail;
      }
    }

    async function readError(res) {
      let detail = null;
      try {
        const body = await res.json();
        if (body && typeof body === "object" && "detail" in body) detail = body.detail;
      } catch (_) {
        // not JSON: fall back to the status
      }
      return new ApiError(res.status, detail);
    }

    /**
     * Calls the API with the session's token. A 401 ends the session unless
     * opts.noSignOut. Returns parsed JSON (or null for an empty answer).
     */
    async function api(method, path, opts) {
      opts = opts || {};
      const headers = { Accept: "application/json" };
      const t = opts.token || token;
      if (t && !opts.noAuth) headers.Authorization = "Bearer " + t;
      const init = { method: method, headers: headers, cache: "no-store", signal: opts.signal };
      if (opts.body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(opts.body);
      }
      const myEpoch = epoch;
      let res;
      try {
        res = await fetch(path, init);
      } catch (err) {
        if (err && err.name === "AbortError") throw err;
        throw new ApiError(0, "network error: the server could not be reached");
      }
      if (!res.ok) {
        const e = await readError(res);
        if (res.status === 401 && !opts.noSignOut && myEpoch === epoch && token) {
          signOut("Your session has expired or the token is no longer valid. Please sign in again.");
        }
        throw e;
      }
      if (res.status === 204) return null;
      const text = await res.text();
      return text ? JSON.parse(text) : null;
    }

    // ---- messages ----------------------------------------------------

    function say(target, text, kind) {
      target.textContent = text || "";
      target.dataset.kind = kind || "info";
    }

    // ---- sign-in -----------------------------------------------------

    function setBusy(busy) {
      el.signinButton.disabled = busy;
      el.devSignin.disabled = busy;
    }

    async function signIn(candidate) {
      candidate = String(candidate || "").trim().replace(/^bearer\s+/i, "").trim();
      if (!candidate) {
        say(el.signinStatus, "Paste a token first.", "error");
        el.tokenInput.focus();
        return;
      }
      setBusy(true);
      say(el.signinStatus, "Signing in…");
      let me;
      try {
        me = await api("GET", "/api/auth/me", { token: candidate, noSignOut: true });
      } catch (err) {
        setBusy(false);
        sessionStorage.removeItem(TOKEN_KEY);
        if (err.status === 401) {
          say(el.signinStatus, "invalid or expired token", "error");
        } else {
          say(el.signinStatus, "Sign-in failed: " + err.message, "error");
        }
        return;
      }
      setBusy(false);
      token = candidate;
      epoch++;
      sessionStorage.setItem(TOKEN_KEY, token);
      el.tokenInput.value = "";
      say(el.signinStatus, "");
      el.userId.textContent = me && me.id ? String(me.id) : "";
      el.userRole.textContent = me && me.role ? String(me.role) : "";
      el.userRole.hidden = !(me && me.role);
      el.signin.hidden = true;
      el.session.hidden = false;
      el.app.hidden = false;
      clearDocuments();
      const interrupted = loadResumes().map((e) => String(e.filename));
      if (interrupted.length > 0) {
        say(el.status, "Unfinished upload of " + interrupted.join(", ") + ": choose the file again to resume it.");
      } else {
        say(el.status, "");
      }
      refreshQuota();
      loadDocuments(false);
      startStream();
    }

    async function devSignIn() {
      setBusy(true);
      say(el.signinStatus, "Requesting a dev token…");
      let body;
      try {
        body = await api("POST", "/api/dev/token", { noAuth: true, noSignOut: true });
      } catch (err) {
        setBusy(false);
        if (err.status === 404 || err.status === 405) {
          say(el.signinStatus, "dev sign-in is not available on this server", "error");
        } else {
          say(el.signinStatus, "Dev sign-in failed: " + err.message, "error");
        }
        return;
      }
      setBusy(false);
      if (!body || typeof body.token !== "string") {
        say(el.signinStatus, "Dev sign-in failed: the server sent no token", "error");
        return;
      }
      await signIn(body.token);
    }

    function signOut(message) {
      epoch++;
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      stopStream();
      clearTimeout(quotaTimer);
      quotaTimer = null;
      // Drop queued uploads and abort running ones.
      uploadQueue.length = 0;
      for (const tr of el.tbody.querySelectorAll("tr")) cancelRowWork(tr._row);
      clearDocuments();
      renderQuota(null);
      el.userId.textContent = "";
      el.userRole.textContent = "";
      el.session.hidden = true;
      el.app.hidden = true;
      el.signin.hidden = false;
      setBusy(false);
      say(el.signinStatus, message || "Signed out.", message ? "error" : "info");
      setLive("off");
    }

    // ---- quota -------------------------------------------------------

    function renderQuota(q) {
      const bar = el.quotaBar;
      if (!q) {
        el.quotaText.textContent = "–";
        bar.dataset.used = "0";
        bar.dataset.limit = "0";
        bar.setAttribute("aria-valuenow", "0");
        bar.removeAttribute("aria-valuetext");
        bar.classList.remove("high");
        el.quotaText.classList.remove("high");
        el.quotaFill.style.width = "0%";
        return;
      }
      const used = Number(q.used_bytes) || 0;
      const limit = Number(q.limit_bytes) || 0;
      const pct = limit > 0 ? Math.min(100, (used / limit) * 100) : used > 0 ? 100 : 0;
      const text = formatBytes(used) + " of " + formatBytes(limit);
      el.quotaText.textContent = text;
      bar.dataset.used = String(used);
      bar.dataset.limit = String(limit);
      bar.setAttribute("aria-valuenow", String(Math.round(pct)));
      bar.setAttribute("aria-valuetext", text + " used (" + Math.round(pct) + "%)");
      bar.classList.toggle("high", pct > 90);
      el.quotaText.classList.toggle("high", pct > 90);
      el.quotaFill.style.width = pct.toFixed(2) + "%";
    }

    async function refreshQuota() {
      const myEpoch = epoch;
      try {
        const q = await api("GET", "/api/auth/me/quota");
        if (myEpoch === epoch) renderQuota(q);
      } catch (err) {
        if (myEpoch === epoch && err.status !== 401) {
          el.quotaText.textContent = "Storage use unavailable: " + err.message;
        }
      }
    }

    /** Coalesces bursts of refresh requests (several events at once). */
    function scheduleQuotaRefresh() {
      clearTimeout(quotaTimer);
      quotaTimer = setTimeout(() => {
        quotaTimer = null;
        if (token) refreshQuota();
      }, 200);
    }

    // ---- rows --------------------------------------------------------

    function make(tag, className, text) {
      const n = document.createElement(tag);
      if (className) n.className = className;
      if (text !== undefined) n.textContent = text;
      return n;
    }

    /** Creates a table row; the row object is kept on tr._row. */
    function createRow(filename, size) {
      const tr = document.createElement("tr");
      const row = {
        tr: tr,
        id: null,
        filename: String(filename || ""),
        status: "pending",
        scan: null, // scan_status; null until the server tells it
        scanDetail: "",
        // Whether GET /api/documents/{id} gave a download_url, while the
        // row shows what that answer said; null: not asked since.
        offered: null,
        createdAt: null,
        upload: null, // {xhrs, controller, cancelled, done} while an upload runs
        deleting: false,
      };
      tr._row = row;

      const nameCell = make("td", "name");
      row.nameEl = make("span", "filename", row.filename);
      row.nameEl.title = row.filename;
      row.classificationEl = make("span", "classification");
      row.classificationEl.hidden = true;
      row.progress = make("progress", "progress");
      row.progress.max = 100;
      row.progress.value = 0;
      row.progress.hidden = true;
      row.progress.setAttribute("aria-label", "Upload progress for " + row.filename);
      row.errorEl = make("div", "error");
      row.errorEl.hidden = true;
      row.noteEl = make("div", "note");
      row.noteEl.hidden = true;
      nameCell.append(row.nameEl, row.classificationEl, row.progress, row.errorEl, row.noteEl);

      row.sizeEl = make("td", "size num", formatBytes(size));

      const statusCell = make("td", "status-cell");
      row.badge = make("span", "status");
      row.scanEl = make("div", "scan");
      row.scanEl.hidden = true;
      row.signatureEl = make("div", "signature");
      row.signatureEl.hidden = true;
      statusCell.append(row.badge, row.scanEl, row.signatureEl);

      const createdCell = make("td", "created");
      row.timeEl = make("time");
      createdCell.append(row.timeEl);

      const actions = make("td", "actions");
      row.downloadBtn = make("button", "download secondary", "Download");
      row.downloadBtn.type = "button";
      row.downloadBtn.setAttribute("aria-label", "Download " + row.filename);
      row.downloadBtn.hidden = true;
      row.downloadBtn.addEventListener("click", () => download(row));
      row.deleteBtn = make("button", "delete danger", "Delete");
      row.deleteBtn.type = "button";
      row.deleteBtn.setAttribute("aria-label", "Delete " + row.filename);
      row.deleteBtn.hidden = true;
      row.deleteBtn.addEventListener("click", () => deleteRow(row));
      row.dismissBtn = make("button", "dismiss secondary", "Remove");
      row.dismissBtn.type = "button";
      row.dismissBtn.setAttribute("aria-label", "Remove " + row.filename + " from the list");
      row.dismissBtn.addEventListener("click", () => dismissRow(row));
      actions.append(row.downloadBtn, row.deleteBtn, row.dismissBtn);

      tr.append(nameCell, row.sizeEl, statusCell, createdCell, actions);
      setStatus(row, "pending", true);
      return row;
    }

    function setError(row, text) {
      row.errorEl.textContent = text || "";
      row.errorEl.hidden = !text;
    }

    function setNote(row, text) {
      row.noteEl.textContent = text || "";
      row.noteEl.hidden = !text;
    }

    /**
     * The base64 SHA-256 of a file sent in one PUT (at most DIGEST_MAX_BYTES,
     * the server's default MULTIPART_THRESHOLD), which upload-url signs into
     * its URL so that storage keeps exactly these bytes; null for a larger
     * file (sent in parts, whose checksums are not taken yet) or where the
     * page has no WebCrypto (not a secure context).
     */
    async function sha256Of(file) {
      if (file.size > DIGEST_MAX_BYTES || !canDigest()) return null;
      return digestOf(file);
    }

    function canDigest() {
      return !!(window.crypto && crypto.subtle);
    }

    /** The base64 SHA-256 of a blob (a file, or one part of it), read whole. */
    async function digestOf(blob) {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
      let bin = "";
      for (const b of digest) bin += String.fromCharCode(b);
      return btoa(bin);
    }

    /**
     * Asks for an upload URL for file, with its checksum when the page has
     * one, and, should the server cut it in parts, a checksum per part
     * (part_checksum: each part is hashed as it is sent). A server that cuts
     * the file in parts (a MULTIPART_THRESHOLD below DIGEST_MAX_BYTES)
     * refuses the whole file's checksum (422): then it asks again without it.
     */
    async function requestUpload(file, contentType, sha256, signal) {
      const body = { filename: file.name, content_type: contentType, size_bytes: file.size };
      if (canDigest()) body.part_checksum = "sha256";
      if (!sha256) return api("POST", "/api/documents/upload-url", { body: body, signal: signal });
      try {
        return await api("POST", "/api/documents/upload-url", { body: Object.assign({ sha256: sha256 }, body), signal: signal });
      } catch (err) {
        if (!(err.status === 422 && /in parts/.test(String(err.detail)))) throw err;
        return api("POST", "/api/documents/upload-url", { body: body, signal: signal });
      }
    }

    /** Sets the badge; unless force, only moves forward (see STATUS_RANK). */
    function setStatus(row, status, force) {
      status = String(status || "pending");
      if (!force && row.status !== status) {
        const cur = STATUS_RANK[row.status] === undefined ? 0 : STATUS_RANK[row.status];
        const next = STATUS_RANK[status] === undefined ? 0 : STATUS_RANK[status];
        if (next < cur) return;
        // A local failure stands until the server reports an outcome.
        if (row.status === "failed" && next <= STATUS_RANK.uploading) return;
      }
      if (!force && row.status === "failed" && (status === "uploaded" || status === "classified")) {
        setError(row, ""); // the server says it worked after all
      }
      if (row.status !== status) row.offered = null;
      row.status = status;
      row.badge.dataset.status = status;
      row.badge.textContent = STATUS_LABELS[status] || status;
      if (status !== "uploading") {
        row.progress.removeAttribute("aria-busy");
      }
      updateActions(row);
    }

    /**
     * Shows the scan state (scan_status) and its detail: the signature of an
     * infected document, why a failed scan was not done. Unless force, only
     * moves forward (see SCAN_RANK).
     */
    function setScan(row, state, detail, force) {
      state = typeof state === "string" ? state : "";
      detail = typeof detail === "string" ? detail : "";
      if (!force && row.scan !== null && (SCAN_RANK[state] || 0) < (SCAN_RANK[row.scan] || 0)) return;
      if (row.scan !== state) row.offered = null;
      row.scan = state;
      row.scanDetail = detail;
      const label = scanLabel(state, detail);
      row.scanEl.textContent = label;
      row.scanEl.dataset.scan = state;
      row.scanEl.hidden = !label;
      const signature = state === "infected" ? detail : "";
      row.signatureEl.textContent = signature;
      row.signatureEl.title = signature ? "The signature the malware scanner found" : "";
      row.signatureEl.hidden = !signature;
      updateActions(row);
    }

    /**
     * Applies the scan state the server sent with a document (or its event)
     * of status. A document not stored yet has none, and its "" says
     * nothing; a stored one without any was stored while scanning was off.
     */
    function applyScan(row, status, state, detail, force) {
      if (state || DOWNLOADABLE.has(status)) setScan(row, state, detail, force);
    }

    /**
     * Whether the API gives a download URL for row's document: as its last
     * GET answer said, while the row shows what that answer did; else once
     * its bytes are stored and found clean, or stored while scanning was off.
     * Where scanning is not required (SCAN_REQUIRED off) a document whose
     * scan is pending or failed is downloadable too: only a GET answer says.
     */
    function mayDownload(row) {
      if (!DOWNLOADABLE.has(row.status)) return false;
      if (row.offered !== null) return row.offered;
      return row.scan === "clean" || row.scan === "released" || row.scan === "";
    }

    /** Shows why the server rejected a row's document, unless it shows already. */
    function showRejection(row, reason) {
      // An infected document's scan state says it, with the signature.
      if (!reason || reason === "infected" || !row.errorEl.hidden) return;
      setError(row, String(reason));
    }

    function updateActions(row) {
      const hasId = !!row.id;
      row.downloadBtn.hidden = !(hasId && mayDownload(row));
      row.deleteBtn.hidden = !hasId;
      row.dismissBtn.hidden = hasId;
      row.dismissBtn.textContent = row.upload && !row.upload.done ? "Cancel" : "Remove";
    }

    function setCreated(row, iso) {
      if (!iso) return;
      const d = new Date(iso);
      if (isNaN(d.getTime())) return;
      row.createdAt = d.getTime();
      row.timeEl.dateTime = d.toISOString();
      row.timeEl.textContent = d.toLocaleString();
    }

    function setClassification(row, c) {
      row.classificationEl.textContent = c ? String(c) : "";
      row.classificationEl.hidden = !c;
    }

    /** Gives the row its document id; a row already shown for it is replaced. */
    function bindId(row, id) {
      const other = rows.get(id);
      if (other && other !== row) {
        if (STATUS_RANK[other.status] > STATUS_RANK[row.status]) setStatus(row, other.status);
        if (other.createdAt && !row.createdAt) setCreated(row, new Date(other.createdAt).toISOString());
        if (other.scan !== null) setScan(row, other.scan, other.scanDetail);
        other.tr.remove();
      }
      row.id = id;
      row.tr.dataset.documentId = id;
      rows.set(id, row);
      updateActions(row);
    }

    /** Applies a document object from the API to its row (creating it). */
    function upsertDocument(doc, position) {
      if (!doc || !doc.id) return null;
      let row = rows.get(doc.id);
      const size = doc.size_bytes > 0 ? doc.size_bytes : doc.declared_size;
      if (!row) {
        row = createRow(doc.filename, size);
        bindId(row, doc.id);
        setStatus(row, doc.status, true);
        applyScan(row, doc.status, doc.scan_status, doc.scan_detail, true);
        setCreated(row, doc.created_at);
        if (position === "end") el.tbody.append(row.tr);
        else placeRow(row);
      } else {
        setStatus(row, doc.status);
        applyScan(row, doc.status, doc.scan_status, doc.scan_detail);
        if (!row.createdAt) setCreated(row, doc.created_at);
        if (size > 0) row.sizeEl.textContent = formatBytes(size);
      }
      setClassification(row, doc.classification);
      if (doc.status === "rejected") showRejection(row, doc.reject_reason);
      updateEmpty();
      return row;
    }

    /**
     * Applies an answer of GET /api/documents/{id} to its row (creating it):
     * the document, and whether the API offers its download, which only
     * that answer says (download_url).
     */
    function applyFetched(doc) {
      const row = upsertDocument(doc);
      if (!row) return null;
      // An answer older than what the row shows (an event overtook it)
      // says nothing of what may be downloaded now.
      if (row.status === doc.status && row.scan === (doc.scan_status || "")) {
        row.offered = !!doc.download_url;
        updateActions(row);
      }
      return row;
    }

    /** Inserts a row by creation time, newest first; rows without one go first. */
    function placeRow(row) {
      if (row.createdAt === null) {
        el.tbody.prepend(row.tr);
        return;
      }
      for (const tr of el.tbody.children) {
        const other = tr._row;
        if (other && other.createdAt !== null && other.createdAt < row.createdAt) {
          el.tbody.insertBefore(row.tr, tr);
          return;
        }
      }
      el.tbody.append(row.tr);
    }

    function removeRow(row) {
      if (row.id && rows.get(row.id) === row) rows.delete(row.id);
      row.tr.remove();
      updateEmpty();
    }

    function clearDocuments() {
      rows.clear();
      el.tbody.replaceChildren();
      nextCursor = null;
      el.loadMore.hidden = true;
      el.empty.hidden = true;
    }

    function updateEmpty() {
      el.empty.hidden = el.tbody.children.length > 0;
    }

    // ---- document list -----------------------------------------------

    let listLoading = false;
    let refreshPending = false;

    /** Loads the first page (merging into what is shown) or, if more, the next. */
    async function loadDocuments(more) {
      if (listLoading) {
        if (!more) refreshPending = true;
        return;
      }
      if (more && !nextCursor) return;
      listLoading = true;
      el.loadMore.disabled = true;
      const myEpoch = epoch;
      let path = "/api/documents?limit=" + PAGE_SIZE;
      if (more) path += "&cursor=" + encodeURIComponent(nextCursor);
      try {
        const page = await api("GET", path);
        if (myEpoch !== epoch) return;
        const items = (page && Array.isArray(page.items)) ? page.items : [];
        for (const doc of items) upsertDocument(doc, more ? "end" : undefined);
        // A refresh of the first page must not forget how far "Load more" got.
        if (more || nextCursor === null) nextCursor = page && page.next_cursor ? page.next_cursor : null;
        el.loadMore.hidden = !nextCursor;
        updateEmpty();
      } catch (err) {
        if (myEpoch === epoch && err.status !== 401) {
          say(el.status, "Could not load documents: " + err.message, "error");
        }
      } finally {
        listLoading = false;
        el.loadMore.disabled = false;
        if (refreshPending && myEpoch === epoch) {
          refreshPending = false;
          loadDocuments(false);
        }
      }
    }

    // ---- download / delete -------------------------------------------

    async function download(row) {
      if (!row.id) return;
      const myEpoch = epoch;
      row.downloadBtn.disabled = true;
      try {
        const doc = await api("GET", "/api/documents/" + encodeURIComponent(row.id));
        if (myEpoch !== epoch) return;
        if (doc) applyFetched(doc);
        if (!doc || !doc.download_url) {
          setError(row, "this document cannot be downloaded right now");
          return;
        }
        setError(row, "");
        if (activeUploads === 0 && uploadQueue.length === 0) {
          window.location.assign(doc.download_url);
          return;
        }
        // Navigating away would kill the running uploads: use a new tab.
        const w = window.open(doc.download_url, "_blank");
        if (w) w.opener = null;
        else setError(row, "the browser blocked the download window; try again when uploads finish");
      } catch (err) {
        if (myEpoch === epoch && err.status !== 401) setError(row, err.message);
      } finally {
        row.downloadBtn.disabled = false;
      }
    }

    async function deleteRow(row) {
      if (!row.id || row.deleting) return;
      row.deleting = true;
      row.deleteBtn.disabled = true;
      cancelRowWork(row);
      const myEpoch = epoch;
      try {
        await api("DELETE", "/api/documents/" + encodeURIComponent(row.id));
        dropResume(row.id);
        if (myEpoch !== epoch) return;
        removeRow(row);
        say(el.status, "Deleted " + row.filename + ".");
        scheduleQuotaRefresh();
      } catch (err) {
        if (myEpoch !== epoch) return;
        if (err.status === 404) {
          dropResume(row.id);
          removeRow(row); // already gone
          scheduleQuotaRefresh();
          return;
        }
        row.deleting = false;
        row.deleteBtn.disabled = false;
        if (err.status !== 401) setError(row, "delete failed: " + err.message);
      }
    }

    /** Removes a row that has no document (yet), cancelling its upload. */
    function dismissRow(row) {
      cancelRowWork(row);
      const i = uploadQueue.findIndex((job) => job.row === row);
      if (i >= 0) uploadQueue.splice(i, 1);
      removeRow(row);
    }

    function cancelRowWork(row) {
      if (!row || !row.upload || row.upload.done) return;
      row.upload.cancelled = true;
      for (const xhr of row.upload.xhrs) xhr.abort();
      if (row.upload.controller) row.upload.controller.abort();
    }

    // ---- uploads -----------------------------------------------------

    function addFiles(files) {
      if (!token) return;
      let added = 0;
      const anchor = el.tbody.firstChild; // a batch goes on top, in its own order
      for (const file of files) {
        const row = createRow(file.name, file.size);
        el.tbody.insertBefore(row.tr, anchor);
        added++;
        if (file.size === 0) {
          setStatus(row, "failed", true);
          setError(row, "empty files cannot be uploaded (a file needs at least 1 byte)");
          continue;
        }
        row.upload = { cancelled: false, done: false, xhrs: new Set(), controller: null };
        updateActions(row);
        uploadQueue.push({ row: row, file: file, epoch: epoch, resume: findResume(file) });
      }
      if (added) {
        updateEmpty();
        say(el.status, added === 1 ? "1 file added." : added + " files added.");
      }
      pump();
    }

    function pump() {
      while (activeUploads < MAX_CONCURRENT_UPLOADS && uploadQueue.length > 0) {
        const job = uploadQueue.shift();
        if (job.epoch !== epoch || job.row.upload.cancelled) continue;
        activeUploads++;
        uploadOne(job).finally(() => {
          activeUploads--;
          job.row.upload.done = true;
          job.row.upload.controller = null;
          if (job.row.tr.isConnected) updateActions(job.row);
          pump();
        });
      }
    }

    function fail(row, status, text) {
      setStatus(row, status, true);
      setError(row, text);
      row.progress.hidden = true;
      say(el.status, row.filename + ": " + text, "error");
    }

    async function uploadOne(job) {
      if (job.resume) return resumeUpload(job);
      const row = job.row;
      const file = job.file;
      const up = row.upload;
      const stale = () => up.cancelled || job.epoch !== epoch;
      const contentType = file.type || "application/octet-stream";

      // 1. Hash it, then ask for a presigned URL.
      let sha256 = null;
      try {
        sha256 = await sha256Of(file);
      } catch (_) {
        sha256 = null; // unreadable here: the PUT will say so
      }
      if (stale()) return;
      let ticket;
      up.controller = new AbortController();
      try {
        ticket = await requestUpload(file, contentType, sha256, up.controller.signal);
      } catch (err) {
        if (stale()) return;
        fail(row, err.status === 413 && isQuotaDetail(err.detail) ? "rejected" : "failed", err.message);
        return;
      }
      up.controller = null;
      if (ticket && ticket.duplicate && ticket.document && ticket.document_id) {
        // The same bytes are stored already: nothing to send.
        if (stale()) return;
        bindId(row, String(ticket.document_id));
        upsertDocument(ticket.document);
        row.progress.hidden = true;
        setNote(row, "Already uploaded" + (ticket.document.filename ? " as " + ticket.document.filename : ""));
        say(el.status, file.name + ": already uploaded.");
        return;
      }
      const multipart = !!(ticket && ticket.upload_id);
      if (
        !ticket || !ticket.document_id ||
        (multipart ? !(ticket.part_size > 0 && ticket.part_count > 0) : !ticket.upload_url)
      ) {
        if (!stale()) fail(row, "failed", "the server sent an incomplete upload ticket");
        return;
      }
      if (stale()) {
        // Cancelled while asking: drop the pending document again.
        if (job.epoch === epoch) {
          api("DELETE", "/api/documents/" + encodeURIComponent(ticket.document_id)).catch(() => {});
        }
        return;
      }
      bindId(row, String(ticket.document_id));
      if (multipart) {
        // A large file: the server cut it in parts. Remember it, so that
        // after a reload choosing the file again sends only what is missing.
        const plan = {
          id: row.id,
          size: file.size,
          partSize: ticket.part_size,
          partCount: ticket.part_count,
          checksummed: ticket.part_checksum === "sha256",
        };
        saveResume({
          document_id: plan.id,
          filename: file.name,
          size: file.size,
          lastModified: file.lastModified,
          part_size: plan.partSize,
          part_count: plan.partCount,
          part_checksum: plan.checksummed ? "sha256" : "",
        });
        const urls = new Map();
        for (const p of Array.isArray(ticket.parts) ? ticket.parts : []) {
          if (p && p.url) urls.set(Number(p.part_number), String(p.url));
        }
        await sendParts(job, plan, new Map(), urls);
        return;
      }

      // 2. PUT the bytes straight to storage.
      setStatus(row, "uploading", true);
      setError(row, "");
      row.progress.hidden = false;
      row.progress.value = 0;
      row.progress.setAttribute("aria-busy", "true");
      let put;
      try {
        put = await putFile(up, ticket.upload_url, ticket.headers || {}, file, (loaded, total) => {
          row.progress.value = total > 0 ? Math.min(100, (loaded / total) * 100) : 0;
        });
      } catch (_) {
        put = { status: 0 };
      }
      if (stale()) return;
      if (put.aborted) return;
      if (put.status < 200 || put.status >= 300) {
        if (put.status === 403) {
          fail(row, "failed", "upload refused by storage (size or type changed)");
        } else if (put.status === 400 && sha256) {
          fail(row, "failed", "upload refused by storage: the bytes sent are not the file that was hashed (did it change?)");
        } else if (put.status === 0) {
          fail(row, "failed", "upload failed: storage could not be reached");
        } else {
          fail(row, "failed", "upload failed: storage answered HTTP " + put.status);
        }
        return;
      }
      row.progress.value = 100;
      row.progress.removeAttribute("aria-busy");

      // 3. Confirm (idempotent; storage events may have confirmed already).
      let res;
      try {
        res = await api("POST", "/api/documents/" + encodeURIComponent(row.id) + "/confirm");
      } catch (err) {
        if (stale() || row.deleting) return;
        failCharge(row, err);
        return;
      }
      if (stale() || row.deleting) return;
      uploaded(row, res);
    }

    /** Shows a refused confirm or complete: over quota, or another error. */
    function failCharge(row, err) {
      if (err.status === 413 && isQuotaDetail(err.detail)) {
        fail(row, "rejected", quotaMessage(err.detail));
        renderQuotaFromReject(err.detail);
      } else {
        fail(row, "failed", err.message);
      }
      scheduleQuotaRefresh();
    }

    /** Shows a confirmed upload: res is the confirm's or the complete's answer. */
    function uploaded(row, res) {
      if (res && res.status) setStatus(row, res.status);
      else setStatus(row, "uploaded");
      if (res && res.size_bytes > 0) row.sizeEl.textContent = formatBytes(res.size_bytes);
      const limit = Number(el.quotaBar.dataset.limit);
      if (res && typeof res.used_bytes === "number" && limit > 0) {
        renderQuota({ used_bytes: res.used_bytes, limit_bytes: limit });
      }
      say(el.status, "Uploaded " + row.filename + ".");
      fetchUploaded(row);
      scheduleQuotaRefresh();
    }

    function renderQuotaFromReject(d) {
      renderQuota({ used_bytes: d.used_bytes, limit_bytes: d.limit_bytes });
    }

    /**
     * Fills in what the answer of a confirm (or complete) lacks of a freshly
     * uploaded row: its created time, its scan state and so whether it may
     * be downloaded. Should this fail, the document's events still tell.
     */
    async function fetchUploaded(row) {
      const myEpoch = epoch;
      try {
        const doc = await api("GET", "/api/documents/" + encodeURIComponent(row.id));
        if (myEpoch === epoch && doc && rows.get(row.id) === row) applyFetched(doc);
      } catch (_) {
        // the events fill it in
      }
    }

    /**
     * PUTs file (a File or a slice of one) to url with XMLHttpRequest (for
     * upload progress). Resolves {status, etag} once storage answers,
     * {status: 0} on a network failure and {aborted: true} when cancelled.
     */
    function putFile(up, url, headers, file, onProgress) {
      return new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        up.xhrs.add(xhr);
        const settle = (result) => {
          up.xhrs.delete(xhr);
          resolve(result);
        };
        xhr.open("PUT", url, true);
        for (const name of Object.keys(headers)) {
          // Browsers set Content-Length themselves and refuse to let scripts.
          if (name.toLowerCase() === "content-length") continue;
          xhr.setRequestHeader(name, String(headers[name]));
        }
        xhr.upload.addEventListener("progress", (e) => {
          onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
        });
        xhr.addEventListener("load", () => settle({ status: xhr.status, etag: xhr.getResponseHeader("ETag") || "" }));
        xhr.addEventListener("error", () => settle({ status: 0 }));
        xhr.addEventListener("timeout", () => settle({ status: 0 }));
        xhr.addEventListener("abort", () => settle({ aborted: true, status: 0 }));
        xhr.send(file);
      });
    }

    // ---- multipart uploads -------------------------------------------

    /**
     * Sends the parts of plan ({id, size, partSize, partCount}) that are not
     * in etags (part number -> ETag of the parts storage holds already),
     * PARTS_IN_FLIGHT at a time, then completes the upload. urls holds the
     * part URLs known already; the others are asked for in batches, ahead of
     * need. A part whose URL expired (403) is signed again, once.
     */
    async function sendParts(job, plan, etags, urls) {
      const row = job.row;
      const file = job.file;
      const up = row.upload;
      const stale = () => up.cancelled || job.epoch !== epoch;
      const base = "/api/documents/" + encodeURIComponent(plan.id);
      const sizeOf = (n) => plannedPartSize(n, plan.size, plan.partSize, plan.partCount);
      up.controller = new AbortController();
      const signal = up.controller.signal;

      const todo = []; // part numbers not started yet, ascending
      let doneBytes = 0;
      for (let n = 1; n <= plan.partCount; n++) {
        if (etags.has(n)) doneBytes += sizeOf(n);
        else todo.push(n);
      }
      // One bar for the file: the bytes of the parts stored plus what the
      // parts in flight have sent so far.
      const loaded = new Map(); // part number -> bytes sent
      const showProgress = () => {
        let sent = doneBytes;
        for (const b of loaded.values()) sent += b;
        row.progress.value = plan.size > 0 ? Math.min(100, (sent / plan.size) * 100) : 0;
      };
      setStatus(row, "uploading", true);
      setError(row, "");
      row.progress.hidden = false;
      row.progress.setAttribute("aria-busy", "true");
      showProgress();

      // A checksummed upload's part URL signs the part's SHA-256: each part
      // is read and hashed (one at a time, never the whole file) before its
      // URL is asked for, and its PUT carries the digest.
      const digests = new Map(); // part number -> base64 SHA-256
      const partBody = (n) => file.slice((n - 1) * plan.partSize, (n - 1) * plan.partSize + sizeOf(n));
      const partDigest = async (n) => {
        if (!digests.has(n)) digests.set(n, await digestOf(partBody(n)));
        return digests.get(n);
      };
      let signing = null; // the batch of part URLs being asked for
      const sign = async (numbers) => {
        let body = { part_numbers: numbers };
        if (plan.checksummed) {
          const parts = [];
          for (const n of numbers) parts.push({ part_number: n, sha256: await partDigest(n) });
          body = { parts: parts };
        }
        const res = await api("POST", base + "/parts", { body: body, signal: signal });
        for (const p of res && Array.isArray(res.parts) ? res.parts : []) {
          if (p && p.url) urls.set(Number(p.part_number), String(p.url));
        }
      };
      // Asks for the URLs of part `first` (if given) and of the next parts to send.
      const signAhead = (first) => {
        if (signing) return signing;
        const want = first !== undefined && !urls.has(first) ? [first] : [];
        for (const n of todo) {
          if (want.length >= PART_URL_BATCH) break;
          if (!urls.has(n)) want.push(n);
        }
        if (want.length === 0) return Promise.resolve();
        signing = sign(want).finally(() => {
          signing = null;
        });
        return signing;
      };
      const urlFor = async (n) => {
        // The batch in flight may not hold n; the next one starts with it.
        for (let asked = 0; !urls.has(n); asked++) {
          if (asked === 3) throw new ApiError(0, "the server sent no upload URL for part " + n);
          await signAhead(n);
        }
        const url = urls.get(n);
        urls.delete(n);
        let ready = 0;
        for (const m of todo) if (urls.has(m)) ready++;
        if (ready < PART_URL_AHEAD && ready < todo.length) {
          signAhead().catch(() => {}); // a failure shows when that URL is needed
        }
        return url;
      };

      let failure = null;
      const sendPart = async (n) => {
        const size = sizeOf(n);
        const body = partBody(n);
        let url = await urlFor(n);
        const headers = plan.checksummed ? { "x-amz-checksum-sha256": await partDigest(n) } : {};
        let resigned = false;
        let retries = 0;
        for (;;) {
          const put = await putFile(up, url, headers, body, (sent) => {
            loaded.set(n, sent);
            showProgress();
          });
          loaded.delete(n);
          if (put.aborted || stale() || failure) return;
          if (put.status >= 200 && put.status < 300) {
            etags.set(n, put.etag);
            doneBytes += size;
            showProgress();
            return;
          }
          if (put.status === 403 && !resigned) {
            // Its URL expired (a long upload, a resumed one): sign it again.
            resigned = true;
            await sign([n]);
            if (!urls.has(n)) throw new ApiError(0, "the server sent no upload URL for part " + n);
            url = urls.get(n);
            urls.delete(n);
            continue;
          }
          if ((put.status === 0 || put.status >= 500) && retries < PART_RETRIES) {
            retries++;
            showProgress();
            await sleep(1000 * retries, signal);
            if (stale()) return;
            continue;
          }
          if (put.status === 403) throw new ApiError(403, "upload refused by storage (part " + n + ")");
          if (put.status === 0) throw new ApiError(0, "upload failed: storage could not be reached");
          throw new ApiError(put.status, "upload failed: storage answered HTTP " + put.status);
        }
      };
      const worker = async () => {
        while (todo.length > 0 && !failure && !stale()) {
          const n = todo.shift();
          try {
            await sendPart(n);
          } catch (err) {
            if (!failure) failure = err;
            for (const xhr of up.xhrs) xhr.abort(); // the other parts stop too
          }
        }
      };
      const workers = [];
      for (let i = 0; i < PARTS_IN_FLIGHT && i < todo.length; i++) workers.push(worker());
      await Promise.all(workers);
      if (stale()) return;
      if (failure) {
        if (failure.status === 404 || failure.status === 409) {
          dropResume(plan.id); // deleted, expired or finished meanwhile
          fail(row, "failed", failure.message);
        } else {
          fail(row, "failed", failure.message + "; choose the file again to resume");
        }
        return;
      }

      // Storage that hides the ETag header from scripts: the listing has them.
      if (Array.from(etags.values()).some((etag) => !etag)) {
        try {
          const listing = await api("GET", base + "/parts", { signal: signal });
          const stored = storedParts(listing && listing.parts, plan.size, plan.partSize, plan.partCount);
          for (const [n, etag] of stored) if (!etags.get(n)) etags.set(n, etag);
        } catch (err) {
          if (!stale()) fail(row, "failed", err.message);
          return;
        }
      }
      row.progress.value = 100;
      row.progress.removeAttribute("aria-busy");

      const parts = [];
      for (let n = 1; n <= plan.partCount; n++) parts.push({ part_number: n, etag: etags.get(n) || "" });
      let res;
      try {
        res = await api("POST", base + "/complete", { body: { parts: parts } });
      } catch (err) {
        if (err.status === 404 || err.status === 409 || err.status === 413) dropResume(plan.id);
        if (stale() || row.deleting) return;
        failCharge(row, err);
        return;
      }
      dropResume(plan.id);
      if (stale() || row.deleting) return;
      uploaded(row, res);
    }

    /**
     * Resumes a multipart upload a reload interrupted: asks which parts
     * storage holds and sends the others. When the document is gone or no
     * longer pending, shows it if it was uploaded, else uploads afresh.
     */
    async function resumeUpload(job) {
      const row = job.row;
      const up = row.upload;
      const entry = job.resume;
      const stale = () => up.cancelled || job.epoch !== epoch;
      const id = String(entry.document_id);
      const base = "/api/documents/" + encodeURIComponent(id);
      up.controller = new AbortController();
      let listing;
      try {
        listing = await api("GET", base + "/parts", { signal: up.controller.signal });
      } catch (err) {
        if (stale()) return;
        if (err.status !== 404 && err.status !== 409) {
          fail(row, "failed", err.message);
          return;
        }
        dropResume(id);
        job.resume = null;
        if (err.status === 409 && (await showFinished(row, id))) return;
        if (stale()) return;
        return uploadOne(job);
      }
      up.controller = null;
      if (stale()) return;
      const plan = {
        id: id,
        size: job.file.size,
        partSize: Number(listing && listing.part_size) || entry.part_size,
        partCount: Number(listing && listing.part_count) || entry.part_count,
        checksummed: entry.part_checksum === "sha256" || (Array.isArray(listing && listing.parts) && listing.parts.some((p) => p && p.sha256)),
      };
      const etags = storedParts(listing && listing.parts, plan.size, plan.partSize, plan.partCount);
      bindId(row, id);
      say(el.status, "Resuming " + row.filename + ": " + etags.size + " of " + plan.partCount + " parts already stored.");
      await sendParts(job, plan, etags, new Map());
    }

    /** Shows document id on row if it was uploaded; false when it was not. */
    async function showFinished(row, id) {
      let doc;
      try {
        doc = await api("GET", "/api/documents/" + encodeURIComponent(id));
      } catch (_) {
        return false;
      }
      if (!doc || !DOWNLOADABLE.has(doc.status)) return false;
      bindId(row, id);
      applyFetched(doc);
      row.progress.hidden = true;
      say(el.status, row.filename + " was uploaded already.");
      scheduleQuotaRefresh();
      return true;
    }

    // ---- resumable uploads (sessionStorage) --------------------------

    /**
     * The multipart uploads started in this tab and not finished, as
     * {document_id, filename, size, lastModified, part_size, part_count}.
     */
    function loadResumes() {
      try {
        const list = JSON.parse(sessionStorage.getItem(RESUME_KEY) || "[]");
        return Array.isArray(list) ? list.filter((e) => e && typeof e.document_id === "string") : [];
      } catch (_) {
        return [];
      }
    }

    function storeResumes(list) {
      try {
        if (list.length > 0) sessionStorage.setItem(RESUME_KEY, JSON.stringify(list));
        else sessionStorage.removeItem(RESUME_KEY);
      } catch (_) {
        // storage full or disabled: the upload just cannot be resumed
      }
    }

    function saveResume(entry) {
      storeResumes(loadResumes().filter((e) => e.document_id !== entry.document_id).concat([entry]));
    }

    function dropResume(id) {
      const list = loadResumes();
      const kept = list.filter((e) => e.document_id !== id);
      if (kept.length !== list.length) storeResumes(kept);
    }

    /** The newest saved upload of file that this page is not sending already. */
    function findResume(file) {
      const list = loadResumes().filter((e) => resumeMatches(e, file));
      for (let i = list.length - 1; i >= 0; i--) {
        const id = list[i].document_id;
        const row = rows.get(id);
        if (row && row.upload && !row.upload.done) continue;
        if (uploadQueue.some((job) => job.resume && job.resume.document_id === id)) continue;
        return list[i];
      }
      return null;
    }

    // ---- live updates (SSE over fetch) -------------------------------

    function setLive(state) {
      el.live.dataset.state = state;
      el.live.textContent = {
        off: "Live updates off",
        connecting: "Connecting…",
        live: "Live",
        retrying: "Reconnecting…",
      }[state] || state;
    }

    function stopStream() {
      if (streamAbort) {
        streamAbort.abort();
        streamAbort = null;
      }
    }

    function sleep(ms, signal) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const t = setTimeout(done, ms);
        signal.addEventListener("abort", done);
      });
    }

    async function startStream() {
      stopStream();
      const session = new AbortController();
      streamAbort = session;
      const myEpoch = epoch;
      let backoff = BACKOFF_MIN_MS;
      let connectedBefore = false;
      // The id (stream sequence) of the last event received: a reconnect
      // sends it as Last-Event-ID and gets every event sent meanwhile.
      let lastEventId = "";
      const alive = () => !session.signal.aborted && myEpoch === epoch && !!token;

      while (alive()) {
        setLive(connectedBefore ? "retrying" : "connecting");
        const opened = Date.now();
        // One controller per connection: sign-out aborts it, and so does the
        // watchdog when a connection goes silent (heartbeats come every 15 s).
        const conn = new AbortController();
        const onSessionAbort = () => conn.abort();
        session.signal.addEventListener("abort", onSessionAbort);
        let watchdog = null;
        const feedDog = () => {
          clearTimeout(watchdog);
          watchdog = setTimeout(() => conn.abort(), STREAM_SILENCE_MS);
        };
        try {
          feedDog();
          const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
          if (lastEventId) headers["Last-Event-ID"] = lastEventId;
          const res = await fetch("/api/events", { headers, cache: "no-store", signal: conn.signal });
          if (res.status === 401) {
            if (alive()) signOut("Your session has expired or the token is no longer valid. Please sign in again.");
            return;
          }
          if (res.ok && res.body) {
            setLive("live");
            if (connectedBefore && !lastEventId) {
              // No event seen to resume after: what happened meanwhile is
              // not replayed, so resync.
              loadDocuments(false);
              scheduleQuotaRefresh();
            }
            connectedBefore = true;
            const parser = new SSEParser(onStreamEvent);
            // Like EventSource, the last event id carries over a reconnect
            // until the server sends another (a reset may send an empty one).
            parser.lastId = lastEventId;
            try {
              await readStream(res.body, conn.signal, feedDog, parser);
            } finally {
              lastEventId = parser.lastId;
            }
          } else {
            // 400: the saved id is not one the server knows; start afresh.
            if (res.status === 400) lastEventId = "";
            // 429 (streams opened too often) and 503 say when to come back.
            const retryAfter = parseInt(res.headers.get("Retry-After") || "", 10);
            if (retryAfter > 0) backoff = Math.max(backoff, Math.min(retryAfter * 1000, 5 * BACKOFF_MAX_MS));
            if (res.body) res.body.cancel().catch(() => {});
          }
        } catch (_) {
          // network failure, watchdog or sign-out: handled below
        } finally {
          clearTimeout(watchdog);
          session.signal.removeEventListener("abort", onSessionAbort);
        }
        if (!alive()) return;
        if (Date.now() - opened >= STABLE_STREAM_MS) backoff = BACKOFF_MIN_MS;
        setLive("retrying");
        await sleep(backoff, session.signal);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }

    async function readStream(body, signal, onData, parser) {
      const reader = body.getReader();
      const decoder = new TextDecoder("utf-8");
      const onAbort = () => reader.cancel().catch(() => {});
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          onData();
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    }

    function onStreamEvent(ev) {
      if (ev.type === "reset") {
        // The server could not replay what happened since our last event
        // (too long ago): what the page shows may be stale.
        loadDocuments(false);
        scheduleQuotaRefresh();
        return;
      }
      let ce;
      try {
        ce = JSON.parse(ev.data);
      } catch (_) {
        return; // not ours
      }
      if (!ce || typeof ce !== "object") return;
      const data = ce.data && typeof ce.data === "object" ? ce.data : {};
      const type = typeof ce.type === "string" && ce.type ? ce.type : ev.type;
      const id = String(data.document_id || ce.subject || "");
      if (!id) return;
      const row = rows.get(id);

      if (type === "document.deleted") {
        if (row) removeRow(row);
      } else {
        const status = EVENT_STATUS[type] || (typeof data.status === "string" ? data.status : "");
        if (row) {
          if (status) setStatus(row, status);
          applyScan(row, status, data.scan_status, data.scan_detail);
          if (data.size_bytes > 0) row.sizeEl.textContent = formatBytes(data.size_bytes);
          if (data.classification) setClassification(row, data.classification);
          if (status === "rejected") showRejection(row, data.reason);
        } else {
          fetchAndInsert(id); // uploaded from elsewhere (another tab, a script)
        }
      }
      scheduleQuotaRefresh();
    }

    const fetching = new Set();
    async function fetchAndInsert(id) {
      if (fetching.has(id)) return;
      fetching.add(id);
      const myEpoch = epoch;
      try {
        const doc = await api("GET", "/api/documents/" + encodeURIComponent(id));
        if (myEpoch === epoch) applyFetched(doc);
      } catch (_) {
        // deleted meanwhile, or not visible: nothing to show
      } finally {
        fetching.delete(id);
      }
    }

    // ---- wiring ------------------------------------------------------

    el.signinForm.addEventListener("submit", (e) => {
      e.preventDefault();
      signIn(el.tokenInput.value);
    });
    el.tokenInput.addEventListener("keydown", (e) => {
      // Enter signs in; Shift+Enter would only add whitespace to a token.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        el.signinForm.requestSubmit();
      }
    });
    el.devSignin.addEventListener("click", devSignIn);
    el.signout.addEventListener("click", () => signOut());
    el.loadMore.addEventListener("click", () => loadDocuments(true));

    el.fileInput.addEventListener("change", () => {
      const files = Array.from(el.fileInput.files || []);
      el.fileInput.value = ""; // so the same file can be chosen again
      addFiles(files);
    });

    let dragDepth = 0;
    const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
    el.dropZone.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      dragDepth++;
      el.dropZone.classList.add("dragover");
    });
    el.dropZone.addEventListener("dragover", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      el.dropZone.classList.add("dragover");
    });
    el.dropZone.addEventListener("dragleave", () => {
      dragDepth = Math.max(0, dragDepth - 1);
      if (dragDepth === 0) el.dropZone.classList.remove("dragover");
    });
    el.dropZone.addEventListener("drop", (e) => {
      e.preventDefault();
      dragDepth = 0;
      el.dropZone.classList.remove("dragover");
      const dt = e.dataTransfer;
      if (!dt) return;
      const files = [];
      let folders = 0;
      if (dt.items && dt.items.length) {
        for (const item of dt.items) {
          if (item.kind !== "file") continue;
          const entry = typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null;
          if (entry && entry.isDirectory) {
            folders++;
            continue;
          }
          const f = item.getAsFile();
          if (f) files.push(f);
        }
      } else {
        files.push(...Array.from(dt.files || []));
      }
      addFiles(files);
      if (folders) say(el.status, "Folders cannot be uploaded; drop the files inside them instead.", "error");
    });
    // A file dropped beside the zone must not make the browser open it.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());

    // Resume a session kept in this tab.
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
  }

  if (typeof module === "object" && module.exports) {
    module.exports = {
      formatBytes, detailText, quotaMessage, isQuotaDetail, SSEParser,
      plannedPartSize, storedParts, resumeMatches, scanLabel,
    };
  }
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
    else init();
  }
})();
