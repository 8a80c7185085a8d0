// The digit page: draw on the canvas or upload a file, send the image to POST /predict (the endpoint every client
// uses, nothing page-specific), and show the answer. Plain browser JavaScript: no build step, no libraries.
"use strict";

const DEBOUNCE_MS = 250; // while drawing, ask once the pen has paused this long (or is lifted)
const TIMEOUT_MS = 15000; // a prediction that takes longer than this is reported, not waited for
const MODEL_REFRESH_MS = 10000;
const PAPER = "#ffffff";
const INK = "#000000";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const fileInput = document.getElementById("file");
const dropZone = document.getElementById("input-panel");
const digitOut = document.getElementById("digit");
const summary = document.getElementById("summary");
const errorBox = document.getElementById("error");
const seenFigure = document.getElementById("seen-figure");
const seenImage = document.getElementById("seen");
const chart = document.getElementById("chart");
const resultPanel = document.getElementById("result-panel");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("api-key");
const keyPrompt = document.getElementById("key-prompt");
const KEY_STORAGE = "mnist-api-key"; // this tab only: sessionStorage is gone when the tab closes

// The service explains each error in its own words ({"detail": ...}); this sentence says what it means for the user.
const LEADS = {
  400: "The service could not read that image.",
  413: "That file is too large.",
  401: "The service needs an API key: enter it above.",
  415: "That file is not an image the service can read.",
  422: "The request did not contain an image.",
  500: "The model failed to answer this time; please try again.",
  503: "The service is busy right now; try again in a moment.",
};

let activePointer = null; // one stroke at a time: a second finger is ignored, not drawn as a jump
let lastPoint = null;
let showingUpload = false; // the canvas holds an uploaded picture's preview, not a drawing
let debounceTimer = null;
let inFlight = null; // AbortController of the newest request; older answers are dropped
let lastUpload = null; // [file, name] of the latest prediction, sent again once a key is entered

// ---- the bar chart, built once -------------------------------------------------------------------------------
const bars = [];
for (let digit = 0; digit < 10; digit += 1) {
  const item = document.createElement("li");
  item.dataset.digit = String(digit);
  item.innerHTML = '<span class="label"></span><span class="bar"><span class="fill"></span></span><span class="value"></span>';
  item.querySelector(".label").textContent = String(digit);
  chart.appendChild(item);
  bars.push(item);
}

// One decimal, without rounding a near-certainty up to "100.0%" or a tiny chance down to "0.0%".
function percent(probability) {
  if (probability > 0.999) return ">99.9%";
  if (probability > 0 && probability < 0.001) return "<0.1%";
  return `${(probability * 100).toFixed(1)}%`;
}

function setBars(probabilities, best) {
  bars.forEach((item, digit) => {
    const p = probabilities ? probabilities[digit] : 0;
    item.querySelector(".fill").style.width = `${(p * 100).toFixed(2)}%`;
    item.querySelector(".value").textContent = probabilities ? percent(p) : "–";
    item.classList.toggle("best", digit === best);
  });
}

// ---- showing answers ----------------------------------------------------------------------------------------------
function showIdle() {
  digitOut.textContent = "?";
  summary.textContent = "Draw a digit to see a prediction.";
  errorBox.hidden = true;
  seenFigure.hidden = true;
  setBars(null, -1);
}

function showResult(body) {
  errorBox.hidden = true;
  // is_digit is false when the image most likely shows no digit at all (a letter, a shape, a blank page): the
  // probabilities still come, and the page shows them, but it does not claim a digit.
  if (body.is_digit === false) {
    digitOut.textContent = "–";
    summary.textContent = `That does not look like a digit. The closest digit is a ${body.predicted_class}.`;
  } else {
    digitOut.textContent = String(body.predicted_class);
    summary.textContent = `The model reads a ${body.predicted_class}, with ${percent(body.confidence)} confidence.`;
  }
  setBars(body.probabilities, body.predicted_class);
  if (body.input_image) {
    seenImage.src = body.input_image;
    seenFigure.hidden = false;
  }
}

function showError(message) {
  digitOut.textContent = "–";
  summary.textContent = "No prediction.";
  setBars(null, -1);
  seenFigure.hidden = true;
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function explain(status, detail) {
  const lead = LEADS[status] || `The service answered with an error (HTTP ${status}).`;
  if (typeof detail !== "string" || !detail) return lead;
  return `${lead} Details: ${detail.replace(/\.?$/, ".")}`;
}

// ---- talking to the API ------------------------------------------------------------------------------------------
// With API keys switched on, the API answers 401 until the page sends one: the page then asks for it.
function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey() {
  keyPrompt.textContent = sessionStorage.getItem(KEY_STORAGE)
    ? "That API key was not accepted. Enter a valid key."
    : "This service needs an API key.";
  keyForm.hidden = false;
  keyInput.focus();
}

keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
  keyInput.value = "";
  keyForm.hidden = true;
  loadModelInfo();
  if (lastUpload) predict(...lastUpload);
});

async function predict(file, name) {
  lastUpload = [file, name];
  if (inFlight) inFlight.abort("superseded");
  const controller = new AbortController();
  inFlight = controller;
  const timer = setTimeout(() => controller.abort("timeout"), TIMEOUT_MS);
  const form = new FormData();
  form.append("file", file, name);
  resultPanel.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/predict?include_input=true", {
      method: "POST",
      body: form,
      headers: authHeaders(),
      signal: controller.signal,
    });
    const body = await response.json().catch(() => null);
    if (controller !== inFlight) return;
    if (response.status === 401) askForKey();
    if (response.ok && body) showResult(body);
    else showError(explain(response.status, body && body.detail));
  } catch (error) {
    if (controller !== inFlight) return;
    showError(
      controller.signal.reason === "timeout"
        ? `The service did not answer within ${TIMEOUT_MS / 1000} seconds. Please try again.`
        : "The service could not be reached. Check that it is running, then try again.",
    );
  } finally {
    clearTimeout(timer);
    if (controller === inFlight) {
      inFlight = null;
      resultPanel.removeAttribute("aria-busy");
    }
  }
}

function predictDrawing() {
  debounceTimer = null;
  pad.toBlob((blob) => {
    if (blob) predict(blob, "drawing.png");
  }, "image/png");
}

function schedulePrediction(delay) {
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(predictDrawing, delay);
}

function cancelPending() {
  clearTimeout(debounceTimer);
  debounceTimer = null;
  if (inFlight) inFlight.abort("cleared");
  inFlight = null;
  resultPanel.removeAttribute("aria-busy");
}

// ---- drawing ----------------------------------------------------------------------------------------------------
function resetCanvas() {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = pad.width / 14; // about as thick, relative to the digit, as MNIST's pen strokes
  showingUpload = false;
}

function canvasPoint(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function dot(point) {
  ctx.beginPath();
  ctx.arc(point.x, point.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function lineTo(point) {
  ctx.beginPath();
  ctx.moveTo(lastPoint.x, lastPoint.y);
  ctx.lineTo(point.x, point.y);
  ctx.stroke();
  lastPoint = point;
}

pad.addEventListener("pointerdown", (event) => {
  if (activePointer !== null || event.button !== 0) return;
  event.preventDefault();
  if (showingUpload) resetCanvas();
  activePointer = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  lastPoint = canvasPoint(event);
  dot(lastPoint);
  schedulePrediction(DEBOUNCE_MS);
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== activePointer) return;
  // Coalesced events keep fast strokes smooth: the browser may merge several moves into one event.
  const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const move of moves.length ? moves : [event]) lineTo(canvasPoint(move));
  schedulePrediction(DEBOUNCE_MS);
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activePointer = null;
  schedulePrediction(0); // the stroke is finished: no reason to wait
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  cancelPending();
  resetCanvas();
  showIdle();
});

// ---- uploads: file picker and drag and drop ------------------------------------------------------------------------
async function previewUpload(file) {
  resetCanvas();
  showingUpload = true;
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    ctx.drawImage(bitmap, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
    bitmap.close();
  } catch {
    // Not a picture the browser can show; the service's answer says why.
  }
}

function useFile(file) {
  if (!file) return;
  cancelPending();
  previewUpload(file);
  predict(file, file.name);
}

fileInput.addEventListener("change", () => {
  useFile(fileInput.files[0]);
  fileInput.value = ""; // choosing the same file again still counts as a change
});

dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  useFile(event.dataTransfer.files[0]);
});

// ---- model details ---------------------------------------------------------------------------------------------
async function loadModelInfo() {
  const target = document.getElementById("model-info");
  try {
    const response = await fetch("/model", { headers: authHeaders(), signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (response.status === 401) {
      askForKey();
      target.textContent = "Model details need an API key";
      return;
    }
    if (!response.ok) throw new Error(String(response.status));
    const model = await response.json();
    if (model.version === null) {
      target.textContent = "The model is loading";
      return;
    }
    const loaded = model.versions.filter((version) => version.state === "AVAILABLE").length;
    const serving = loaded > 1 ? ` (the default of ${loaded} loaded)` : "";
    const accuracy =
      typeof model.test_accuracy === "number"
        ? `test accuracy ${(model.test_accuracy * 100).toFixed(2)}%`
        : "test accuracy not recorded";
    target.textContent = `Model version ${model.version}${serving}, ${accuracy}`;
  } catch {
    target.textContent = "Model details are unavailable right now";
  }
}

resetCanvas();
showIdle();
loadModelInfo();
// New versions go live without a restart: the line follows the version serving.
setInterval(loadModelInfo, MODEL_REFRESH_MS);
