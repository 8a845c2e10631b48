/* The public API under /v1, and the API key it may ask for. The key lives in
 * localStorage and travels only in the Authorization header, never in a URL. */
import { describeDetail } from "./format.js";

const KEY_STORAGE = "vtx.apiKey";

/** The API as the page uses it; `ui` holds the key dialog and the "forget key" button. */
export function createApi(ui) {
  let prompt = null;

  function key() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  function setKey(value) {
    try {
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
    } catch {
      /* storage disabled: the key lasts for this page only */
    }
    ui.keyButton.hidden = !value;
  }

  /** Ask once for a key, however many requests were refused at the same time. */
  function askForKey(refused) {
    if (prompt) return prompt;
    const dialog = ui.keyDialog;
    const input = ui.keyInput;
    ui.keyError.textContent = refused ? "The server refused the key that was saved." : "";
    input.value = "";
    prompt = new Promise((resolve) => {
      dialog.addEventListener(
        "close",
        () => {
          prompt = null;
          const typed = input.value.trim();
          if (dialog.returnValue === "save" && typed) {
            setKey(typed);
            resolve(true);
          } else resolve(false);
        },
        { once: true },
      );
      dialog.returnValue = "";
      dialog.showModal();
      input.focus();
    });
    return prompt;
  }

  function headers(extra = {}) {
    const value = key();
    return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
  }

  /** fetch() with the key; on 401 ask for one and try again until the user gives up. */
  async function request(path, options = {}) {
    for (;;) {
      const sent = key();
      const response = await fetch(path, { ...options, headers: headers(options.headers) });
      if (response.status !== 401) return response;
      if (!(await askForKey(Boolean(sent)))) return response;
    }
  }

  /** POST one file to /v1/jobs with upload progress (fetch has none): the answer's
   * status, body and Retry-After; status 0 when it never reached the server. Options
   * left undefined are not sent, so the server's defaults hold (`vad` only as false,
   * `speakers` only when asked for). */
  function upload(file, { language, hotwords, speakers, vad }, onProgress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/jobs");
      for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) onProgress((100 * e.loaded) / e.total);
      });
      xhr.addEventListener("load", () =>
        resolve({
          status: xhr.status,
          text: xhr.responseText,
          retryAfter: xhr.getResponseHeader("Retry-After"),
        }),
      );
      xhr.addEventListener("error", () => resolve({ status: 0, text: "" }));
      xhr.addEventListener("abort", () => resolve({ status: 0, text: "" }));
      const form = new FormData();
      if (language) form.append("language", language);
      if (hotwords) form.append("hotwords", hotwords);
      if (speakers) form.append("speakers", speakers);
      if (vad === false) form.append("vad", "false");
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  /** Read a Server-Sent Events stream through fetch (so the key rides in a header, which
   * EventSource cannot send), calling `onEvent(name, data)` for each event until it ends.
   * Resolves to {ok, status}: ok once the stream was open, whatever ended it. */
  async function stream(path, onEvent) {
    let response;
    try {
      response = await request(path, { headers: { Accept: "text/event-stream" } });
    } catch {
      return { ok: false, status: 0 };
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
      response.body?.cancel().catch(() => {});
      return { ok: false, status: response.status };
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const [name, data] = parseEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (data) await onEvent(name, data);
        }
      }
    } catch {
      /* the stream broke: the caller decides what takes over */
    } finally {
      reader.cancel().catch(() => {});
    }
    return { ok: true, status: response.status };
  }

  return { key, setKey, askForKey, request, upload, stream };
}

/** One SSE block as [event name, data]; comments and `retry:` give no data. */
function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return [name, data.join("\n")];
}

/** The server's own words for a refusal: `detail` of an error body, else the status. */
export async function problem(response) {
  let detail = "";
  try {
    detail = detailOf(await response.text());
  } catch {
    /* body unreadable */
  }
  return detail || `${response.status} ${response.statusText || "error"}`;
}

/** The `detail` of an error body, or the start of a body that is not JSON. */
export function detailOf(text) {
  try {
    return describeDetail(JSON.parse(text).detail);
  } catch {
    return (text || "").slice(0, 300);
  }
}
