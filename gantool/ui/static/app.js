// gantool serve: the page. Plain JavaScript, no libraries, no request to any host but this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { tasks: [], task: null, images: [], selected: -1, job: null, timer: null, lastSeed: null };

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(path, init) {
  const response = await fetch(path, init);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

// ---------------------------------------------------------------- tasks and their options

async function loadTasks() {
  state.tasks = await api("/api/tasks");
  const select = $("task-select");
  select.replaceChildren(...state.tasks.map((t) => new Option(`${t.verb} (${t.name})`, t.name)));
  select.addEventListener("change", () => chooseTask(select.value));
  if (state.tasks.length) chooseTask(state.tasks[0].name);
}

function chooseTask(name) {
  const task = state.tasks.find((t) => t.name === name);
  state.task = task;
  $("task-summary").textContent = task.summary;
  const models = $("model-select");
  const first = new Option(task.default_model ? `default (${task.default_model})` : "choose a model", "");
  models.replaceChildren(first, ...task.models.map((m) => new Option(`${m.name}${m.error ? " (unreadable)" : ""}`,
                                                                     m.name)));
  buildForm(task);
  const sample = task.kind === "sample";
  $("image-section").hidden = sample;
  $("mask-section").hidden = sample || !task.inputs.some((i) => i.channels === 1);
  $("more-like-this").hidden = true;
  showError("");
}

function fieldInput(option) {
  const id = `opt-${option.name}`;
  let input;
  if (option.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(option.default);
  } else if (option.type === "choice") {
    input = document.createElement("select");
    if (option.nullable) input.add(new Option("none", ""));
    for (const choice of option.choices) input.add(new Option(String(choice), String(choice)));
    input.value = option.default === null ? "" : String(option.default);
  } else {
    input = document.createElement("input");
    const numeric = option.type === "int" || option.type === "float";
    input.type = numeric ? "number" : "text";
    if (numeric) {
      input.step = option.type === "int" ? "1" : "any";
      if (option.min !== null) input.min = option.min;
      if (option.max !== null) input.max = option.max;
    }
    const value = Array.isArray(option.default) ? option.default.join(",") : option.default;
    input.value = value === null || value === undefined ? "" : String(value);
    if (option.nullable) input.placeholder = "none";
  }
  input.id = id;
  input.name = option.name;
  input.dataset.type = option.type;
  input.dataset.nullable = option.nullable ? "1" : "";
  return input;
}

function buildForm(task) {
  const form = $("options-form");
  form.replaceChildren();
  // The shared flags of an image task (device, tiling, format) are rarely changed: folded away at first.
  // A generation task's (seed, count, class, grid) are its main options: shown.
  const groups = [["common-options", "Run settings", task.common, task.kind === "sample"],
                  ["task-options", `${task.name} options`, task.options, true]];
  for (const [id, title, options, open] of groups) {
    if (!options.length) continue;
    const set = document.createElement("details");
    set.id = id;
    set.open = open;
    const legend = document.createElement("summary");
    legend.textContent = title;
    set.append(legend);
    for (const option of options) {
      const label = document.createElement("label");
      label.className = "option";
      label.htmlFor = `opt-${option.name}`;
      label.append(`${option.flag} `, fieldInput(option));
      const help = document.createElement("small");
      help.textContent = option.help;
      label.append(help);
      set.append(label);
    }
    form.append(set);
  }
}

function formValues() {
  const values = {};
  for (const input of $("options-form").querySelectorAll("input, select")) {
    const type = input.dataset.type;
    if (type === "bool") { values[input.name] = input.checked; continue; }
    const text = input.value.trim();
    if (text === "") {
      if (input.dataset.nullable || type.startsWith("list[")) values[input.name] = type.startsWith("list[") ? [] : null;
      continue;
    }
    values[input.name] = type === "int" ? Number.parseInt(text, 10) : type === "float" ? Number(text) : text;
  }
  return values;
}

// ---------------------------------------------------------------- images and masks

function addImages(files) {
  for (const file of files) {
    if (!file.type.startsWith("image/") && !/\.(png|jpe?g|webp|tiff?|bmp)$/i.test(file.name)) continue;
    state.images.push({ file, url: URL.createObjectURL(file), mask: null, maskFile: null, history: [] });
  }
  renderImages();
  if (state.selected < 0 && state.images.length) selectImage(0);
}

function renderImages() {
  $("image-list").replaceChildren(...state.images.map((image, index) => {
    const item = document.createElement("li");
    item.id = `image-${index}`;
    item.className = index === state.selected ? "selected" : "";
    const thumb = document.createElement("img");
    thumb.src = image.url;
    thumb.alt = image.file.name;
    thumb.title = image.file.name;
    item.append(thumb);
    item.addEventListener("click", () => selectImage(index));
    return item;
  }));
}

function selectImage(index) {
  saveMask();
  state.selected = index;
  renderImages();
  const image = state.images[index];
  const picture = $("mask-image");
  picture.onload = () => {
    const canvas = $("mask-canvas");
    canvas.width = picture.naturalWidth;
    canvas.height = picture.naturalHeight;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (image.mask) context.putImageData(image.mask, 0, 0);
  };
  picture.src = image.url;
}

function saveMask() {
  const image = state.images[state.selected];
  const canvas = $("mask-canvas");
  if (image && canvas.width) image.mask = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
}

function setupBrush() {
  const canvas = $("mask-canvas");
  const context = canvas.getContext("2d");
  let drawing = false;
  let last = null;  // the previous point of the stroke: a fast drag is joined by a line, not left as dots
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const paint = (event) => {
    const [x, y] = point(event);
    const radius = Number($("brush-size").value) * canvas.width / canvas.getBoundingClientRect().width / 2;
    context.globalCompositeOperation = $("eraser").checked ? "destination-out" : "source-over";
    context.fillStyle = context.strokeStyle = "rgb(255, 0, 0)";
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fill();
    if (last) {
      context.lineWidth = 2 * radius;
      context.lineCap = "round";
      context.beginPath();
      context.moveTo(last[0], last[1]);
      context.lineTo(x, y);
      context.stroke();
    }
    last = [x, y];
  };
  canvas.addEventListener("pointerdown", (event) => {
    const image = state.images[state.selected];
    if (!image) return;
    image.history.push(context.getImageData(0, 0, canvas.width, canvas.height));
    if (image.history.length > 30) image.history.shift();
    image.maskFile = null;  // painting over an uploaded mask: the painted one is sent
    drawing = true;
    last = null;
    canvas.setPointerCapture(event.pointerId);
    paint(event);
  });
  canvas.addEventListener("pointermove", (event) => { if (drawing) paint(event); });
  canvas.addEventListener("pointerup", () => { drawing = false; last = null; saveMask(); });
  $("undo").addEventListener("click", () => {
    const image = state.images[state.selected];
    if (image && image.history.length) { context.putImageData(image.history.pop(), 0, 0); saveMask(); }
  });
  $("clear-mask").addEventListener("click", () => {
    const image = state.images[state.selected];
    if (!image) return;
    image.history.push(context.getImageData(0, 0, canvas.width, canvas.height));
    context.clearRect(0, 0, canvas.width, canvas.height);
    image.maskFile = null;
    saveMask();
  });
  $("mask-input").addEventListener("change", () => {
    const image = state.images[state.selected];
    const file = $("mask-input").files[0];
    if (!image || !file) return;
    const picture = new Image();
    picture.onload = () => {  // preview: the mask's white (> 127) as the red overlay
      const scratch = document.createElement("canvas");
      scratch.width = canvas.width;
      scratch.height = canvas.height;
      const scratchContext = scratch.getContext("2d");
      scratchContext.imageSmoothingEnabled = false;
      scratchContext.drawImage(picture, 0, 0, canvas.width, canvas.height);
      const data = scratchContext.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < data.data.length; i += 4) {
        const luma = 0.299 * data.data[i] + 0.587 * data.data[i + 1] + 0.114 * data.data[i + 2];
        data.data.set(luma > 127 ? [255, 0, 0, 255] : [0, 0, 0, 0], i);
      }
      image.history.push(context.getImageData(0, 0, canvas.width, canvas.height));
      context.putImageData(data, 0, 0);
      saveMask();
      image.maskFile = file;  // sent as uploaded unless painted over
    };
    picture.src = URL.createObjectURL(file);
  });
}

function maskBlob(image) {
  // The painted overlay as the task expects it: white (255) where painted, black elsewhere.
  return new Promise((resolve) => {
    const source = image.mask;
    const canvas = document.createElement("canvas");
    canvas.width = source.width;
    canvas.height = source.height;
    const out = new ImageData(source.width, source.height);
    for (let i = 0; i < source.data.length; i += 4) {
      const value = source.data[i + 3] > 127 ? 255 : 0;
      out.data.set([value, value, value, 255], i);
    }
    canvas.getContext("2d").putImageData(out, 0, 0);
    canvas.toBlob(resolve, "image/png");
  });
}

function hasMask(image) {
  return image.maskFile || (image.mask && image.mask.data.some((v, i) => i % 4 === 3 && v > 127));
}

// ---------------------------------------------------------------- jobs

async function run(extra) {
  showError("");
  saveMask();
  const task = state.task;
  const body = new FormData();
  body.append("task", task.name);
  body.append("model", $("model-select").value);
  const values = { ...formValues(), ...(extra || {}) };
  body.append("options", JSON.stringify(values));
  if (task.kind !== "sample") {
    if (!state.images.length) { showError("pick or drop at least one image"); return; }
    for (const image of state.images) body.append("images", image.file, image.file.name);
    if (!$("mask-section").hidden && state.images.some(hasMask)) {
      for (const image of state.images) {
        if (image.maskFile) { body.append("masks", image.maskFile, image.maskFile.name); continue; }
        if (!image.mask) {  // an image shown but never painted: an empty mask of its size
          const picture = await createImageBitmap(image.file);
          image.mask = new ImageData(picture.width, picture.height);
        }
        body.append("masks", await maskBlob(image), image.file.name.replace(/\.[^.]*$/, "") + "_mask.png");
      }
    }
  }
  try {
    state.job = await api("/api/jobs", { method: "POST", body });
  } catch (error) {
    showError(error.message);
    return;
  }
  state.lastSeed = values.seed;
  $("run-button").disabled = true;
  $("cancel-button").disabled = false;
  $("results").replaceChildren();
  $("compare").hidden = true;
  poll();
}

async function poll() {
  clearTimeout(state.timer);
  let job;
  try {
    job = await api(`/api/jobs/${state.job.id}`);
  } catch (error) {
    showError(error.message);
    return;
  }
  state.job = job;
  $("progress").max = Math.max(job.total, 1);
  $("progress").value = job.done + (job.part || 0);  // part: the tiles of the image in hand
  $("status").textContent = job.state === "queued" && job.position ? `queued (${job.position} ahead)`
    : `${job.state}${job.message && job.message !== job.state ? ": " + job.message : ""}`;
  if (job.state === "queued" || job.state === "running") {
    state.timer = setTimeout(poll, 300);
    return;
  }
  $("run-button").disabled = false;
  $("cancel-button").disabled = true;
  if (job.error) showError(job.error);
  showResults(job);
}

function showResults(job) {
  $("results").replaceChildren(...job.results.map((row, index) => {
    const item = document.createElement("li");
    item.id = `result-${index}`;
    const url = `/api/jobs/${job.id}/files/${encodeURIComponent(row.output)}`;
    const picture = document.createElement("img");
    picture.src = url;
    picture.alt = row.output;
    picture.addEventListener("click", () => compare(job, row));
    picture.title = row.output;
    const link = document.createElement("a");
    link.id = `download-${index}`;
    link.className = "download";
    link.href = `${url}?download=true`;
    link.download = row.output;
    link.title = row.output;
    link.textContent = row.kind === "grid" ? "download grid" : "download";
    item.append(picture, link);
    return item;
  }));
  const all = $("download-all");
  all.hidden = job.results.length < 2;
  all.href = `/api/jobs/${job.id}/archive`;
  const first = job.results.find((row) => row.input) || job.results.find((row) => row.kind === "grid");
  if (first) compare(job, first);
  $("more-like-this").hidden = !(state.task.kind === "sample" && job.state === "done");
}

function compare(job, row) {
  const after = $("compare-after");
  const before = $("compare-before");
  after.onload = () => {  // a small image is enlarged to fill the view (never shrunk: 100% is full resolution)
    const width = $("compare-view").clientWidth - 4;
    const height = window.innerHeight * 0.7 - 4;  // the view's max-height
    const fit = Math.floor(Math.min(width / Math.max(after.naturalWidth, 1), height / Math.max(after.naturalHeight, 1))
                           * 100);
    $("zoom").value = String(Math.min(Math.max(fit, 100), Number($("zoom").max)));
    applyZoom();
  };
  after.src = `/api/jobs/${job.id}/files/${encodeURIComponent(row.output)}`;
  before.src = row.input ? `/api/jobs/${job.id}/inputs/${encodeURIComponent(row.input)}` : after.src;
  // A generated image has no "before": no slider, just the image and its zoom.
  $("compare-clip").hidden = $("compare-slider").parentElement.hidden = !row.input;
  $("compare").hidden = false;
}

function applyZoom() {
  const after = $("compare-after");
  const zoom = Number($("zoom").value) / 100;
  const width = Math.round(after.naturalWidth * zoom);
  after.style.width = before().style.width = `${width}px`;
  $("zoom-value").textContent = `${Math.round(zoom * 100)}%`;
  $("compare-clip").style.width = `${(Number($("compare-slider").value) / 100) * width}px`;
}

function before() { return $("compare-before"); }

function setup() {
  // A file dropped beside the zone must not make the browser leave the page to show it.
  for (const name of ["dragover", "drop"]) document.addEventListener(name, (event) => event.preventDefault());
  const drop = $("drop-zone");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addImages(event.dataTransfer.files);
  });
  $("image-input").addEventListener("change", () => addImages($("image-input").files));
  $("run-button").addEventListener("click", () => run());
  $("cancel-button").addEventListener("click", async () => {
    if (state.job) {
      try { await api(`/api/jobs/${state.job.id}`, { method: "DELETE" }); } catch (error) { showError(error.message); }
    }
  });
  $("compare-slider").addEventListener("input", applyZoom);
  $("zoom").addEventListener("input", applyZoom);
  $("more-like-this").addEventListener("click", () => {
    // Image i of a seed never changes: more of this seed is a larger count, the first ones come back unchanged.
    const count = $("opt-count");
    if (count) count.value = String(Number(count.value || 16) * 2);
    run({ seed: state.lastSeed });
  });
  setupBrush();
  loadTasks().catch((error) => showError(error.message));
}

document.addEventListener("DOMContentLoaded", setup);
