/* Words and numbers for people: times, sizes, dates, a job's name and status. Pure
 * functions of their arguments, so every other module can use them freely. */

export function clock(seconds, withMs = false) {
  const s = Math.max(0, seconds || 0);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const pad = (n) => String(n).padStart(2, "0");
  let out = h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
  if (withMs) out += `.${String(Math.floor((s % 1) * 10))}`;
  return out;
}

export function bytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function finished(job) {
  return job.status === "completed" || job.status === "failed";
}

export function jobName(job) {
  return job.filename || `Job ${job.id.slice(0, 8)}`;
}

/** A file name for a download of the job's transcript, without the media's extension. */
export function baseName(job) {
  const name = (job.filename || job.id).replace(/\.[^.]+$/, "");
  return name.replace(/[\\/:*?"<>|]+/g, "_") || job.id;
}

/** Status in words, for the list, the viewer and screen readers. */
export function describe(job) {
  const p = job.progress || {};
  switch (job.status) {
    case "queued":
      return "Waiting in the queue";
    case "splitting":
      return "Preparing the audio";
    case "transcribing": {
      const chunks = p.chunks_total ? ` · ${p.chunks_done} of ${p.chunks_total} parts` : "";
      const eta = p.eta_seconds ? ` · about ${clock(p.eta_seconds)} left` : "";
      return `Transcribing ${Math.round(p.percent || 0)}%${chunks}${eta}`;
    }
    case "completed":
      return "Transcript ready";
    case "failed":
      return "Failed";
    default:
      return job.status;
  }
}

/** The `detail` of an API error: a string, or FastAPI's list of validation errors. */
export function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return detail ? JSON.stringify(detail) : "";
}

/** Fill a <progress>: indeterminate until chunks are known, 100 when done. */
export function setBar(bar, job) {
  const p = job.progress || {};
  bar.classList.toggle("failed", job.status === "failed");
  bar.classList.toggle("done", job.status === "completed");
  if (job.status === "completed") bar.value = 100;
  else if (job.status === "transcribing" || p.percent > 0) bar.value = p.percent || 0;
  else bar.removeAttribute("value"); // indeterminate
  bar.dataset.percent = job.status === "completed" ? "100" : String(p.percent || 0);
}
