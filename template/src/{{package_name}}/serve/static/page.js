// The page's behaviour: the model's metadata, an image picked or dropped, sent to POST /predict,
// and its answer drawn by this task's draw.js (which returns a line saying what it drew) and shown as JSON.
import { draw } from "./draw.js";

const element = (id) => document.getElementById(id);
const state = { metadata: null, key: sessionStorage.getItem("api-key") || "" };

async function call(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.key) headers["X-API-Key"] = state.key;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) {
    const error = new Error(body.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function showError(message) {
  element("error").textContent = message;
  element("error").hidden = !message;
}

async function loadMetadata() {
  try {
    state.metadata = await call("/metadata");
  } catch (error) {
    if (error.status === 503) {
      element("status").textContent = "Loading the model…";
      setTimeout(loadMetadata, 1000);
    } else if (error.status === 401) {
      element("key-form").hidden = false;
      element("status").textContent = error.message;
    } else {
      showError(error.message);
    }
    return;
  }
  const metadata = state.metadata;
  element("key-form").hidden = true;
  element("title").textContent = `${metadata.project}: ${metadata.task}`;
  document.title = `${metadata.project}: try the model`;
  element("status").textContent = `Ready: ${metadata.model_file}`;
  element("legend").replaceChildren(
    ...metadata.classes.map((name, index) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.style.background = metadata.colours[index];
      item.append(swatch, name);
      return item;
    }),
  );
  element("about").textContent =
    `Images are seen at ${metadata.image_size} px` +
    (metadata.version ? `; version ${metadata.version}.` : ".");
}

function shortened(answer) {
  // A mask's base64 PNG is long: the JSON shown keeps its start.
  return typeof answer.mask === "string" && answer.mask.length > 64
    ? { ...answer, mask: `${answer.mask.slice(0, 64)}… (${answer.mask.length} characters)` }
    : answer;
}

async function predict(file) {
  showError("");
  if (!state.metadata) {
    showError("The model is not ready yet.");
    return;
  }
  element("status").textContent = `Predicting ${file.name}…`;
  let answer;
  try {
    answer = await call("/predict", {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  } catch (error) {
    element("result").hidden = true;
    element("status").textContent = "Ready";
    showError(error.message);
    return;
  }
  // The pixels as the server decoded them: EXIF orientation is not applied there either.
  const picture = await createImageBitmap(file, { imageOrientation: "none" });
  element("summary").textContent = await draw(element("picture"), picture, answer, state.metadata);
  element("answer").textContent = JSON.stringify(shortened(answer), null, 2);
  element("result").hidden = false;
  element("status").textContent = `Ready: ${file.name} predicted`;
}

element("file").addEventListener("change", (event) => {
  if (event.target.files.length) predict(event.target.files[0]);
});
const drop = element("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) predict(event.dataTransfer.files[0]);
});
element("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = element("key").value;
  sessionStorage.setItem("api-key", state.key);
  loadMetadata();
});
loadMetadata();
