// davserver's file manager (issue 17). It speaks only what every client may: PROPFIND, PUT
// (in pieces with Content-Range, so a cut upload resumes), MKCOL, MOVE, the JSON batch and
// GET ?zip. Names are put into the page with textContent and setAttribute only, never as HTML.

const DAV = "DAV:";
const PIECE = 4 * 1024 * 1024; // bytes per PUT of a large upload: what a cut can lose
const body = document.body;
const root = body.dataset.root || "/";
const writable = body.dataset.writable === "true";
const here = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";

let entries = []; // {name, folder, size, modified (Date), type, etag, href}
let sortKey = "name";
let sortUp = true;
let lastChecked = -1; // row index of the last checkbox clicked, for shift-click ranges
const selected = new Set();
// One collator for every comparison: localeCompare with options builds one per call, which
// made sorting 10,000 names take seconds.
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

// -- small helpers -----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

function button(label, action, attrs = {}) {
  return el("button", { type: "button", text: label, onclick: action, ...attrs });
}

const hrefOf = (name, folder = false) => here + encodeURIComponent(name) + (folder ? "/" : "");

function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = -1;
  do { value /= 1024; unit += 1; } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function when(date) {
  if (!date || Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function kind(entry) {
  if (entry.folder) return "folder";
  const dot = entry.name.lastIndexOf(".");
  return dot > 0 ? entry.name.slice(dot + 1).toLowerCase() : "";
}

// -- the page's parts --------------------------------------------------------------------------

const crumbs = el("ol");
const filter = el("input", { type: "search", "aria-label": "Filter", placeholder: "Filter" });
const picker = el("input", { type: "file", multiple: true, hidden: true, id: "picker" });
const folderPicker = el("input", { type: "file", webkitdirectory: true, hidden: true, id: "folder-picker" });
const actions = {};
const table = el("table");
const rows = el("tbody");
const selectAll = el("input", { type: "checkbox", "aria-label": "Select all" });
const uploads = el("ul", { id: "uploads", "aria-label": "Uploads" });
const overall = el("progress", { max: 1, value: 0, "aria-label": "Overall upload", hidden: true });
const log = el("ul", { id: "log", role: "log", "aria-label": "Outcomes", "aria-live": "polite" });
const status = el("p", { role: "status", id: "status" });
const headers = {};

function build() {
  const bar = el("div", { class: "bar" });
  if (writable) {
    actions.upload = button("Upload", () => picker.click());
    actions.uploadFolder = button("Upload folder", () => folderPicker.click());
    actions.newFolder = button("New folder", newFolder);
    actions.rename = button("Rename", rename);
    actions.move = button("Move", () => transfer("move"));
    actions.copy = button("Copy", () => transfer("copy"));
    actions.edit = button("Edit", edit);
    actions.delete = button("Delete", remove);
  }
  actions.download = button("Download", download);
  actions.zip = button("Download as zip", downloadZip);
  bar.append(...Object.values(actions), filter, picker, folderPicker);
  const search = el("form", { class: "bar", role: "search", onsubmit: searchBelow });
  search.append(
    el("input", { type: "search", name: "q", "aria-label": "Search below this folder", placeholder: "Search below" }),
    el("button", { type: "submit", text: "Search" }),
  );
  const head = el("tr", {}, el("th", {}, selectAll));
  for (const [key, label] of [["name", "Name"], ["size", "Size"], ["modified", "Modified"], ["type", "Type"]]) {
    headers[key] = el("th", { class: key, scope: "col" }, button(label, () => sortBy(key)));
    head.append(headers[key]);
  }
  table.append(el("thead", {}, head), rows);
  body.append(el("nav", { "aria-label": "Breadcrumb" }, crumbs), bar, search, status, overall, uploads, log, table);
}

function renderCrumbs() {
  crumbs.replaceChildren();
  const names = here.slice(root.length).split("/").filter(Boolean).map(decodeURIComponent);
  let path = root;
  const items = [["Home", root]];
  for (const name of names) {
    path += encodeURIComponent(name) + "/";
    items.push([name, path]);
  }
  items.forEach(([label, target], index) => {
    const last = index === items.length - 1;
    crumbs.append(el("li", {}, el("a", { href: target, text: label, "aria-current": last ? "page" : false })));
  });
  document.title = names.length ? names[names.length - 1] : location.host;
}

function visible() {
  const needle = filter.value.trim().toLowerCase();
  const shown = needle ? entries.filter((e) => e.name.toLowerCase().includes(needle)) : entries.slice();
  const sign = sortUp ? 1 : -1;
  const byName = (a, b) => collator.compare(a.name, b.name);
  const compare = {
    name: byName,
    size: (a, b) => a.size - b.size,
    modified: (a, b) => a.modified - b.modified,
    type: (a, b) => collator.compare(kind(a), kind(b)),
  }[sortKey];
  // Folders stay first whatever the order, as in every file manager.
  return shown.sort((a, b) => (b.folder - a.folder) || sign * compare(a, b) || byName(a, b));
}

// Up to this many rows are all in the page; a longer list draws only the rows near the
// screen (and blank space for the others), so 10,000 files show and scroll at once.
const ALL_ROWS = 300;
const MARGIN = 40; // rows drawn above and below the screen
let shown = []; // the entries as filtered and sorted, in the order of the rows
let drawn = "";
let rowHeight = 0;

function render() {
  shown = visible();
  drawn = "";
  table.setAttribute("aria-rowcount", shown.length + 1);
  draw();
  for (const [key, th] of Object.entries(headers)) {
    th.setAttribute("aria-sort", key === sortKey ? (sortUp ? "ascending" : "descending") : "none");
  }
  selectAll.checked = shown.length > 0 && shown.every((e) => selected.has(e.name));
  updateActions();
}

function rowOf(entry, index) {
  const box = el("input", { type: "checkbox", "aria-label": `Select ${entry.name}`, "data-index": index });
  box.checked = selected.has(entry.name);
  const link = el("a", { href: entry.href, text: entry.name, title: entry.name, class: entry.folder ? "folder" : false, "data-index": index });
  return el("tr", { class: box.checked ? "selected" : false, "aria-rowindex": index + 2 },
    el("td", {}, box),
    el("td", { class: "name" }, link),
    el("td", { class: "size", text: entry.folder ? "" : humanSize(entry.size) }),
    el("td", { class: "modified", text: when(entry.modified) }),
    el("td", { class: "type", text: kind(entry) }));
}

function spacer(count) {
  const cell = el("td", { colspan: 5 });
  cell.style.height = `${count * rowHeight}px`; // CSSOM, which the page's policy allows
  return el("tr", { class: "spacer", "aria-hidden": "true" }, cell);
}

function draw() {
  let from = 0;
  let to = shown.length;
  if (shown.length > ALL_ROWS) {
    if (!rowHeight) {
      rows.replaceChildren(rowOf(shown[0], 0));
      rowHeight = rows.firstElementChild.getBoundingClientRect().height || 32;
    }
    const above = Math.max(0, -rows.getBoundingClientRect().top);
    from = Math.max(0, Math.floor(above / rowHeight) - MARGIN);
    to = Math.min(shown.length, from + Math.ceil(innerHeight / rowHeight) + 2 * MARGIN);
  }
  if (drawn === `${from}-${to}`) return;
  drawn = `${from}-${to}`;
  // Drawing replaces the rows: the focused one gets its focus back.
  const focused = rows.contains(document.activeElement) ? document.activeElement : null;
  const fragment = document.createDocumentFragment();
  if (from > 0) fragment.append(spacer(from));
  for (let index = from; index < to; index += 1) fragment.append(rowOf(shown[index], index));
  if (to < shown.length) fragment.append(spacer(shown.length - to));
  rows.replaceChildren(fragment);
  if (focused) {
    rows.querySelector(`${focused.tagName}[data-index="${focused.dataset.index}"]`)?.focus();
  }
}

let drawing = false;
function drawSoon() {
  if (drawing || shown.length <= ALL_ROWS) return;
  drawing = true;
  requestAnimationFrame(() => { drawing = false; draw(); });
}

rows.addEventListener("click", (event) => {
  const index = Number(event.target.dataset.index);
  if (Number.isNaN(index)) return;
  if (event.target.type === "checkbox") pick(index, event.target.checked, event.shiftKey);
  else if (!shown[index].folder && viewable(shown[index])) view(event, shown[index]);
});

function pick(index, checked, range) {
  const [from, to] = range && lastChecked >= 0 ? [Math.min(lastChecked, index), Math.max(lastChecked, index)] : [index, index];
  for (const entry of shown.slice(from, to + 1)) {
    if (checked) selected.add(entry.name);
    else selected.delete(entry.name);
  }
  lastChecked = index;
  render();
}

function chosen() {
  return entries.filter((e) => selected.has(e.name));
}

function updateActions() {
  const items = chosen();
  const one = items.length === 1 ? items[0] : null;
  const set = (name, enabled) => { if (actions[name]) actions[name].disabled = !enabled; };
  set("rename", one);
  set("move", items.length);
  set("copy", items.length);
  set("delete", items.length);
  set("download", one && !one.folder);
  set("edit", one && !one.folder && textual(one));
}

function sortBy(key) {
  sortUp = key === sortKey ? !sortUp : true;
  sortKey = key;
  render();
}

function say(text, failed = false) {
  log.prepend(el("li", { text, class: failed ? "failed" : false }));
}

// -- reading -----------------------------------------------------------------------------------

const PROPFIND = `<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop>
<resourcetype/><getcontentlength/><getlastmodified/><getcontenttype/><getetag/></prop></propfind>`;

// One pass over each response's elements: 10,000 responses are read in a blink.
function propsOf(response) {
  const found = {};
  for (const node of response.getElementsByTagNameNS(DAV, "*")) found[node.localName] ??= node.textContent;
  return found;
}

function parseListing(text, self) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const list = [];
  const mine = decodeURIComponent(new URL(here, location.href).pathname);
  for (const response of doc.getElementsByTagNameNS(DAV, "response")) {
    const props = propsOf(response);
    const href = new URL(props.href, location.href).pathname;
    const path = decodeURIComponent(href.replace(/\/$/, ""));
    if (self && decodeURIComponent(href) === mine) continue;
    list.push({
      name: path.slice(path.lastIndexOf("/") + 1),
      path,
      folder: "collection" in props,
      href,
      size: Number(props.getcontentlength) || 0,
      modified: new Date(props.getlastmodified),
      type: props.getcontenttype || "",
      etag: props.getetag || "",
    });
  }
  return list;
}

async function propfind(url, depth) {
  const answer = await fetch(url, {
    method: "PROPFIND",
    headers: { Depth: depth, "Content-Type": "application/xml" },
    body: PROPFIND,
  });
  if (answer.status !== 207) throw new Error(`${answer.status} ${(await answer.text()).trim()}`);
  return answer.text();
}

async function refresh() {
  try {
    entries = parseListing(await propfind(here, "1"), true);
    const names = new Set(entries.map((e) => e.name));
    for (const name of [...selected]) if (!names.has(name)) selected.delete(name);
    status.textContent = entries.length === 1 ? "1 item" : `${entries.length} items`;
  } catch (error) {
    status.textContent = `Could not list this folder: ${error.message}`;
  }
  render();
}

// -- uploads -----------------------------------------------------------------------------------

function send(method, url, blob, headers, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [key, value] of Object.entries(headers)) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = xhr.onabort = () => resolve({ status: 0, text: "the connection broke" });
    xhr.send(blob);
  });
}

async function serverSize(url) {
  const answer = await fetch(url, { method: "HEAD", cache: "no-store" });
  return answer.ok ? Number(answer.headers.get("Content-Length")) : 0;
}

// One file: small or replacing ones in one PUT (atomic), new large ones in pieces that a
// cut only partly loses. `start` is where a resumed upload continues.
async function uploadOne(job, start) {
  const { file, url } = job;
  const total = file.size;
  const whole = total <= PIECE || job.replacing;
  let offset = whole ? 0 : start;
  const progress = (sent) => { job.sent = offset + sent; job.bar.value = job.sent; showOverall(); };
  if (whole) {
    const answer = await send("PUT", url, file, {}, progress);
    return answer.status === 0 ? answer : { ...answer, done: true };
  }
  while (offset < total) {
    const last = Math.min(offset + PIECE, total) - 1;
    const answer = await send("PUT", url, file.slice(offset, last + 1),
      { "Content-Range": `bytes ${offset}-${last}/${total}` }, progress);
    if (answer.status < 200 || answer.status > 299) return answer;
    offset = last + 1;
  }
  return { status: start > 0 ? 204 : 201, done: true };
}

let jobs = [];

function showOverall() {
  const total = jobs.reduce((sum, job) => sum + job.file.size, 0);
  overall.max = Math.max(total, 1);
  overall.value = jobs.reduce((sum, job) => sum + job.sent, 0);
}

async function runJob(job, start) {
  job.line.replaceChildren(el("span", { text: job.label }), job.bar);
  const answer = await uploadOne(job, start);
  if (answer.done) {
    job.sent = job.file.size;
    job.line.append(el("span", { text: "done" }));
    say(`Uploaded ${job.label} (${answer.status})`);
  } else {
    const why = answer.status ? `${answer.status} ${answer.text.trim()}` : answer.text;
    job.line.append(button(`Resume ${job.label}`, () => resume(job), { class: "failed" }));
    say(`Upload of ${job.label} failed: ${why}`, true);
  }
  showOverall();
}

async function resume(job) {
  await runJob(job, await serverSize(job.url));
  await refresh();
}

async function ensureFolders(paths) {
  for (const folder of paths) {
    const url = here + folder.split("/").map(encodeURIComponent).join("/") + "/";
    const answer = await fetch(url, { method: "MKCOL" });
    if (answer.status !== 201 && answer.status !== 405) say(`New folder ${folder}: ${answer.status}`, true);
  }
}

// What was dropped: files, and the files inside dropped folders (each with its path below
// the drop, as `relativePath`). The entries must be taken while the drop event runs.
async function dropped(transfer) {
  const roots = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!roots.length) return [...transfer.files];
  const files = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((ok, fail) => entry.file(ok, fail));
      file.relativePath = prefix + entry.name;
      files.push(file);
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const some = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!some.length) return;
      for (const child of some) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of roots) await walk(entry, "");
  return files;
}

async function upload(files) {
  const list = [...(await files)];
  if (!list.length) return;
  const existing = new Set(entries.filter((e) => !e.folder).map((e) => e.name));
  const folders = new Set();
  jobs = [];
  uploads.replaceChildren();
  for (const file of list) {
    const relative = file.webkitRelativePath || file.relativePath || file.name;
    const parts = relative.split("/");
    for (let i = 1; i < parts.length; i += 1) folders.add(parts.slice(0, i).join("/"));
    const replacing = parts.length === 1 && existing.has(file.name);
    if (replacing && !confirm(`Replace ${file.name}?`)) {
      say(`Kept ${file.name}`);
      continue;
    }
    const bar = el("progress", { max: Math.max(file.size, 1), value: 0, "aria-label": `Upload of ${relative}` });
    const line = el("li");
    uploads.append(line);
    jobs.push({ file, label: relative, url: here + parts.map(encodeURIComponent).join("/"), replacing, bar, line, sent: 0 });
  }
  if (!jobs.length) return;
  overall.hidden = false;
  showOverall();
  await ensureFolders([...folders].sort());
  for (const job of jobs) await runJob(job, 0);
  await refresh();
}

// -- changes -----------------------------------------------------------------------------------

async function newFolder() {
  const name = prompt("Name of the new folder");
  if (!name) return;
  const answer = await fetch(hrefOf(name, true), { method: "MKCOL" });
  say(`New folder ${name}: ${answer.status}${answer.ok ? "" : " " + (await answer.text()).trim()}`, !answer.ok);
  await refresh();
}

async function rename() {
  const [entry] = chosen();
  const name = prompt(`New name for ${entry.name}`, entry.name);
  if (!name || name === entry.name) return;
  // Beside itself: a search result may lie in a folder further down.
  const parent = entry.href.replace(/[^/]+\/?$/, "");
  const target = new URL(parent + encodeURIComponent(name) + (entry.folder ? "/" : ""), location.href);
  const answer = await fetch(entry.href, {
    method: "MOVE",
    headers: { Destination: target.href, Overwrite: "F" },
  });
  const why = answer.status === 412 ? " (a file of that name exists)" : answer.ok ? "" : " " + (await answer.text()).trim();
  say(`Rename ${entry.name} to ${name}: ${answer.status}${why}`, !answer.ok);
  selected.clear();
  await refresh();
}

// The path of a folder below the share's root, as the segments of its URL.
function segments(path) {
  return path.slice(root.length).split("/").filter(Boolean).map(decodeURIComponent);
}

const REASONS = {
  400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
  412: "Precondition Failed", 423: "Locked", 424: "Failed Dependency", 502: "Bad Gateway",
  507: "Insufficient Storage", 508: "Loop Detected",
};

// Runs operations as one batch, posted to the deepest folder holding both `here` and `target`
// (the batch's paths may not leave the folder it is posted to).
async function batch(operations, target = []) {
  const mine = segments(here);
  let common = 0;
  while (common < mine.length && common < target.length && mine[common] === target[common]) common += 1;
  const base = root + mine.slice(0, common).map((s) => encodeURIComponent(s) + "/").join("");
  const from = mine.slice(common);
  const rel = (parts) => parts.join("/");
  const items = operations.map((op) => ({
    ...op,
    path: rel([...from, op.path]),
    ...(op.destination !== undefined ? { destination: rel([...target.slice(common), op.destination]) } : {}),
  }));
  const answer = await fetch(base, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ operations: items }),
  });
  const text = await answer.text();
  if (answer.status !== 207) {
    say(`The batch was refused: ${answer.status} ${text.trim()}`, true);
    return;
  }
  const outcome = JSON.parse(text);
  for (const result of outcome.results) {
    const name = operations[result.index].path;
    const ok = result.status >= 200 && result.status < 300 && !result.members;
    const why = ok ? "" : ` ${REASONS[result.status] || result.error || ""}${result.message ? ": " + result.message : ""}`;
    say(`${result.op} ${name}: ${result.status}${why}`, !ok);
    for (const member of result.members || []) say(`  ${member.href}: ${member.status}`, true);
  }
}

async function remove() {
  const items = chosen();
  if (!confirm(`Delete ${items.length === 1 ? items[0].name : items.length + " items"}?`)) return;
  await batch(items.map((e) => ({ op: "delete", path: e.name })));
  selected.clear();
  await refresh();
}

async function transfer(op) {
  const items = chosen();
  const folder = await pickFolder(`${op === "move" ? "Move" : "Copy"} ${items.length} item(s) to`);
  if (folder === null) return;
  await batch(items.map((e) => ({ op, path: e.name, destination: e.name, overwrite: false })), folder);
  selected.clear();
  await refresh();
}

// A folder chosen from the tree: a dialog listing the folders below the share's root, one
// level at a time. Resolves to its segments, or null when cancelled.
function pickFolder(title) {
  return new Promise((resolve) => {
    const dialog = el("dialog", { "aria-label": title });
    const place = el("p");
    const list = el("ul");
    let current = segments(here);
    const close = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    async function show() {
      place.textContent = `${title}: /${current.join("/")}`;
      const url = root + current.map((s) => encodeURIComponent(s) + "/").join("");
      let folders = [];
      try {
        folders = parseListing(await propfind(url, "1"), false).filter((e) => e.folder && e.href !== new URL(url, location.href).pathname);
      } catch (error) {
        place.textContent += ` (${error.message})`;
      }
      list.replaceChildren();
      if (current.length) list.append(el("li", {}, button("Up", () => { current = current.slice(0, -1); show(); })));
      for (const entry of folders.sort((a, b) => a.name.localeCompare(b.name))) {
        list.append(el("li", {}, button(entry.name, () => { current = [...current, entry.name]; show(); })));
      }
    }
    dialog.append(place, list,
      el("div", { class: "bar" }, button("Here", () => close(current)), button("Cancel", () => close(null))));
    dialog.addEventListener("cancel", () => close(null));
    body.append(dialog);
    dialog.showModal();
    show();
  });
}

function save(url, name) {
  const link = el("a", { href: url, download: name || "" });
  body.append(link);
  link.click();
  link.remove();
}

function download() {
  const [entry] = chosen();
  save(entry.href, entry.name);
}

function downloadZip() {
  const names = chosen().map((e) => "&name=" + encodeURIComponent(e.name)).join("");
  save(here + "?zip" + names);
}

// -- viewing and editing -----------------------------------------------------------------------

const textual = (entry) => entry.type.startsWith("text/") || /\.(txt|md|json|csv|log|ini|toml|ya?ml|py|js|css)$/i.test(entry.name);
const image = (entry) => /^image\/(png|jpeg|gif|webp|avif|bmp)/.test(entry.type);
const viewable = (entry) => image(entry) || (textual(entry) && !/html|xml|svg/.test(entry.type));

async function view(event, entry) {
  if (event.ctrlKey || event.metaKey || event.shiftKey) return; // the browser's own ways
  event.preventDefault();
  const dialog = el("dialog", { "aria-label": entry.name });
  const close = () => { dialog.close(); dialog.remove(); };
  dialog.addEventListener("close", () => dialog.remove());
  if (image(entry)) {
    dialog.append(el("img", { src: entry.href, alt: entry.name }));
  } else {
    const answer = await fetch(entry.href, { cache: "no-store" });
    dialog.append(el("pre", { text: await answer.text() }));
  }
  dialog.append(el("div", { class: "bar" }, button("Close", close)));
  body.append(dialog);
  dialog.showModal();
}

async function edit() {
  const [entry] = chosen();
  const answer = await fetch(entry.href, { cache: "no-store" });
  const etag = answer.headers.get("ETag");
  const area = el("textarea", { "aria-label": `Text of ${entry.name}` });
  area.value = await answer.text();
  const dialog = el("dialog", { "aria-label": `Edit ${entry.name}` });
  const close = () => { dialog.close(); dialog.remove(); };
  async function store() {
    // If-Match: a change someone made meanwhile is a conflict (412), never overwritten.
    const put = await fetch(entry.href, { method: "PUT", headers: etag ? { "If-Match": etag } : {}, body: area.value });
    if (put.status === 412) {
      say(`Save ${entry.name}: 412 conflict: the file was changed meanwhile; your text is still in the editor`, true);
      return;
    }
    say(`Save ${entry.name}: ${put.status}${put.ok ? "" : " " + (await put.text()).trim()}`, !put.ok);
    if (put.ok) { close(); await refresh(); }
  }
  dialog.append(area, el("div", { class: "bar" }, button("Save", store), button("Cancel", close)));
  body.append(dialog);
  dialog.showModal();
  area.focus();
}

// -- search ------------------------------------------------------------------------------------

async function searchBelow(event) {
  event.preventDefault();
  const needle = new FormData(event.target).get("q").trim().toLowerCase();
  if (!needle) { await refresh(); return; }
  status.textContent = "Searching…";
  let found;
  try {
    found = parseListing(await propfind(here, "infinity"), true);
  } catch (error) {
    // Past the server's bound on Depth: infinity the answer is 403.
    status.textContent = error.message.startsWith("403")
      ? "Too many files below this folder to search them all; open a folder further down."
      : `Search failed: ${error.message}`;
    return;
  }
  const base = decodeURIComponent(here);
  entries = found.filter((e) => e.name.toLowerCase().includes(needle))
    .map((e) => ({ ...e, name: e.path.slice(base.length) }));
  selected.clear();
  status.textContent = `${entries.length} found below this folder`;
  render();
}

// -- wiring ------------------------------------------------------------------------------------

build();
renderCrumbs();
filter.addEventListener("input", render);
addEventListener("scroll", drawSoon, { passive: true });
addEventListener("resize", drawSoon);
selectAll.addEventListener("change", () => {
  for (const entry of visible()) {
    if (selectAll.checked) selected.add(entry.name);
    else selected.delete(entry.name);
  }
  render();
});
picker.addEventListener("change", () => { upload(picker.files).finally(() => { picker.value = ""; }); });
folderPicker.addEventListener("change", () => { upload(folderPicker.files).finally(() => { folderPicker.value = ""; }); });
if (writable) {
  document.addEventListener("dragover", (event) => { event.preventDefault(); body.classList.add("drop"); });
  document.addEventListener("dragleave", () => body.classList.remove("drop"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    body.classList.remove("drop");
    upload(dropped(event.dataTransfer));
  });
}
refresh();
