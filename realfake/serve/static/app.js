// realfake serve: the page. No framework and nothing from a CDN: it must work with no network.
"use strict";

const $ = (sel) => document.querySelector(sel);
let lastCsv = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// Every decision string gets its own colour: the three known ones from the style sheet, any other a stable hue.
function decisionStyle(decision) {
  if (["real", "fake", "uncertain"].includes(decision)) return "";
  let h = 0;
  for (const ch of decision) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `--decision-colour: hsl(${h}, 45%, 40%)`;
}

// The reason in words comes from predict itself (its `reason` column); the machine code is shown beside it.
function reasonInWords(row) {
  return el("p", { class: "reason" }, row.reason || "This face was not scored.", " ",
            el("code", {}, row.reason_code || ""));
}

async function loadModel() {
  const res = await fetch("/api/model");
  const m = await res.json();
  const op = ` Decision: ${m.rule}.`;
  $("#model-facts").textContent = `Model ${m.model} (${m.arch}, ${m.size} px). ${m.view_text} ` +
    `Training data profile: ${m.profile || "not recorded"}.` + op;
  const fit = $("#fitness");
  fit.hidden = false;
  if (m.fit) {
    fit.className = "fit";
    fit.textContent = `Fit to judge by the project's rule (validation AUC ${m.val_auc == null ? "n/a" : m.val_auc.toFixed(3)}). ` +
      "Validation chose this model, so its real error rate is higher.";
  } else {
    fit.className = "unfit";
    fit.textContent = `Warning: ${m.warning}. Its verdicts below are not to be trusted.`;
  }
}

function faceCard(row, face, op) {
  const name = `face ${row.face_index + 1}`;
  if (row.reason_code) {
    return el("div", { class: "face" }, el("div", { class: "verdict" }, el("strong", {}, name), reasonInWords(row)));
  }
  const threshold = op.threshold, band = op.t_real < op.threshold;
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  const verdict = el("div", { class: `verdict ${row.decision}`, style: decisionStyle(row.decision) },
    el("strong", {}, `${name}: `), el("span", { class: `decision ${row.decision}`, style: decisionStyle(row.decision) }, row.decision),
    el("div", { class: "bar", title: `p(fake) ${row.p_fake.toFixed(4)}; threshold ${threshold.toFixed(3)}` },
      el("div", { class: "fill", style: `width: ${pct(row.p_fake)}` }),
      ...(band ? [el("div", { class: "band", style: `left: ${pct(op.t_real)}; width: ${pct(threshold - op.t_real)}` })] : []),
      el("div", { class: "threshold", style: `left: ${pct(threshold)}` })),
    el("div", { class: "scale" }, el("span", {}, "0"), el("span", { class: "p" }, `p(fake) = ${row.p_fake.toFixed(3)}`),
       el("span", {}, "1")),
    el("p", { class: "hint" }, (band ? `Grey: uncertain (${op.t_real.toFixed(3)} to ${threshold.toFixed(3)}); ` +
       "the black mark: fake from there. " : `The black mark is the threshold (${threshold.toFixed(3)}). `) +
       `Face found with probability ${row.face_prob.toFixed(3)}.`));
  const figures = [];
  if (face) {
    figures.push(el("figure", {}, el("img", { class: "crop", src: face.crop, alt: `${name} as the model saw it` }),
                    "as the model saw it"));
    if (face.heatmap) {
      figures.push(el("figure", {}, el("img", { class: "heatmap", src: face.heatmap, alt: `Grad-CAM of ${name}` }),
                      "Grad-CAM (red: fake evidence)"));
    }
  }
  return el("div", { class: "face" }, ...figures, verdict);
}

function render(result) {
  const out = $("#results");
  out.replaceChildren();
  const byFile = new Map();
  for (const row of result.rows) {
    if (!byFile.has(row.file)) byFile.set(row.file, []);
    byFile.get(row.file).push(row);
  }
  for (const photo of result.photos) {
    const rows = byFile.get(photo.file) || [];
    const faces = new Map(photo.faces.map((f) => [f.face_index, f]));
    const cards = rows.map((r) => (r.face_index === null ?
      el("div", { class: "face" }, el("div", { class: "verdict" }, reasonInWords(r))) :
      faceCard(r, faces.get(r.face_index), result)));
    const whole = el("div", { class: "whole" });
    if (photo.photo) whole.append(el("img", { class: "boxed", src: photo.photo, alt: `${photo.file} with its faces boxed` }));
    out.append(el("section", { class: "photo" }, el("h2", {}, photo.file), whole, el("div", { class: "faces" }, ...cards)));
  }
}

async function send(files) {
  if (!files.length) return;
  const status = $("#status");
  status.className = "";
  status.textContent = `Scoring ${files.length} photo${files.length > 1 ? "s" : ""}…`;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  try {
    const res = await fetch(`/api/predict?visuals=true&gradcam=${$("#gradcam").checked}`, { method: "POST", body: form });
    const body = await res.json();
    if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
    lastCsv = body.csv;
    render(body);
    const scored = body.rows.filter((r) => !r.error).length;
    status.textContent = `${new Set(body.rows.map((r) => r.file)).size} photos, ${scored} faces scored.`;
    $("#actions").hidden = false;
  } catch (err) {
    status.className = "error";
    status.textContent = `Not scored: ${err.message}`;
  }
}

function setup() {
  const drop = $("#drop");
  $("#files").addEventListener("change", (e) => send([...e.target.files]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); });
  $("#csv").addEventListener("click", () => {
    const a = el("a", { href: URL.createObjectURL(new Blob([lastCsv], { type: "text/csv" })), download: "results.csv" });
    document.body.append(a);
    a.click();
    a.remove();
  });
  loadModel().catch((err) => { $("#model-facts").textContent = `The model could not be described: ${err.message}`; });
}

setup();
