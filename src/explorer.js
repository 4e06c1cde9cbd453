// The interactive view of a condgen latent explorer (src/explorer.rs embeds this
// file, with its data, after the static view). It replaces the static view with
// a condition menu, one slider per latent direction and the decoded image; every
// image was decoded in Rust beforehand and sits in one sprite per condition, so
// nothing here talks to the kernel and a saved notebook works as plain HTML.
(function (data) {
  "use strict";
  const side = data.side;
  const steps = data.steps;

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Slider position p (0..steps-1) → standard deviations along its direction.
  function offset(p) {
    return -data.range + (2 * data.range * p) / (steps - 1);
  }

  function build(root) {
    // Every sprite is decoded once, when first shown.
    const sprites = data.sprites.map(() => null);
    function sprite(c) {
      if (!sprites[c]) {
        sprites[c] = new Image();
        sprites[c].src = data.sprites[c];
      }
      return sprites[c];
    }

    root.textContent = "";
    root.append(element("div", { style: "font-weight:bold" }, data.title));
    root.append(element("div", { style: "font-size:90%;margin-bottom:4px" }, data.caption));
    const controls = element("div", { style: "display:inline-block;vertical-align:top;margin-right:16px" });
    const menu = element("select", { "data-role": "condition" });
    data.labels.forEach((label, c) => menu.append(element("option", { value: String(c) }, label)));
    controls.append(element("div", {}, "condition "));
    controls.lastChild.append(menu);
    const sliders = [];
    for (let k = 0; k < data.directions; k++) {
      const row = element("div", { style: "margin-top:6px" }, "direction " + (k + 1) + " ");
      const input = element("input", {
        type: "range", min: "0", max: String(steps - 1), step: "1",
        value: String((steps - 1) >> 1), "data-role": "direction", "data-direction": String(k + 1),
      });
      const readout = element("span", { style: "font-family:monospace;margin-left:6px" });
      row.append(input, readout);
      controls.append(row);
      sliders.push({ input, readout });
    }
    const canvas = element("canvas", { width: String(side * data.scale), height: String(side * data.scale) });
    canvas.style.border = "1px solid #999";
    const context = canvas.getContext("2d");
    root.append(controls, canvas);

    function draw() {
      const c = Number(menu.value);
      // Tile index: slider 1 varies fastest (src/explorer.rs lays the sprite out so).
      let index = 0;
      for (let k = sliders.length - 1; k >= 0; k--) index = index * steps + Number(sliders[k].input.value);
      for (const s of sliders) {
        const t = offset(Number(s.input.value));
        s.readout.textContent = (t >= 0 ? "+" : "") + t.toFixed(2) + " sd";
      }
      const image = sprite(c);
      if (!image.complete || !image.naturalWidth) {
        // Draws again, with the controls as they are then, once the sprite is decoded.
        image.addEventListener("load", draw, { once: true });
        return;
      }
      context.imageSmoothingEnabled = false;
      context.clearRect(0, 0, canvas.width, canvas.height);
      const x = (index % steps) * side;
      const y = Math.floor(index / steps) * side;
      context.drawImage(image, x, y, side, side, 0, 0, canvas.width, canvas.height);
      root.dataset.shown = c + ":" + index;
    }
    menu.addEventListener("change", draw);
    for (const s of sliders) s.input.addEventListener("input", draw);
    draw();
  }

  function wire(root) {
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    build(root);
  }

  // This script's own explorer is the element just before it (when the page
  // says which script runs: JupyterLab and plain pages do, jQuery's eval does not).
  const script = document.currentScript;
  const before = script && script.previousElementSibling;
  if (before && before.getAttribute("data-condgen-explorer") === data.id) wire(before);
  // By id: the same explorer shown again elsewhere, or this one when the script
  // is not known; tried again for a few seconds while the output is not yet in the page.
  let tries = 0;
  (function byId() {
    const roots = document.querySelectorAll('[data-condgen-explorer="' + data.id + '"]');
    roots.forEach(wire);
    if (roots.length === 0 && ++tries < 50) setTimeout(byId, 100);
  })();
})
