// davserver's file manager (issue 17). It speaks only what any client may: GET ?list (the
// folder as JSON), PUT (in pieces with Content-Range, so a cut upload resumes), MKCOL, MOVE,
// the JSON batch and GET ?zip. Names are put into the page with textContent and setAttribute
// only, never as HTML.

const PIECE = 4 * 1024 * 1024; // bytes per PUT of a large upload: what a cut can lose
const body = document.body;
const root = body.dataset.root || "/";
const writable = body.dataset.writable === "true";
const here = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";

let entries = []; // {name (a path below `here`), folder, size, modified (Date), type, href}
let sortBy = "name";
let sortUp = true;
let lastChecked = -1; // row index of the last checkbox clicked, for shift-click ranges
const selected = new Set();
// One collator for every comparison: localeCompare with options builds one per call, which
// made sorting 10,000 names take seconds. Names are compared by a key with every run of
// digits padded to one width ("file2" before "file10"), which the collator's own `numeric`
// option does too but at four times the cost.
const collator = new Intl.Collator(undefined, { sensitivity: "base" });
const sortKey = (name) => name.replace(/\d+/g, (digits) => digits.padStart(20, "0"));
const byName = (a, b) => collator.compare(a.key, b.key) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

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

// The URL of `path` (segments joined by "/") below the folder at URL `base`.
const below = (base, path, folder = false) =>
  base + path.split("/").map(encodeURIComponent).join("/") + (folder ? "/" : "");

// The URL of the folder whose path below the share's root is `segs`.
const folderUrl = (segs) => (segs.length ? below(root, segs.join("/"), true) : root);

// The path of a folder below the share's root, as the segments of its URL.
function segments(path) {
  return path.slice(root.length).split("/").filter(Boolean).map(decodeURIComponent);
}

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

function say(text, failed = false) {
  log.prepend(el("li", { text, class: failed ? "failed" : false }));
}

// A dialog of the page's own; `onclose` runs however it closes (a button, Escape).
function modal(label, onclose, ...children) {
  const dialog = el("dialog", { "aria-label": label }, ...children);
  dialog.addEventListener("close", () => { dialog.remove(); onclose?.(); });
  body.append(dialog);
  dialog.showModal();
  return dialog;
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
    headers[key] = el("th", { class: key, scope: "col" }, button(label, () => sortOn(key)));
    head.append(headers[key]);
  }
  table.append(el("thead", {}, head), rows);
  body.append(el("nav", { "aria-label": "Breadcrumb" }, crumbs), bar, search, status, overall, uploads, log, table);
}

function renderCrumbs() {
  const names = segments(here);
  const items = [["Home", root], ...names.map((name, i) => [name, folderUrl(names.slice(0, i + 1))])];
  crumbs.replaceChildren(...items.map(([label, target], index) =>
    el("li", {}, el("a", { href: target, text: label, "aria-current": index === items.length - 1 ? "page" : false }))));
  document.title = names.length ? names[names.length - 1] : location.host;
}

// -- the list ----------------------------------------------------------------------------------

// Up to this many rows are all in the page; a longer list draws only the rows near the
// screen (and blank space for the others), so 10,000 files show and scroll at once. The
// rows drawn move in steps of STEP, so scrolling redraws once every STEP rows, not every row.
const ALL_ROWS = 300;
const MARGIN = 40; // rows drawn beyond each edge of the screen
const STEP = 20;
let shown = []; // the entries as filtered and sorted: row i shows shown[i]
let drawn = ""; // which rows are in the page now ("from-to")
let rowHeight = 0;

// The entries filtered and sorted; only a change of listing, filter or order comes here, a
// change of selection or scroll position only draws.
function order() {
  const needle = filter.value.trim().toLowerCase();
  shown = needle ? entries.filter((e) => e.name.toLowerCase().includes(needle)) : entries.slice();
  const sign = sortUp ? 1 : -1;
  const compare = {
    name: byName,
    size: (a, b) => a.size - b.size,
    modified: (a, b) => a.modified - b.modified,
    type: (a, b) => collator.compare(kind(a), kind(b)),
  }[sortBy];
  // Folders stay first whatever the order, as in every file manager.
  shown.sort((a, b) => (b.folder - a.folder) || sign * compare(a, b) || byName(a, b));
  table.setAttribute("aria-rowcount", shown.length + 1);
  for (const [key, th] of Object.entries(headers)) {
    th.setAttribute("aria-sort", key === sortBy ? (sortUp ? "ascending" : "descending") : "none");
  }
  redraw();
}

function redraw() {
  drawn = "";
  draw();
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

const windowed = () => shown.length > ALL_ROWS;

// One row's height, measured on a real row: every row has it (one line each, CSS).
function measure() {
  let row = rows.querySelector("tr:not(.spacer)");
  if (!row) {
    row = rowOf(shown[0], 0);
    rows.replaceChildren(row);
  }
  rowHeight = row.getBoundingClientRect().height || 32;
}

function draw() {
  // Drawing replaces the rows: the focused one gets its focus back.
  const focused = rows.contains(document.activeElement) ? document.activeElement : null;
  let from = 0;
  let to = shown.length;
  if (windowed()) {
    if (!rowHeight) measure();
    const above = Math.max(0, -rows.getBoundingClientRect().top);
    from = Math.max(0, Math.floor((above / rowHeight - MARGIN) / STEP) * STEP);
    to = Math.min(shown.length, from + Math.ceil(innerHeight / rowHeight) + 2 * MARGIN + STEP);
  }
  if (drawn === `${from}-${to}`) return;
  drawn = `${from}-${to}`;
  const fragment = document.createDocumentFragment();
  if (from > 0) fragment.append(spacer(from));
  for (let index = from; index < to; index += 1) fragment.append(rowOf(shown[index], index));
  if (to < shown.length) fragment.append(spacer(shown.length - to));
  rows.replaceChildren(fragment);
  if (focused) cell(focused.tagName, focused.dataset.index)?.focus({ preventScroll: true });
}

const cell = (tag, index) => rows.querySelector(`${tag}[data-index="${index}"]`);

let drawing = false;
function drawSoon() {
  if (drawing || !windowed()) return;
  drawing = true;
  requestAnimationFrame(() => { drawing = false; draw(); });
}

// Row `index` brought on screen (drawn first if it was not) and its checkbox or link focused.
function focusRow(index, tag) {
  const target = Math.max(0, Math.min(shown.length - 1, index));
  if (!cell(tag, target) && windowed()) {
    const top = rows.getBoundingClientRect().top + scrollY;
    scrollTo(0, top + target * rowHeight - innerHeight / 2);
    draw();
  }
  cell(tag, target)?.focus();
}

// Up and down the rows by keyboard, in the column the focus is in: Tab alone would have to
// pass every row's checkbox and link.
const MOVES = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
rows.addEventListener("keydown", (event) => {
  const index = Number(event.target.dataset.index);
  if (Number.isNaN(index) || event.altKey || event.ctrlKey || event.metaKey) return;
  let next;
  if (event.key in MOVES) next = index + MOVES[event.key];
  else if (event.key === "Home") next = 0;
  else if (event.key === "End") next = shown.length - 1;
  else return;
  event.preventDefault();
  focusRow(next, event.target.tagName);
});

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
  redraw();
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

function sortOn(key) {
  sortUp = key === sortBy ? !sortUp : true;
  sortBy = key;
  order();
}

// -- reading -----------------------------------------------------------------------------------

// The folder at URL `url` as JSON (`?list`, or `?list=infinity` for everything below it):
// a quarter of a PROPFIND's bytes, and no XML to take apart. The page asks for its own folder's
// listing while this script loads (a preload); the answer is never cached (no-store), so
// each later call reads it afresh.
async function list(url, deep = false) {
  const answer = await fetch(url + (deep ? "?list=infinity" : "?list"));
  if (!answer.ok) throw new Error(`${answer.status} ${(await answer.text()).trim()}`);
  const { members } = await answer.json();
  return members.map((m) => ({
    name: m.path,
    key: sortKey(m.path),
    folder: m.folder,
    size: m.size,
    modified: new Date(m.modified * 1000),
    type: m.type,
    href: below(url, m.path, m.folder),
  }));
}

async function refresh() {
  try {
    entries = await list(here);
    const names = new Set(entries.map((e) => e.name));
    for (const name of [...selected]) if (!names.has(name)) selected.delete(name);
    status.textContent = entries.length === 1 ? "1 item" : `${entries.length} items`;
  } catch (error) {
    status.textContent = `Could not list this folder: ${error.message}`;
  }
  order();
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
// cut only partly loses. `start` is where a resumed upload continues. A new file is sent
// with If-None-Match: *, so one that exists (or appeared meanwhile) is never replaced
// unasked: the answer is 412 and the person is asked.
async function uploadOne(job, start) {
  const { file, url } = job;
  const total = file.size;
  const whole = total <= PIECE || job.replacing;
  let offset = whole ? 0 : start;
  const progress = (sent) => { job.sent = offset + sent; job.bar.value = job.sent; showOverall(); };
  const guard = () => (offset === 0 && !job.replacing ? { "If-None-Match": "*" } : {});
  if (whole) {
    const answer = await send("PUT", url, file, guard(), progress);
    return { ...answer, done: answer.status >= 200 && answer.status < 300 };
  }
  while (offset < total) {
    const last = Math.min(offset + PIECE, total) - 1;
    const answer = await send("PUT", url, file.slice(offset, last + 1),
      { "Content-Range": `bytes ${offset}-${last}/${total}`, ...guard() }, progress);
    if (answer.status < 200 || answer.status > 299) return answer;
    offset = last + 1;
  }
  return { status: start > 0 ? 204 : 201, done: true };
}

let jobs = [];

function showOverall() {
  overall.max = Math.max(jobs.reduce((sum, job) => sum + job.size, 0), 1);
  overall.value = jobs.reduce((sum, job) => sum + job.sent, 0);
}

async function runJob(job, start) {
  job.line.replaceChildren(el("span", { text: job.label }), job.bar);
  let answer = await uploadOne(job, start);
  if (answer.status === 412 && !job.replacing) {
    if (!confirm(`Replace ${job.label}?`)) {
      job.size = job.sent = 0; // no longer part of the overall progress
      job.line.append(el("span", { text: "kept" }));
      say(`Kept ${job.label}`);
      showOverall();
      return;
    }
    job.replacing = true;
    answer = await uploadOne(job, 0);
  }
  if (answer.done) {
    job.sent = job.size;
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
    const answer = await fetch(below(here, folder, true), { method: "MKCOL" });
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
  const picked = [...(await files)];
  if (!picked.length) return;
  const folders = new Set();
  uploads.replaceChildren();
  jobs = picked.map((file) => {
    const relative = file.webkitRelativePath || file.relativePath || file.name;
    const parts = relative.split("/");
    for (let i = 1; i < parts.length; i += 1) folders.add(parts.slice(0, i).join("/"));
    const bar = el("progress", { max: Math.max(file.size, 1), value: 0, "aria-label": `Upload of ${relative}` });
    const line = el("li");
    uploads.append(line);
    return { file, label: relative, url: below(here, relative), replacing: false, bar, line, size: file.size, sent: 0 };
  });
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
  const answer = await fetch(below(here, name, true), { method: "MKCOL" });
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
  const from = mine.slice(common);
  const rel = (parts) => parts.join("/");
  const items = operations.map((op) => ({
    ...op,
    path: rel([...from, op.path]),
    ...(op.destination !== undefined ? { destination: rel([...target.slice(common), op.destination]) } : {}),
  }));
  const answer = await fetch(folderUrl(mine.slice(0, common)), {
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
  const verb = op === "move" ? "Move" : "Copy";
  const folder = await pickFolder(`${verb} ${items.length === 1 ? items[0].name : items.length + " items"} to a folder`, verb);
  if (folder === null) return;
  // A search's result keeps only its own name at the target.
  await batch(items.map((e) => ({ op, path: e.name, destination: e.name.split("/").pop(), overwrite: false })), folder);
  selected.clear();
  await refresh();
}

// -- the folder tree ---------------------------------------------------------------------------

// A folder picked from the share's tree (the WAI-ARIA tree pattern): each folder opens to show
// the folders in it, read when first opened; the arrow keys move through the tree, Right and
// Left open and close, Enter takes the focused folder. The focused folder is the one chosen.
// Resolves to the folder's segments, or null when cancelled.
function pickFolder(title, verb) {
  return new Promise((resolve) => {
    const tree = el("ul", { role: "tree", "aria-label": "Folders" });
    const target = el("p", { "aria-live": "polite" });
    const where = new WeakMap(); // treeitem -> its folder's segments
    let result = null;
    let current = null;

    function item(segs) {
      const label = segs.length ? segs[segs.length - 1] : "Home";
      const node = el("li", {
        role: "treeitem", "aria-label": label, "aria-level": segs.length + 1,
        "aria-expanded": "false", "aria-selected": "false", tabindex: "-1",
      }, el("span", { class: "twisty", "aria-hidden": "true" }), el("span", { class: "label", text: label }));
      where.set(node, segs);
      return node;
    }

    function choose(node) {
      current?.setAttribute("aria-selected", "false");
      current?.setAttribute("tabindex", "-1");
      current = node;
      node.setAttribute("aria-selected", "true");
      node.setAttribute("tabindex", "0");
      node.focus();
      target.textContent = `${verb} to: /${where.get(node).join("/")}`;
      take.disabled = false;
    }

    async function open(node) {
      if (node.getAttribute("aria-expanded") !== "false") return;
      let group = node.querySelector(":scope > ul");
      if (!group) {
        const segs = where.get(node);
        let folders = [];
        try {
          folders = (await list(folderUrl(segs))).filter((e) => e.folder).sort(byName);
        } catch (error) {
          say(`Could not list /${segs.join("/")}: ${error.message}`, true);
          return;
        }
        if (!folders.length) { node.removeAttribute("aria-expanded"); return; }
        group = el("ul", { role: "group" }, ...folders.map((f) => item([...segs, f.name])));
        node.append(group);
      }
      group.hidden = false;
      node.setAttribute("aria-expanded", "true");
    }

    function shut(node) {
      if (node.getAttribute("aria-expanded") !== "true") return;
      node.querySelector(":scope > ul").hidden = true;
      node.setAttribute("aria-expanded", "false");
    }

    // The treeitems one can see, in order (those in a closed folder are not).
    const visibleItems = () => [...tree.querySelectorAll("[role=treeitem]")].filter((n) => !n.parentElement.closest("[hidden]"));

    tree.addEventListener("keydown", async (event) => {
      const node = event.target.closest("[role=treeitem]");
      if (!node) return;
      const items = visibleItems();
      const at = items.indexOf(node);
      const parent = node.parentElement.closest("[role=treeitem]");
      const expanded = node.getAttribute("aria-expanded");
      const keys = {
        ArrowDown: () => choose(items[Math.min(at + 1, items.length - 1)]),
        ArrowUp: () => choose(items[Math.max(at - 1, 0)]),
        Home: () => choose(items[0]),
        End: () => choose(items[items.length - 1]),
        ArrowRight: () => (expanded === "true" ? choose(node.querySelector("[role=treeitem]")) : open(node)),
        ArrowLeft: () => (expanded === "true" ? shut(node) : parent && choose(parent)),
        Enter: () => { result = where.get(node); dialog.close(); },
      };
      if (!(event.key in keys)) return;
      event.preventDefault();
      await keys[event.key]();
    });
    // A click on the name chooses the folder and opens it; one on the triangle opens or closes.
    tree.addEventListener("click", async (event) => {
      const node = event.target.closest("[role=treeitem]");
      if (!node) return;
      choose(node);
      if (event.target.classList.contains("twisty") && node.getAttribute("aria-expanded") === "true") shut(node);
      else await open(node);
    });

    // Usable once a folder is chosen: the tree is read from the server first.
    const take = button(`${verb} here`, () => { result = where.get(current); dialog.close(); }, { disabled: true });
    const dialog = modal(title, () => resolve(result),
      el("h2", { text: title }), tree, target,
      el("div", { class: "bar" }, take, button("Cancel", () => dialog.close())));

    // Opened down to the folder on screen, which is chosen at first.
    (async () => {
      const top = item([]);
      tree.append(top);
      let node = top;
      for (const name of segments(here)) {
        await open(node);
        const next = [...(node.querySelector(":scope > ul")?.children || [])].find((n) => where.get(n).at(-1) === name);
        if (!next) break;
        node = next;
      }
      await open(node);
      choose(node);
    })();
  });
}

// -- downloads ---------------------------------------------------------------------------------

function save(url, name) {
  const link = el("a", { href: url, download: name || "" });
  body.append(link);
  link.click();
  link.remove();
}

function download() {
  const [entry] = chosen();
  save(entry.href, entry.name.split("/").pop());
}

function downloadZip() {
  const names = chosen().map((e) => "&name=" + encodeURIComponent(e.name)).join("");
  save(here + "?zip" + names);
}

// -- viewing and editing -----------------------------------------------------------------------

const textual = (entry) => entry.type.startsWith("text/") || /\.(txt|md|json|csv|log|ini|toml|ya?ml|py|js|css)$/i.test(entry.name);
const image = (entry) => /^image\/(png|jpeg|gif|webp|avif|bmp)/.test(entry.type);
// Never HTML, XML or SVG in the page: shown as text they are harmless, but they are files a
// person opens to see them rendered, which the browser does in a sandbox (the server's CSP).
const viewable = (entry) => image(entry) || (textual(entry) && !/html|xml|svg/.test(entry.type));

async function view(event, entry) {
  if (event.ctrlKey || event.metaKey || event.shiftKey) return; // the browser's own ways
  event.preventDefault();
  let content;
  if (image(entry)) {
    content = el("img", { src: entry.href, alt: entry.name });
  } else {
    const answer = await fetch(entry.href, { cache: "no-store" });
    content = el("pre", { text: await answer.text(), tabindex: "0" });
  }
  const dialog = modal(entry.name, null, el("h2", { text: entry.name }), content,
    el("div", { class: "bar" }, el("a", { href: entry.href, download: entry.name.split("/").pop(), text: "Download" }), button("Close", () => dialog.close())));
}

async function edit() {
  const [entry] = chosen();
  const answer = await fetch(entry.href, { cache: "no-store" });
  const etag = answer.headers.get("ETag");
  const area = el("textarea", { "aria-label": `Text of ${entry.name}` });
  area.value = await answer.text();
  async function store() {
    // If-Match: a change someone made meanwhile is a conflict (412), never overwritten.
    const put = await fetch(entry.href, { method: "PUT", headers: etag ? { "If-Match": etag } : {}, body: area.value });
    if (put.status === 412) {
      say(`Save ${entry.name}: 412 conflict: the file was changed meanwhile; your text is still in the editor`, true);
      return;
    }
    say(`Save ${entry.name}: ${put.status}${put.ok ? "" : " " + (await put.text()).trim()}`, !put.ok);
    if (put.ok) { dialog.close(); await refresh(); }
  }
  const dialog = modal(`Edit ${entry.name}`, null, area,
    el("div", { class: "bar" }, button("Save", store), button("Cancel", () => dialog.close())));
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
    found = await list(here, true);
  } catch (error) {
    // Past the server's bound on a deep listing the answer is 403.
    status.textContent = error.message.startsWith("403")
      ? "Too many files below this folder to search them all; open a folder further down."
      : `Search failed: ${error.message}`;
    return;
  }
  entries = found.filter((e) => e.name.split("/").pop().toLowerCase().includes(needle));
  selected.clear();
  status.textContent = `${entries.length} found below this folder`;
  order();
}

// -- wiring ------------------------------------------------------------------------------------

build();
renderCrumbs();
filter.addEventListener("input", order);
addEventListener("scroll", drawSoon, { passive: true });
addEventListener("resize", () => { rowHeight = 0; drawn = ""; drawSoon(); });
selectAll.addEventListener("change", () => {
  for (const entry of shown) {
    if (selectAll.checked) selected.add(entry.name);
    else selected.delete(entry.name);
  }
  redraw();
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
